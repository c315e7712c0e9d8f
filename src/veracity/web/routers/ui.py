"""Annotator, reviewer and manager screens (server-rendered HTML plus small JSON endpoints)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
