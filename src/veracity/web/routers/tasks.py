"""/api/v1/tasks: submit annotations, skip."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Response
from fastapi.responses import JSONResponse

from veracity.services import quality as quality_service
from veracity.services import tasks as task_service
from veracity.web.deps import DB, CurrentActor, CurrentCaller, Id, run_hot
from veracity.web.schemas import AnnotationIn

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.post(
    "/{task_id}/annotations", status_code=201, summary="Submit a label for a leased task",
    response_model=dict[str, Any],
)
async def create_annotation(
    task_id: Id, body: AnnotationIn, db: DB, caller: CurrentCaller, background: BackgroundTasks
) -> Any:
    # The hot path of labelling: authentication and the service run as one call (on SQLite on the
    # event loop itself when it can, see run_hot), and the small answer is encoded directly.
    result = await run_hot(db, lambda: task_service.submit_annotation(
        db, caller.actor(), task_id, body.value, idempotency_key=body.idempotency_key, duration_ms=body.duration_ms
    ))
    if result.created and result.consensus_method != "mv":  # majority vote has no model to refit
        background.add_task(quality_service.maybe_refit, db, result.project_id)
    headers = None if result.created else {"Idempotent-Replayed": "true"}
    return JSONResponse(result.to_dict(), status_code=201, headers=headers, background=background)


@router.post("/{task_id}/skip", status_code=204, summary="Give a leased task back to the queue")
def skip_task(task_id: Id, db: DB, actor: CurrentActor) -> Response:
    task_service.skip_task(db, actor, task_id)
    return Response(status_code=204)
