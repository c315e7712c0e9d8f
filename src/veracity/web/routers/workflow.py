"""/api/v1 workflow endpoints: items, predictions, assignment, review, label issues, quality, undo."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from veracity.services import items as item_service
from veracity.services import quality as quality_service
from veracity.services import review as review_service
from veracity.services import tasks as task_service
from veracity.web.deps import DB, MAX_ID, AppSettings, CurrentActor, Id
from veracity.web.schemas import AssignIn, IssueResolveIn, PredictionsIn, ReviewIn

router = APIRouter(prefix="/api/v1", tags=["workflow"])


def _page(response: Response, rows: list[dict[str, Any]], nxt: int | None, limit: int) -> list[dict[str, Any]]:
    if nxt is not None:
        response.headers["X-Next-Cursor"] = str(nxt)
        response.headers["Link"] = f'<?cursor={nxt}&limit={limit}>; rel="next"'
    return rows


@router.get("/projects/{project_id}/items", summary="List and filter items, keyset-paginated")
def list_items(
    project_id: Id,
    db: DB,
    actor: CurrentActor,
    response: Response,
    label: str | None = Query(None, description="Consensus label."),
    min_confidence: float | None = Query(None, ge=0, le=1),
    max_confidence: float | None = Query(None, ge=0, le=1),
    annotator: str | None = Query(None, description="Items labelled by this user."),
    status: str | None = Query(None, description="open, complete, review or reviewed"),
    flagged: bool | None = None,
    q: str | None = Query(None, description="Text contained in the item's data."),
    cursor: int = Query(0, ge=0, le=MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    rows, nxt = item_service.list_items(
        db, actor, project_id, label=label, min_confidence=min_confidence, max_confidence=max_confidence,
        annotator=annotator, status=status, flagged=flagged, text=q, after=cursor, limit=limit,
    )
    return _page(response, rows, nxt, limit)


@router.post("/projects/{project_id}/predictions", status_code=201, summary="Import model predictions")
def import_predictions(project_id: Id, body: PredictionsIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return item_service.import_predictions(
        db, actor, project_id, body.predictions, model=body.model, model_version=body.model_version
    )


@router.post("/projects/{project_id}/assignments", status_code=201, summary="Assign items to a named annotator")
def assign_items(project_id: Id, body: AssignIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    n = task_service.assign_items(db, actor, project_id, body.user, body.item_ids)
    return {"assigned": n, "user": body.user}


@router.post("/projects/{project_id}/undo", summary="Undo the caller's last label; the task is leased again")
def undo_last(project_id: Id, db: DB, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    return task_service.undo_last_annotation(db, actor, project_id, lease_seconds=settings.lease_seconds)


@router.get("/projects/{project_id}/review", summary="Tasks waiting for review (not your own)")
def review_queue(project_id: Id, db: DB, actor: CurrentActor, limit: int = Query(50, ge=1, le=500)) -> Any:
    return review_service.review_queue(db, actor, project_id, limit=limit)


@router.post("/tasks/{task_id}/review", summary="Accept, reject or correct a task")
def review_task(task_id: Id, body: ReviewIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return review_service.review_task(db, actor, task_id, body.verdict, value=body.value, comment=body.comment)


@router.post("/projects/{project_id}/label-issues", summary="Flag suspect labels from model probabilities")
async def flag_label_issues(project_id: Id, db: DB, actor: CurrentActor, model: str | None = None) -> dict[str, Any]:
    return await run_in_threadpool(quality_service.flag_label_issues, db, actor, project_id, model_name=model)


@router.get("/projects/{project_id}/label-issues", summary="Suspect items, most suspect first")
def list_label_issues(project_id: Id, db: DB, actor: CurrentActor, limit: int = Query(100, ge=1, le=1000)) -> Any:
    return review_service.list_label_issues(db, actor, project_id, limit=limit)


@router.post("/tasks/{task_id}/label-issue", summary="Keep or fix a suspect item's label")
def resolve_label_issue(task_id: Id, body: IssueResolveIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return review_service.resolve_label_issue(db, actor, task_id, body.action, value=body.value)


@router.post("/projects/{project_id}/refit", summary="Refit consensus and skills with the full model")
async def refit(project_id: Id, db: DB, actor: CurrentActor, method: str | None = None) -> dict[str, Any]:
    return await run_in_threadpool(quality_service.refit_project, db, project_id, method=method, actor=actor)
