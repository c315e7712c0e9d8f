"""Map Veracity errors to HTTP responses, in exactly one place.

``/api`` paths get JSON ``{"ok": false, "error": {"code", "message", "details"}}``; UI paths get an
HTML error page (and a redirect to sign-in when the visitor is not signed in).
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from veracity.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    VeracityError,
)

__all__ = ["install_error_handlers", "status_for"]


def status_for(exc: VeracityError) -> int:
    for cls, status in (
        (AuthenticationError, 401),
        (PermissionDeniedError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (InvalidInputError, 422),
        (StorageError, 503),
    ):
        if isinstance(exc, cls):
            return status
    return 400


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or "application/json" in request.headers.get("accept", "")


def _json(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> Response:
    body = {"ok": False, "error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _html(request: Request, status: int, message: str) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                      status_code=status)


async def handle_veracity_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VeracityError)
    status = status_for(exc)
    if _wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _json(status, exc.code, exc.message, exc.details, headers)
    if status == 401:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return _html(request, status, exc.message)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details[:5])
    if _wants_json(request):
        return _json(422, "invalid_input", message, details)
    return _html(request, 422, message)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _wants_json(request):
        return _json(exc.status_code, "http_error", str(exc.detail), headers=getattr(exc, "headers", None))
    return HTMLResponse(
        f"<h1>{exc.status_code}</h1><p>{html.escape(str(exc.detail))}</p>", status_code=exc.status_code
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VeracityError, handle_veracity_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
