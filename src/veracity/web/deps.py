"""FastAPI dependencies: settings, database, and the authenticated actor."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Path, Request

from veracity.config import Settings
from veracity.errors import AuthenticationError, PermissionDeniedError
from veracity.services import Actor
from veracity.services.users import authenticate_session, authenticate_token
from veracity.storage import Database

__all__ = ["DB", "SESSION_COOKIE", "AppSettings", "CurrentActor", "get_actor", "get_db", "get_settings"]

SESSION_COOKIE = "veracity_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id.")]


def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


DB = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def form_csrf_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a plain HTML form posted without the ``x-csrf-token`` header."""
    if request.method not in UNSAFE or "x-csrf-token" in request.headers:
        return None
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return None
    value = (await request.form()).get("csrf_token")
    return value if isinstance(value, str) else None


def get_actor(
    request: Request, db: DB, form_csrf: Annotated[str | None, Depends(form_csrf_token)] = None
) -> Actor:
    """Bearer token (API) or session cookie (browser; unsafe methods must carry the CSRF token,
    as the ``x-csrf-token`` header or, from an HTML form, the ``csrf_token`` field)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return authenticate_token(db, header[7:].strip())
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        actor, csrf = authenticate_session(db, sid)
        request.state.csrf_token = csrf
        sent = request.headers.get("x-csrf-token", form_csrf)
        if request.method in UNSAFE and (sent is None or not secrets.compare_digest(sent.encode(), csrf.encode())):
            raise PermissionDeniedError("missing or wrong CSRF token")
        return actor
    raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>'")


CurrentActor = Annotated[Actor, Depends(get_actor)]
