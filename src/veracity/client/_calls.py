"""Request building and response decoding shared by :class:`Client` and :class:`AsyncClient`.

Each endpoint is a function returning a :class:`Call`: the HTTP request to make, whether it may be
retried, and how to decode the answer. The two clients only differ in how they send it.

Retry policy (``Call.retry``):

- ``"always"``: the request is safe to repeat: reads, writes that are idempotent by content
  (item import reports duplicates, member roles and assignments are set, not added) and writes
  that carry an idempotency key (annotations). Retried on transport errors and on 429/502/503/504,
  waiting at least as long as a ``Retry-After`` header asks (up to ``max_retry_after``).
- ``"connect"``: a write that would be applied twice (project creation, undo, review verdicts,
  prediction import, skip). Retried only when the connection could not be made, so the request
  was never sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import math
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from veracity.client._errors import error_from_response
from veracity.client._types import (
    AnnotationResult,
    AssignResult,
    ConsensusRow,
    DatasetItem,
    DatasetSummary,
    DecisionPolicy,
    DecisionResult,
    DecisionRun,
    DuplicateReport,
    FlagResult,
    Health,
    ImportResult,
    ItemLineage,
    ItemRow,
    Member,
    MemberResult,
    Page,
    PredictionsResult,
    Project,
    ProjectSummary,
    QueuedDecision,
    RefitResult,
    ReviewResult,
    ReviewTask,
    Task,
)
from veracity.errors import InvalidInputError

T = TypeVar("T")
RetryMode = Literal["always", "connect"]
API = "/api/v1"
# 429: a rate limit (a proxy's, say) turned the request away; 502/503/504: the server was not reached or busy
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Raised before any byte of the request left: always safe to try again.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One REST request and the decoder of its successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: RetryMode = "always"

    def __post_init__(self) -> None:
        # numpy / pandas values become plain JSON here, once, before anything is sent
        if self.json is not None:
            object.__setattr__(self, "json", jsonable(self.json))

    def finish(self, response: httpx.Response) -> T:
        """Decode a final response, raising the mapped :mod:`veracity.errors` class on failure."""
        if response.status_code >= 400:
            raise error_from_response(response)
        return self.decode(response)


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), None if absent or bad."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return (when - dt.datetime.now(dt.UTC)).total_seconds()
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: ``backoff * 2**attempt`` seconds at most, capped."""

    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def _delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        delay = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
        asked = None if response is None else _retry_after(response.headers.get("retry-after"))
        if asked is not None:  # the server said how long to wait: wait that long (within reason)
            delay = max(delay, min(self.max_retry_after, asked))
        return delay

    def after_error(self, call: Call[Any], exc: httpx.TransportError, attempt: int) -> float | None:
        """Seconds to wait before retrying after a transport error, or None to give up."""
        if attempt >= self.retries:
            return None
        if isinstance(exc, NOT_SENT) or call.retry == "always":
            return self._delay(attempt)
        return None

    def after_response(self, call: Call[Any], response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``response``, or None to keep it."""
        if attempt >= self.retries or call.retry != "always" or response.status_code not in RETRY_STATUSES:
            return None
        return self._delay(attempt, response)


# --------------------------------------------------------------------------- encoding
def _plain(value: Any) -> Any:
    """A numpy scalar or array, or a pandas Series, as Python values (without importing either)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) and not isinstance(value, str | bytes) else value


