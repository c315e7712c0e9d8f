"""/api/v1/tasks: submit annotations, skip."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Response

from veracity.services import quality as quality_service
from veracity.services import tasks as task_service
from veracity.web.deps import DB, CurrentActor, Id
from veracity.web.schemas import AnnotationIn

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.post("/{task_id}/annotations", status_code=201, summary="Submit a label for a leased task")
def create_annotation(
    task_id: Id, body: AnnotationIn, db: DB, actor: CurrentActor, response: Response, background: BackgroundTasks
) -> dict[str, Any]:
    result = task_service.submit_annotation(
        db, actor, task_id, body.value, idempotency_key=body.idempotency_key, duration_ms=body.duration_ms
    )
    background.add_task(quality_service.maybe_refit, db, result.project_id)
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return result.to_dict()


@router.post("/{task_id}/skip", status_code=204, summary="Give a leased task back to the queue")
def skip_task(task_id: Id, db: DB, actor: CurrentActor) -> Response:
    task_service.skip_task(db, actor, task_id)
    return Response(status_code=204)
