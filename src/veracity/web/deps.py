"""FastAPI dependencies: settings, database, and the authenticated actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from veracity.config import Settings
from veracity.errors import AuthenticationError, PermissionDeniedError
from veracity.services import Actor
from veracity.services.users import authenticate_session, authenticate_token
from veracity.storage import Database

__all__ = ["DB", "SESSION_COOKIE", "AppSettings", "CurrentActor", "get_actor", "get_db", "get_settings"]

SESSION_COOKIE = "veracity_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


DB = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings)]


def get_actor(request: Request, db: DB) -> Actor:
    """Bearer token (API) or session cookie (browser; unsafe methods must carry the CSRF token)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return authenticate_token(db, header[7:].strip())
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        actor, csrf = authenticate_session(db, sid)
        request.state.csrf_token = csrf
        if request.method in UNSAFE and request.headers.get("x-csrf-token") != csrf:
            raise PermissionDeniedError("missing or wrong CSRF token")
        return actor
    raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>'")


CurrentActor = Annotated[Actor, Depends(get_actor)]