def jsonable(value: Any, where: str = "") -> Any:
    """``value`` with numpy scalars and arrays (and anything else with ``tolist()``) made plain lists
    and numbers, tuples made lists and dates ISO strings, so that it serialises as JSON. NaN and
    infinity, and objects JSON has no form for, raise naming the field (``where``) at fault."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"{where or 'body'}: expected a finite number, got {value} (NaN and infinity are not JSON)"
            )
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    plain = _plain(value)
    if plain is not value:
        return jsonable(plain, where)
    raise TypeError(f"{where or 'body'}: cannot send a {type(value).__name__} as JSON "
                    "(expected a number, string, bool, None, list, dict or numpy value)")


def _records(rows: Any, name: str) -> list[Any]:
    """A list of objects from a sequence of mappings or a pandas DataFrame (its rows as records)."""
    to_dict = getattr(rows, "to_dict", None)
    if callable(to_dict) and hasattr(rows, "columns"):  # a DataFrame, duck-typed
        return cast(list[Any], to_dict(orient="records"))
    if isinstance(rows, Mapping | str | bytes):
        raise TypeError(f"{name}: expected a list of objects, got {type(rows).__name__}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"{name}[{i}]: expected an object (a dict), got {type(row).__name__}")
        out.append(dict(row))
    return out


# --------------------------------------------------------------------------- decoders
def _json(response: httpx.Response) -> Any:
    return response.json()


def _as(kind: type[T]) -> Callable[[httpx.Response], T]:
    return cast(Callable[[httpx.Response], T], _json)


def _next_cursor(response: httpx.Response) -> int | None:
    raw = response.headers.get("x-next-cursor")
    return int(raw) if raw else None


def _page(kind: type[T]) -> Callable[[httpx.Response], Page[T]]:
    def decode(response: httpx.Response) -> Page[T]:
        return Page.of(cast(list[T], response.json()), _next_cursor(response))

    return decode


def _optional_task(response: httpx.Response) -> Task | None:
    return None if response.status_code == 204 else cast(Task, response.json())


def _none(_response: httpx.Response) -> None:
    return None


def _annotation(response: httpx.Response) -> AnnotationResult:
    body = response.json()
    body["replayed"] = response.headers.get("idempotent-replayed", "").lower() == "true"
    return cast(AnnotationResult, body)


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _query_value(v: Any) -> Any:
    v = _plain(v)  # a numpy scalar -> its Python value
    return ("true" if v else "false") if isinstance(v, bool) else v


def _id(value: Any, name: str) -> int:
    """An id as an int: Python and numpy integers, or a float that is a whole number; anything else
    (``3.7``, ``True``, ``"3"``) is refused rather than truncated or sent as something else."""
    plain = _plain(value)
    whole = isinstance(plain, int) or (isinstance(plain, float) and plain.is_integer())
    if isinstance(plain, bool) or not whole:
        raise InvalidInputError(f"{name}: expected an integer id, got {value!r}")
    return int(plain)


def _pid(value: Any) -> int:
    return _id(value, "project_id")


def _tid(value: Any) -> int:
    return _id(value, "task_id")


def _iid(value: Any) -> int:
    return _id(value, "item_id")


def _did(value: Any) -> int:
    return _id(value, "decision_id")


def partial_path(target: Path) -> Path:
    """Where an export to ``target`` is written until it is complete (then renamed to ``target``)."""
    return target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")


def _params(**values: Any) -> dict[str, Any]:
    return {k: _query_value(v) for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- projects
def health() -> Call[Health]:
    return Call("GET", "/healthz", _as(Health))


def create_project(
    name: str,
    schema: Mapping[str, Any],
    *,
    overlap: int = 1,
    gold_rate: float = 0.0,
    description: str = "",
    min_labels: int | None = None,
    max_labels: int | None = None,
    target_confidence: float | None = None,
    consensus_method: str = "mv",
    settings: Mapping[str, Any] | None = None,
) -> Call[Project]:
    body = _drop_none({
        "name": name, "schema": dict(schema), "overlap": overlap, "gold_rate": gold_rate,
        "description": description, "min_labels": min_labels, "max_labels": max_labels,
        "target_confidence": target_confidence, "consensus_method": consensus_method,
        "settings": None if settings is None else dict(settings),
    })
    return Call("POST", f"{API}/projects", _as(Project), json=body, retry="connect")


def list_projects() -> Call[list[ProjectSummary]]:
    return Call("GET", f"{API}/projects", _as(list[ProjectSummary]))


def get_project(project_id: int) -> Call[Project]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}", _as(Project))


def add_member(project_id: int, user: str, role: str, *, quota: int | None = None) -> Call[MemberResult]:
    body = _drop_none({"user": user, "role": role, "quota": quota})
    return Call("POST", f"{API}/projects/{_pid(project_id)}/members", _as(MemberResult), json=body)


def list_members(project_id: int) -> Call[list[Member]]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}/members", _as(list[Member]))


def import_items(project_id: int, items: Sequence[Mapping[str, Any]]) -> Call[ImportResult]:
    records = jsonable(_records(items, "items"), "items")
    content = json.dumps(records, ensure_ascii=False, allow_nan=False).encode()
    return Call("POST", f"{API}/projects/{_pid(project_id)}/items", _as(ImportResult), content=content,
                headers={"Content-Type": "application/json"})


def import_ndjson(project_id: int, source: str | PathLike[str] | bytes) -> Call[ImportResult]:
    """NDJSON from a file path or from bytes (a ``str`` is a path)."""
    content = source if isinstance(source, bytes) else Path(fspath(source)).read_bytes()
    return Call("POST", f"{API}/projects/{_pid(project_id)}/items", _as(ImportResult), content=content,
                headers={"Content-Type": NDJSON})


def next_task(project_id: int) -> Call[Task | None]:
    # Safe to retry: a lease the caller already holds is handed out again, not a second one.
    return Call("GET", f"{API}/projects/{_pid(project_id)}/next", _optional_task)


def submit_annotation(
    task_id: int, value: Any, *, idempotency_key: str | None = None, duration_ms: int | None = None
) -> Call[AnnotationResult]:
    key = idempotency_key if idempotency_key is not None else uuid.uuid4().hex
    body = _drop_none({"value": value, "idempotency_key": key, "duration_ms": duration_ms})
    body["value"] = value  # a None value is sent, so that the server names it
    return Call("POST", f"{API}/tasks/{_tid(task_id)}/annotations", _annotation, json=body)


def skip_task(task_id: int) -> Call[None]:
    return Call("POST", f"{API}/tasks/{_tid(task_id)}/skip", _none, retry="connect")


def undo(project_id: int) -> Call[Task]:
    return Call("POST", f"{API}/projects/{_pid(project_id)}/undo", _as(Task), retry="connect")


# --------------------------------------------------------------------------- listings
def list_items(
    project_id: int,
    *,
    label: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    annotator: str | None = None,
    status: str | None = None,
    flagged: bool | None = None,
    text: str | None = None,
    cursor: int = 0,
    limit: int = 100,
) -> Call[Page[ItemRow]]:
    params = _params(label=label, min_confidence=min_confidence, max_confidence=max_confidence,
                     annotator=annotator, status=status, flagged=flagged, q=text, cursor=cursor, limit=limit)
    return Call("GET", f"{API}/projects/{_pid(project_id)}/items", _page(ItemRow), params=params)


def list_consensus(
    project_id: int, *, label: str | None = None, cursor: int = 0, limit: int = 100
) -> Call[Page[ConsensusRow]]:
    params = _params(label=label, cursor=cursor, limit=limit)
    return Call("GET", f"{API}/projects/{_pid(project_id)}/consensus", _page(ConsensusRow), params=params)


def export(project_id: int, format: str = "jsonl") -> Call[bytes]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}/export", lambda r: r.content,
                params={"format": format})


# --------------------------------------------------------------------------- workflow
def import_predictions(
    project_id: int, predictions: Sequence[Mapping[str, Any]], *, model: str, model_version: str = ""
) -> Call[PredictionsResult]:
    body = {"model": model, "model_version": model_version, "predictions": _records(predictions, "predictions")}
    return Call("POST", f"{API}/projects/{_pid(project_id)}/predictions", _as(PredictionsResult), json=body,
                retry="connect")


def assign_items(project_id: int, user: str, item_ids: Sequence[int]) -> Call[AssignResult]:
    body = {"user": user, "item_ids": [_id(i, f"item_ids[{n}]") for n, i in enumerate(item_ids)]}
    return Call("POST", f"{API}/projects/{_pid(project_id)}/assignments", _as(AssignResult), json=body)


def review_queue(project_id: int, *, limit: int = 50) -> Call[list[ReviewTask]]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}/review", _as(list[ReviewTask]), params={"limit": limit})


def review_task(task_id: int, verdict: str, *, value: Any = None, comment: str = "") -> Call[ReviewResult]:
    body = {"verdict": verdict, "value": value, "comment": comment}
    return Call("POST", f"{API}/tasks/{_tid(task_id)}/review", _as(ReviewResult), json=body, retry="connect")


def flag_label_issues(project_id: int, *, model: str | None = None) -> Call[FlagResult]:
    return Call("POST", f"{API}/projects/{_pid(project_id)}/label-issues", _as(FlagResult), params=_params(model=model))


def list_label_issues(project_id: int, *, limit: int = 100) -> Call[list[ReviewTask]]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}/label-issues", _as(list[ReviewTask]),
                params={"limit": limit})


def resolve_label_issue(task_id: int, action: str, *, value: Any = None) -> Call[ReviewResult]:
    body = {"action": action, "value": value}
    return Call("POST", f"{API}/tasks/{_tid(task_id)}/label-issue", _as(ReviewResult), json=body, retry="connect")


def refit(project_id: int, *, method: str | None = None) -> Call[RefitResult]:
    return Call("POST", f"{API}/projects/{_pid(project_id)}/refit", _as(RefitResult), params=_params(method=method))


# --------------------------------------------------------------------------- decisions
def set_decision_policy(
    project_id: int,
    *,
    coverage: float = 0.9,
    score: str = "lac",
    threshold: float = 0.0,
    class_conditional: bool = False,
    calibration: str = "none",
) -> Call[DecisionPolicy]:
    body = {"coverage": coverage, "score": score, "threshold": threshold, "class_conditional": class_conditional,
            "calibration": calibration}
    return Call("PUT", f"{API}/projects/{_pid(project_id)}/decision-policy", _as(DecisionPolicy), json=body)


def run_decisions(
    project_id: int, *, model: str, model_version: str | None = None, trusted_confidence: float = 0.9
) -> Call[DecisionRun]:
    body = {"model": model, "model_version": model_version, "trusted_confidence": trusted_confidence}
    # deciding twice decides nothing new (items already decided are skipped): safe to retry
    return Call("POST", f"{API}/projects/{_pid(project_id)}/decisions", _as(DecisionRun), json=body)


def decision_queue(project_id: int, *, status: str = "pending", limit: int = 50) -> Call[list[QueuedDecision]]:
    return Call("GET", f"{API}/projects/{_pid(project_id)}/decisions", _as(list[QueuedDecision]),
                params={"status": status, "limit": limit})


def record_decision(
    decision_id: int, action: str, *, label: str | None = None, reason: str = ""
) -> Call[DecisionResult]:
    body = {"action": action, "label": label, "reason": reason}
    return Call("POST", f"{API}/decisions/{_did(decision_id)}", _as(DecisionResult), json=body, retry="connect")


# --------------------------------------------------------------------------- catalogue
def _dataset_path(name: str) -> str:
    return f"{API}/datasets/{quote(name, safe='')}"


def list_datasets(*, batches: int = 10) -> Call[list[DatasetSummary]]:
    return Call("GET", f"{API}/datasets", _as(list[DatasetSummary]), params=_params(batches=batches))


def get_dataset(name: str) -> Call[DatasetSummary]:
    return Call("GET", _dataset_path(name), _as(DatasetSummary))


def list_dataset_items(name: str, *, cursor: int = 0, limit: int = 100) -> Call[Page[DatasetItem]]:
    return Call("GET", f"{_dataset_path(name)}/items", _page(DatasetItem), params=_params(cursor=cursor, limit=limit))


def dataset_duplicates(
    name: str,
    *,
    field: str | None = None,
    threshold: float | None = None,
    max_distance: int | None = None,
    limit: int | None = None,
    clusters: int | None = None,
) -> Call[DuplicateReport]:
    params = _params(field=field, threshold=threshold, max_distance=max_distance, limit=limit, clusters=clusters)
    return Call("GET", f"{_dataset_path(name)}/duplicates", _as(DuplicateReport), params=params)


def item_lineage(item_id: int) -> Call[ItemLineage]:
    return Call("GET", f"{API}/items/{_iid(item_id)}/lineage", _as(ItemLineage))
