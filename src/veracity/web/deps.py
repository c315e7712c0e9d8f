"""FastAPI dependencies: settings, database, and the authenticated actor."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from veracity.config import Settings
from veracity.errors import AuthenticationError, PermissionDeniedError
from veracity.services import Actor
from veracity.services.users import authenticate_session, authenticate_token
from veracity.storage import Database, WriteLockBusy

__all__ = [
    "DB", "SESSION_COOKIE", "AppSettings", "Caller", "CurrentActor", "CurrentCaller", "get_actor", "get_caller",
    "get_db", "get_settings", "run_hot",
]

SESSION_COOKIE = "veracity_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id.")]


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function dependency in the
# worker thread pool, a hop that costs more than the dependency itself.
async def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
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


class Caller:
    """A request's credentials, read without I/O; :meth:`actor` checks them against the database.

    Hot endpoints (next task, submit) take a ``Caller`` and call :meth:`actor` in their own worker
    thread, so that authentication and the service share one thread hop; other endpoints take
    :data:`CurrentActor`, which does the same in a dependency.
    """

    __slots__ = ("_db", "_form_csrf", "_request")

    def __init__(self, request: Request, db: Database, form_csrf: str | None) -> None:
        self._request, self._db, self._form_csrf = request, db, form_csrf

    def actor(self) -> Actor:
        """Bearer token (API) or session cookie (browser; unsafe methods must carry the CSRF token,
        as the ``x-csrf-token`` header or, from an HTML form, the ``csrf_token`` field)."""
        request = self._request
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return authenticate_token(self._db, header[7:].strip())
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            actor, csrf = authenticate_session(self._db, sid)
            request.state.csrf_token = csrf
            sent = request.headers.get("x-csrf-token", self._form_csrf)
            if request.method in UNSAFE and (
                sent is None or not secrets.compare_digest(sent.encode(), csrf.encode())
            ):
                raise PermissionDeniedError("missing or wrong CSRF token")
            return actor
        raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>'")


async def get_caller(
    request: Request, db: DB, form_csrf: Annotated[str | None, Depends(form_csrf_token)] = None
) -> Caller:
    return Caller(request, db, form_csrf)


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def get_actor(caller: CurrentCaller) -> Actor:
    """The authenticated actor (see :meth:`Caller.actor`)."""
    return caller.actor()


CurrentActor = Annotated[Actor, Depends(get_actor)]

T = TypeVar("T")


async def run_hot(db: Database, call: Callable[[], T]) -> T:
    """Run a short labelling call (next task, submit: a token check and one small write transaction).

    SQLite takes one writer at a time, so a worker thread buys these calls no parallelism, only a
    hand-off to the thread and back and a fight for the GIL with the other waiting threads: that
    cost as much server CPU as the call itself. On SQLite the call therefore runs right here on the
    event loop when this process's write turn is free (:meth:`Database.write_turn_if_free`); it
    never waits there: when the turn is taken, or another process holds the database's write lock
    (:class:`~veracity.storage.WriteLockBusy`, raised before anything was written), the call goes
    to a worker thread as every call does on PostgreSQL.
    """
    with db.write_turn_if_free() as mine:
        if mine:
            try:
                return call()
            except WriteLockBusy:
                pass
    return await run_in_threadpool(call)
