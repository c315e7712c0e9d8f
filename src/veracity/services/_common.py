"""Small helpers shared by the services: canonical JSON and time (item hashes: ``veracity.ingest.records``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from veracity.errors import InvalidInputError

__all__ = ["INT32_MAX", "as_utc", "canonical_json", "check_count", "iso", "now"]

#: Largest value of an ``Integer`` column (32 bits on PostgreSQL): quotas, durations, label counts.
INT32_MAX = 2**31 - 1


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


def check_count(field: str, value: Any, *, low: int = 0, high: int = INT32_MAX) -> None:
    """Reject ``value`` unless it is an integer (not a bool) from ``low`` to ``high``, naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{field}: expected an integer from {low} to {high}, got {value!r}")
