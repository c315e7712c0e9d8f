"""The analyst's decision queue: prediction set, probabilities, nearest labelled evidence; accept,
override (with a reason) or escalate, by keyboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from veracity.errors import InvalidInputError
from veracity.services import decisions as decision_service
from veracity.services import projects as project_service
from veracity.web.deps import DB, CurrentActor, Id
from veracity.web.routers.ui import render
from veracity.web.routers.ui_charts import line_chart

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, project_id: Id, db: DB, actor: CurrentActor, done: str | None = None) -> Response:
    return _queue_page(request, project_id, db, actor, done=done)


def _queue_page(request: Request, project_id: int, db: DB, actor: CurrentActor, *, done: str | None = None,
                error: str | None = None, reason: str = "") -> Response:
    """The queue; after a refused decision (``error``) with what the person typed kept and status 422."""
    project = project_service.get_project(db, actor, project_id)
    queue = decision_service.decision_queue(db, actor, project_id, limit=50)
    escalated = decision_service.decision_queue(db, actor, project_id, status="escalated", limit=20)
    estimate = project.settings.get("decision_estimate") or {}
    return render(request, "decisions.html", {"actor": actor, "project": project, "queue": queue,
                                              "current": queue[0] if queue else None, "escalated": escalated,
                                              "done": done, "policy": project.settings.get("decision_policy"),
                                              "estimate": estimate, "curves": _curves(estimate),
                                              "error": error, "reason": reason},
                  status_code=422 if error else 200)


def _curves(estimate: dict[str, Any]) -> dict[str, Markup]:
    """The risk-coverage curve of the last run's estimate: share auto-accepted and their error, by threshold."""
    curve = estimate.get("curve") or {}
    # thresholds at which something is accepted (the error of nothing is undefined), same x axis for both
    points = [(t, a, e) for t, a, e in zip(curve.get("thresholds") or [], curve.get("automation_rate") or [],
                                           curve.get("error_rate") or [], strict=False) if e is not None]
    if not points:
        return {}
    return {
        "automation": line_chart([(f"{t:.2f}", a) for t, a, _ in points], title="Share auto-accepted by threshold",
                                 y_label="confidence threshold"),
        "error": line_chart([(f"{t:.2f}", e) for t, _, e in points],
                            title="Error of the auto-accepted by threshold", y_label="confidence threshold"),
    }


@router.post("/projects/{project_id}/decisions/{decision_id}")
def decide(
    request: Request,
    project_id: Id,
    decision_id: Id,
    db: DB,
    actor: CurrentActor,
    choice: Annotated[str, Form(description="ACTION:LABEL, e.g. accept:dog, override:cat, escalate:")],
    reason: Annotated[str, Form()] = "",
) -> Response:
    action, _, label = choice.partition(":")
    try:
        out = decision_service.record_decision(db, actor, decision_id, action, label=label or None, reason=reason)
    except InvalidInputError as exc:  # e.g. an override without a reason: say so on the queue, keep the reason
        return _queue_page(request, project_id, db, actor, error=exc.message, reason=reason)
    summary = f"decision {decision_id}: {out['action']}" + (f" {out['label']}" if out["label"] else "")
    return RedirectResponse(f"/projects/{project_id}/decisions?done={summary}", status_code=303)
