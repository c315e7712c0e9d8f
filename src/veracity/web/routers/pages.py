"""Server-rendered pages: sign-in, sign-out and the projects list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from veracity.errors import AuthenticationError
from veracity.services import projects as project_service
from veracity.services.users import authenticate_password, authenticate_session, create_session, delete_session
from veracity.web.deps import DB, SESSION_COOKIE, AppSettings

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, error: str | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": error}
    )


@router.post("/login")
def login(
    request: Request,
    db: DB,
    settings: AppSettings,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        actor = authenticate_password(db, username, password)
    except AuthenticationError as exc:
        return request.app.state.templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": exc.message}, status_code=401
        )
    sid, _csrf = create_session(db, actor)
    response = RedirectResponse(_safe_next(next), status_code=303)
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
    projects = project_service.list_projects(db, actor)
    return request.app.state.templates.TemplateResponse(
        request, "projects.html", {"actor": actor, "csrf_token": csrf, "projects": projects}
    )
