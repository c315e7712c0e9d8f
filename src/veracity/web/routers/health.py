"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from veracity import __version__
from veracity.web.deps import DB

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database check")
def get_health(db: DB) -> dict[str, Any]:
    with db.transaction(write=False) as s:
        s.execute(text("SELECT 1"))
    return {"ok": True, "version": __version__, "database": db.dialect}
