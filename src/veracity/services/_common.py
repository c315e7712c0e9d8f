"""Small helpers shared by the services: canonical JSON, hashing, time."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

__all__ = ["as_utc", "canonical_json", "content_hash", "iso", "now"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(data: Any) -> str:
    """sha256 of the canonical JSON of an item's data."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()
