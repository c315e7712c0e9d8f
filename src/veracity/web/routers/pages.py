"""Server-rendered pages: sign-in, sign-out, the projects list and project creation."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from veracity.errors import AuthenticationError, VeracityError
from veracity.services import Actor
from veracity.services import dashboard as dashboard_service
from veracity.services import projects as project_service
from veracity.services.label_schemas import KINDS
from veracity.services.users import authenticate_password, authenticate_session, create_session, delete_session
from veracity.web.deps import DB, SESSION_COOKIE, AppSettings, CurrentActor
from veracity.web.routers.ui import render
from veracity.web.routers.ui_charts import mini_progress

router = APIRouter(include_in_schema=False)

MANAGE_ROLES = ("admin", "manager")
KIND_NAMES = {
    "classification": "Single label", "multilabel": "Multiple labels", "spans": "Text spans",
    "boxes": "Image boxes", "polygons": "Image polygons", "keypoints": "Image key points", "text": "Free text",
    "rating": "Rating", "pairwise": "Pairwise preference", "ranking": "Ranking",
}


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def _landing(db: DB, actor: Actor) -> str:
    """Where a sign-in lands: the first project's dashboard (its labelling screen for annotators)."""
    projects = project_service.list_projects(db, actor)
    if not projects:
        return "/"
    screen = "label" if actor.role == "annotator" else "dashboard"
    return f"/projects/{projects[0]['id']}/{screen}"


LOGIN_CSRF_COOKIE = "veracity_login_csrf"


def _login_page(request: Request, settings: AppSettings, *, next: str | None, error: str | None,
                status_code: int = 200) -> Response:
    """The sign-in form with a fresh double-submit CSRF token (cookie and hidden field must match)."""
    token = secrets.token_urlsafe(24)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next) if next else "", "error": error, "csrf_token": token},
        status_code=status_code,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.cookie_secure,
                        max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: AppSettings, next: str | None = None, error: str | None = None) -> Response:
    return _login_page(request, settings, next=next, error=error)


@router.post("/login")
def login(
    request: Request,
    db: DB,
    settings: AppSettings,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _login_page(request, settings, next=next, error="The sign-in form expired; please try again.",
                           status_code=403)
    try:
        actor = authenticate_password(db, username, password)
    except AuthenticationError as exc:
        return _login_page(request, settings, next=next, error=exc.message, status_code=401)
    sid, _csrf = create_session(db, actor)
    wanted = _safe_next(next)
    target = wanted if wanted != "/" else _landing(db, actor)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", secure=settings.cookie_secure,
                        max_age=7 * 24 * 3600)
    return response


@router.post("/logout")
def logout(request: Request, db: DB, csrf_token: Annotated[str, Form()] = "") -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        try:
            _actor, csrf = authenticate_session(db, sid)
        except AuthenticationError:
            csrf = None
        if csrf is None or csrf == csrf_token:
            delete_session(db, sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DB) -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return RedirectResponse("/login", status_code=303)
    try:
        actor, csrf = authenticate_session(db, sid)
    except AuthenticationError:
        return RedirectResponse("/login", status_code=303)
    request.state.csrf_token = csrf
    projects = project_service.list_projects(db, actor)
    summaries = dashboard_service.project_summaries(db, actor, [p["id"] for p in projects])
    for p in projects:
        s = summaries.get(p["id"], {"tasks": 0, "done": 0, "flagged": 0})
        p["summary"] = s
        p["bar"] = mini_progress(s["done"], s["tasks"], s["flagged"])
    return render(request, "projects.html", {"actor": actor, "projects": projects, "kind_names": KIND_NAMES,
                                             "can_create": actor.role in MANAGE_ROLES})


# --------------------------------------------------------------------------- project creation
def _form_defaults() -> dict[str, Any]:
    return {"name": "", "description": "", "kind": "classification", "overlap": 1, "gold_rate": 0.0,
            "instructions": "", "rows": [{"name": "", "color": "", "hotkey": ""} for _ in range(4)],
            "rating_min": 1, "rating_max": 5, "max_length": ""}


@router.get("/projects/new", response_class=HTMLResponse)
def new_project_form(request: Request, actor: CurrentActor) -> Response:
    return render(request, "project_new.html", {"actor": actor, "form": _form_defaults(), "kinds": KINDS,
                                                "kind_names": KIND_NAMES, "error": None})


@router.post("/projects/new")
def create_project(
    request: Request,
    db: DB,
    actor: CurrentActor,
    name: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    overlap: Annotated[int, Form()] = 1,
    gold_rate: Annotated[float, Form()] = 0.0,
    instructions: Annotated[str, Form()] = "",
    label_name: Annotated[list[str] | None, Form()] = None,
    label_color: Annotated[list[str] | None, Form()] = None,
    label_hotkey: Annotated[list[str] | None, Form()] = None,
    rating_min: Annotated[float, Form()] = 1.0,
    rating_max: Annotated[float, Form()] = 5.0,
    max_length: Annotated[str, Form()] = "",
) -> Response:
    names, colours, keys = label_name or [], label_color or [], label_hotkey or []
    rows = [{"name": n.strip(), "color": (colours[i] if i < len(colours) else "").strip(),
             "hotkey": (keys[i] if i < len(keys) else "").strip()} for i, n in enumerate(names)]
    rows = [r for r in rows if r["name"]]
    schema: dict[str, Any] = {"kind": kind}
    if rows:
        schema["labels"] = [r["name"] for r in rows]
        if any(r["color"] for r in rows):
            schema["colors"] = {r["name"]: r["color"] for r in rows if r["color"]}
        if any(r["hotkey"] for r in rows):
            schema["hotkeys"] = {r["name"]: r["hotkey"][:1] for r in rows if r["hotkey"]}
    if instructions.strip():
        schema["instructions"] = instructions
    if kind == "rating":
        schema.update({"min": int(rating_min) if rating_min.is_integer() else rating_min,
                       "max": int(rating_max) if rating_max.is_integer() else rating_max, "step": 1})
    if kind == "text" and max_length.strip().isdigit():
        schema["max_length"] = int(max_length)
    try:
        view = project_service.create_project(db, actor, name=name, schema=schema, description=description,
                                              overlap=overlap, gold_rate=gold_rate)
    except VeracityError as exc:
        form = {"name": name, "description": description, "kind": kind, "overlap": overlap,
                "gold_rate": gold_rate, "instructions": instructions,
                "rows": rows + [{"name": "", "color": "", "hotkey": ""}] * max(1, 4 - len(rows)),
                "rating_min": rating_min, "rating_max": rating_max, "max_length": max_length}
        return render(request, "project_new.html", {"actor": actor, "form": form, "kinds": KINDS,
                                                    "kind_names": KIND_NAMES, "error": exc.message},
                      status_code=422)
    return RedirectResponse(f"/projects/{view.id}/dashboard", status_code=303)
