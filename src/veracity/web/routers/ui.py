"""Annotator, reviewer and manager screens: labelling, review, label issues and the dashboard.

Pages are server-rendered; the labelling screen's script talks to the small JSON endpoints under
``/ui/api`` (one round trip per label: the submission and the next task travel together). Every
rule lives in the services; these handlers parse, call a service and render.
"""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from veracity.errors import InvalidInputError
from veracity.services import dashboard as dashboard_service
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services import review as review_service
from veracity.services import tasks as task_service
from veracity.services._common import INT32_MAX
from veracity.services.label_schemas import labels_of
from veracity.web.deps import DB, MAX_ID, AppSettings, CurrentActor, Id, run_hot
from veracity.web.routers.ui_charts import bar_chart, colour_for, heat_map, line_chart, stacked_bar
from veracity.web.routers.ui_markdown import render_markdown

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)


# Screens use only what the server itself serves: no script, style, font or image from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render a template with the signed-in actor and the CSRF token every form carries."""
    ctx = {"csrf_token": getattr(request.state, "csrf_token", ""), **context}
    response: Response = request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _label_colours(schema: dict[str, Any]) -> dict[str, str]:
    given = schema.get("colors") or {}
    return {label: colour_for(label, i, given) for i, label in enumerate(labels_of(schema))}


def _choices(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, JSON value) of each answer a reviewer can pick for categorical kinds."""
    if schema["kind"] not in ("classification", "rating", "pairwise"):
        return []
    out = []
    for label in labels_of(schema):
        value: Any = label
        if schema["kind"] == "rating":
            value = float(label) if "." in label else int(label)
        out.append((label, json.dumps(value)))
    return out


def _span_segments(text: str, spans: Any) -> list[tuple[str, str | None]]:
    """``text`` cut at span boundaries: (piece, label of the innermost span covering it, or None)."""
    valid = [s for s in spans or [] if isinstance(s, dict) and isinstance(s.get("start"), int)
             and isinstance(s.get("end"), int) and 0 <= s["start"] < s["end"] <= len(text)]
    cuts = sorted({0, len(text), *(s["start"] for s in valid), *(s["end"] for s in valid)})
    out = []
    for a, b in itertools.pairwise(cuts):
        covering = [s for s in valid if s["start"] <= a and s["end"] >= b]
        out.append((text[a:b], str(covering[-1]["label"]) if covering else None))
    return out


def _parse_value(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"value: expected a JSON label value, got {raw[:80]!r}") from exc


# --------------------------------------------------------------------------- labelling
@router.get("/projects/{project_id}/label", response_class=HTMLResponse)
def label_page(request: Request, project_id: Id, db: DB, actor: CurrentActor, settings: AppSettings) -> Response:
    project = project_service.get_project(db, actor, project_id)
    task = task_service.next_task(db, actor, project_id, lease_seconds=settings.lease_seconds)
    boot = {
        "project_id": project.id,
        "schema": project.schema,
        "task": task,
        "colors": _label_colours(project.schema),
        "labels": labels_of(project.schema),
    }
    return render(
        request,
        "label.html",
        {
            "actor": actor,
            "project": project,
            "boot": boot,
            "instructions": render_markdown(project.schema.get("instructions")),
        },
    )


TaskId = Annotated[int, Field(ge=1, le=MAX_ID)]


class SubmitIn(BaseModel):
    task_id: TaskId
    holding: list[TaskId] = Field(default_factory=list, max_length=50)
    value: Any = None
    duration_ms: int | None = Field(None, ge=0, le=INT32_MAX)
    idempotency_key: str | None = Field(None, max_length=128)


class TaskRef(BaseModel):
    task_id: TaskId
    holding: list[TaskId] = Field(default_factory=list, max_length=50)


@router.post("/ui/api/projects/{project_id}/submit")
async def submit_and_next(
    project_id: Id, body: SubmitIn, db: DB, actor: CurrentActor, settings: AppSettings, background: BackgroundTasks
) -> Response:
    """Store a label, then lease and return the next task beyond those the screen ``holding`` already
    shows or buffers (``next`` is null when none is left).

    The labelling hot path, as in the REST API: each of the two calls is its own transaction (on
    SQLite on the event loop when it can, see ``run_hot``), and a new label may start a background
    refit of the project's consensus model (``quality.maybe_refit``).
    """
    saved = await run_hot(db, lambda: task_service.submit_annotation(
        db, actor, body.task_id, body.value, idempotency_key=body.idempotency_key, duration_ms=body.duration_ms
    ))
    if saved.created and saved.consensus_method != "mv":  # majority vote has no model to refit
        background.add_task(quality_service.maybe_refit, db, saved.project_id)
    nxt = await run_hot(db, lambda: task_service.next_task(
        db, actor, project_id, holding=body.holding, lease_seconds=settings.lease_seconds
    ))
    return JSONResponse({"saved": saved.to_dict(), "next": nxt}, background=background)


@router.post("/ui/api/projects/{project_id}/skip")
async def skip_and_next(
    project_id: Id, body: TaskRef, db: DB, actor: CurrentActor, settings: AppSettings
) -> dict[str, Any]:
    await run_hot(db, lambda: task_service.skip_task(db, actor, body.task_id))
    nxt = await run_hot(db, lambda: task_service.next_task(
        db, actor, project_id, holding=body.holding, lease_seconds=settings.lease_seconds
    ))
    return {"next": nxt}


class Holding(BaseModel):
    holding: list[TaskId] = Field(default_factory=list, max_length=50)


@router.post("/ui/api/projects/{project_id}/ahead")
def lease_ahead(project_id: Id, body: Holding, db: DB, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    """Lease one more task beyond those the screen is ``holding`` (asked for once the page shows)."""
    nxt = task_service.next_task(db, actor, project_id, holding=body.holding, lease_seconds=settings.lease_seconds)
    return {"next": nxt}


@router.post("/ui/api/projects/{project_id}/undo")
def undo(project_id: Id, db: DB, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    """Withdraw the caller's last label and return that task again, with ``previous_value``."""
    return {"next": task_service.undo_last_annotation(db, actor, project_id, lease_seconds=settings.lease_seconds)}


