"""Small helpers shared by the services: canonical JSON and time (item hashes: ``veracity.ingest.records``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

__all__ = ["as_utc", "canonical_json", "iso", "now"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()
