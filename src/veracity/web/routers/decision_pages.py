"""The analyst's decision queue: prediction set, probabilities, nearest labelled evidence; accept,
override (with a reason) or escalate, by keyboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from veracity.services import decisions as decision_service
from veracity.services import projects as project_service
from veracity.web.deps import DB, CurrentActor, Id
from veracity.web.routers.ui import render

router = APIRouter(include_in_schema=False)


@router.get("/projects/{project_id}/decisions", response_class=HTMLResponse)
def decisions_page(request: Request, project_id: Id, db: DB, actor: CurrentActor, done: str | None = None) -> Response:
    project = project_service.get_project(db, actor, project_id)
    queue = decision_service.decision_queue(db, actor, project_id, limit=50)
    escalated = decision_service.decision_queue(db, actor, project_id, status="escalated", limit=20)
    return render(request, "decisions.html", {"actor": actor, "project": project, "queue": queue,
                                              "current": queue[0] if queue else None, "escalated": escalated,
                                              "done": done})


@router.post("/projects/{project_id}/decisions/{decision_id}")
def decide(
    project_id: Id,
    decision_id: Id,
    db: DB,
    actor: CurrentActor,
    choice: Annotated[str, Form(description="ACTION:LABEL, e.g. accept:dog, override:cat, escalate:")],
    reason: Annotated[str, Form()] = "",
) -> Response:
    action, _, label = choice.partition(":")
    out = decision_service.record_decision(db, actor, decision_id, action, label=label or None, reason=reason)
    summary = f"decision {decision_id}: {out['action']}" + (f" {out['label']}" if out["label"] else "")
    return RedirectResponse(f"/projects/{project_id}/decisions?done={summary}", status_code=303)