# --------------------------------------------------------------------------- dashboard
PROGRESS_COLOURS = {
    "complete": "#009e73",
    "reviewed": "#0072b2",
    "in_review": "#cc79a7",
    "in_progress": "#e69f00",
    "untouched": "#d0d7de",
}


@router.get("/projects/{project_id}/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, project_id: Id, db: DB, actor: CurrentActor) -> Response:
    dash = dashboard_service.project_dashboard(db, actor, project_id)
    prog = dash.progress
    charts = {
        "progress": stacked_bar(
            [(name.replace("_", " "), prog[name], colour) for name, colour in PROGRESS_COLOURS.items()],
            title="Items by state",
        ),
        "distribution": bar_chart(dash.label_distribution, title="Consensus labels", colours=dash.project["colors"]),
        "agreement": line_chart(
            [(p["label"], p["value"]) for p in dash.agreement],
            title="Pairwise agreement by order of labelling",
            y_label="labels, in order given",
        ),
        "confusion": {
            user: heat_map(m["labels"], m["matrix"], title=f"Confusion matrix of {user}")
            for user, m in dash.confusion.items()
        },
    }
    top_n = max([p["n"] for p in dash.leaderboard] or [1])
    return render(request, "dashboard.html", {"actor": actor, "dash": dash, "charts": charts, "top_n": top_n})


# --------------------------------------------------------------------------- review
@router.get("/projects/{project_id}/review", response_class=HTMLResponse)
def review_page(request: Request, project_id: Id, db: DB, actor: CurrentActor, done: str | None = None) -> Response:
    project = project_service.get_project(db, actor, project_id)
    queue = review_service.review_queue(db, actor, project_id, limit=50)
    segments: dict[int, list[tuple[str, str | None]]] = {}
    if queue and project.schema["kind"] == "spans":
        text = queue[0]["item"]["data"].get(project.schema.get("field", "text"))
        if isinstance(text, str):
            segments = {a["id"]: _span_segments(text, a["value"]) for a in queue[0]["annotations"]}
    return render(
        request,
        "review.html",
        {
            "segments": segments,
            "actor": actor,
            "project": project,
            "queue": queue,
            "current": queue[0] if queue else None,
            "choices": _choices(project.schema),
            "colors": _label_colours(project.schema),
            "done": done,
        },
    )


@router.post("/projects/{project_id}/review/{task_id}")
def review_submit(
    project_id: Id,
    task_id: Id,
    db: DB,
    actor: CurrentActor,
    decision: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
) -> Response:
    """``decision`` is ``accept``, ``reject`` or ``correct:<JSON value>`` (one form, one button each)."""
    verdict, _, raw = decision.partition(":")
    review_service.review_task(db, actor, task_id, verdict, value=_parse_value(raw), comment=comment)
    return RedirectResponse(f"/projects/{project_id}/review?done={verdict}", status_code=303)


# --------------------------------------------------------------------------- label issues
@router.get("/projects/{project_id}/issues", response_class=HTMLResponse)
def issues_page(request: Request, project_id: Id, db: DB, actor: CurrentActor, done: str | None = None) -> Response:
    project = project_service.get_project(db, actor, project_id)
    issues = review_service.list_label_issues(db, actor, project_id, limit=200)
    return render(
        request,
        "issues.html",
        {
            "actor": actor,
            "project": project,
            "issues": issues,
            "labels": labels_of(project.schema),
            "colors": _label_colours(project.schema),
            "done": done,
        },
    )


@router.post("/projects/{project_id}/issues/{task_id}")
def issue_resolve(
    project_id: Id,
    task_id: Id,
    db: DB,
    actor: CurrentActor,
    action: Annotated[str, Form()],
    value: Annotated[str | None, Form()] = None,
) -> Response:
    review_service.resolve_label_issue(db, actor, task_id, action, value=_parse_value(value))
    return RedirectResponse(f"/projects/{project_id}/issues?done={action}", status_code=303)
