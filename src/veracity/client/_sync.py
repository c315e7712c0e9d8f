"""The synchronous client, over ``httpx.Client``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import httpx

from veracity.client import _calls as calls
from veracity.client._base import USER_AGENT, auth_headers, server_root
from veracity.client._calls import Call, RetryPolicy
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

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Veracity's REST API from Python.

    Parameters
    ----------
    base_url : str
        Where ``veracity serve`` listens, e.g. ``"http://127.0.0.1:8000"`` (a trailing ``/api/v1``
        is allowed).
    token : str
        An API token (``veracity users create NAME --role ROLE`` prints one).
    timeout : float or httpx.Timeout
        Seconds per request (connect, read, write and pool).
    retries : int
        How many times a failed request is tried again (see :mod:`veracity.client` for which).
    backoff : float
        First backoff in seconds; doubled on every retry, with jitter.
    transport : httpx.BaseTransport, optional
        A custom transport (for example ``httpx.WSGITransport`` or a mock in tests).

    Errors come back as the :mod:`veracity.errors` classes the server raised, with the server's
    message and ``details`` (for example the field at fault).

    Examples
    --------
    >>> with Client("http://127.0.0.1:8000", token) as vc:               # doctest: +SKIP
    ...     p = vc.create_project("Pets", {"kind": "classification", "labels": ["cat", "dog"]})
    ...     vc.import_items(p["id"], [{"text": "meow"}, {"text": "woof"}])
    ...     task = vc.next_task(p["id"])
    ...     vc.submit_annotation(task["task_id"], "cat")
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry_policy = RetryPolicy(retries=retries, backoff=backoff)
        self._http = httpx.Client(
            base_url=server_root(base_url),
            headers={**auth_headers(token), "User-Agent": USER_AGENT, **(headers or {})},
            timeout=timeout,
            transport=transport,
        )

    # ----------------------------------------------------------------------- plumbing
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method, call.path, params=call.params, json=call.json, content=call.content,
                headers=call.headers,
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retry_policy.after_error(call, exc, attempt)
                if delay is None:
                    raise
            else:
                delay = self.retry_policy.after_response(call, response, attempt)
                if delay is None:
                    return response
                response.close()
            time.sleep(delay)
            attempt += 1

    def _run(self, call: Call[T]) -> T:
        return call.finish(self._send(call))

    # ----------------------------------------------------------------------- projects
    def health(self) -> Health:
        """``GET /healthz``: server version and database dialect."""
        return self._run(calls.health())

    def create_project(
        self,
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
    ) -> Project:
        """Create a project (retried only if the connection could not be made)."""
        return self._run(calls.create_project(
            name, schema, overlap=overlap, gold_rate=gold_rate, description=description, min_labels=min_labels,
            max_labels=max_labels, target_confidence=target_confidence, consensus_method=consensus_method,
            settings=settings,
        ))

    def list_projects(self) -> list[ProjectSummary]:
        """Projects visible to the caller, with task and annotation counts."""
        return self._run(calls.list_projects())

    def get_project(self, project_id: int) -> Project:
        return self._run(calls.get_project(project_id))

    def add_member(self, project_id: int, user: str, role: str, *, quota: int | None = None) -> MemberResult:
        """Add a member (annotator, reviewer, manager, viewer) or change their role and quota."""
        return self._run(calls.add_member(project_id, user, role, quota=quota))

    def list_members(self, project_id: int) -> list[Member]:
        return self._run(calls.list_members(project_id))

    def import_items(self, project_id: int, items: Sequence[Mapping[str, Any]]) -> ImportResult:
        """Import item objects (their fields become ``item.data``; ``id``, ``label``, ``gold`` are
        reserved). Exact duplicates are reported, not stored twice, so retries are safe."""
        return self._run(calls.import_items(project_id, items))

    def import_ndjson(self, project_id: int, source: str | PathLike[str] | bytes) -> ImportResult:
        """Import NDJSON from a file path or from bytes."""
        return self._run(calls.import_ndjson(project_id, source))

    # ----------------------------------------------------------------------- labelling
    def next_task(self, project_id: int) -> Task | None:
        """Lease the next task for the caller; None when there is nothing left for them."""
        return self._run(calls.next_task(project_id))

    def submit_annotation(
        self, task_id: int, value: Any, *, idempotency_key: str | None = None, duration_ms: int | None = None
    ) -> AnnotationResult:
        """Submit a label for a leased task. A fresh idempotency key is drawn when none is given,
        so the client's own retries store one annotation; ``replayed`` tells a repeat apart."""
        return self._run(calls.submit_annotation(task_id, value, idempotency_key=idempotency_key,
                                                 duration_ms=duration_ms))

    def skip_task(self, task_id: int) -> None:
        """Give a leased task back to the queue; it is not served to the caller again."""
        self._run(calls.skip_task(task_id))

    def undo(self, project_id: int) -> Task:
        """Take back the caller's last label in the project; its task is leased to them again."""
        return self._run(calls.undo(project_id))

    # ----------------------------------------------------------------------- listings
    def list_items(
        self,
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
    ) -> Page[ItemRow]:
        """One page of items with their state and consensus; ``text`` is the ``q`` filter."""
        return self._run(calls.list_items(
            project_id, label=label, min_confidence=min_confidence, max_confidence=max_confidence,
            annotator=annotator, status=status, flagged=flagged, text=text, cursor=cursor, limit=limit,
        ))

    def iter_items(
        self,
        project_id: int,
        *,
        label: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        annotator: str | None = None,
        status: str | None = None,
        flagged: bool | None = None,
        text: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[ItemRow]:
        """Every matching item, following ``X-Next-Cursor`` page by page."""
        cursor: int | None = 0
        while cursor is not None:
            page = self.list_items(
                project_id, label=label, min_confidence=min_confidence, max_confidence=max_confidence,
                annotator=annotator, status=status, flagged=flagged, text=text, cursor=cursor, limit=page_size,
            )
            yield from page.rows
            cursor = page.next_cursor

    def list_consensus(
        self, project_id: int, *, label: str | None = None, cursor: int = 0, limit: int = 100
    ) -> Page[ConsensusRow]:
        """One page of consensus rows: label, posterior confidence, number of labels."""
        return self._run(calls.list_consensus(project_id, label=label, cursor=cursor, limit=limit))

    def iter_consensus(
        self, project_id: int, *, label: str | None = None, page_size: int = 1000
    ) -> Iterator[ConsensusRow]:
        """Every consensus row (optionally of one ``label``), following ``X-Next-Cursor``."""
        cursor: int | None = 0
        while cursor is not None:
            page = self.list_consensus(project_id, label=label, cursor=cursor, limit=page_size)
            yield from page.rows
            cursor = page.next_cursor

    @overload
    def export(self, project_id: int, format: str = ..., *, path: None = None) -> bytes: ...

    @overload
    def export(self, project_id: int, format: str = ..., *, path: str | PathLike[str]) -> Path: ...

    def export(
        self, project_id: int, format: str = "jsonl", *, path: str | PathLike[str] | None = None
    ) -> bytes | Path:
        """Export every item with its consensus and annotations: the bytes, or streamed to ``path``
        (under a temporary name, renamed once complete: a failed export leaves ``path`` as it was)."""
        call = calls.export(project_id, format)
        if path is None:
            return self._run(call)
        target = Path(path)
        partial = calls.partial_path(target)  # a failed or cut export leaves nothing at ``path``
        response = self._send(call, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise error_from_response(response)
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
            os.replace(partial, target)
        finally:
            response.close()
            partial.unlink(missing_ok=True)
        return target

    # ----------------------------------------------------------------------- workflow
    def import_predictions(
        self, project_id: int, predictions: Sequence[Mapping[str, Any]], *, model: str, model_version: str = ""
    ) -> PredictionsResult:
        """Store model outputs (``value`` and/or ``probabilities``) per item, by ``item_id`` or
        ``external_id``; they become editable pre-labels."""
        call = calls.import_predictions(project_id, predictions, model=model, model_version=model_version)
        return self._run(call)

    def assign_items(self, project_id: int, user: str, item_ids: Sequence[int]) -> AssignResult:
        """Reserve a slot of each item for a named annotator; they are served these first."""
        return self._run(calls.assign_items(project_id, user, item_ids))

    def review_queue(self, project_id: int, *, limit: int = 50) -> list[ReviewTask]:
        """Tasks waiting for review that the caller did not label, oldest first."""
        return self._run(calls.review_queue(project_id, limit=limit))

    def review_task(self, task_id: int, verdict: str, *, value: Any = None, comment: str = "") -> ReviewResult:
        """``accept``, ``reject`` (back to the queue) or ``correct`` (to ``value``) a task."""
        return self._run(calls.review_task(task_id, verdict, value=value, comment=comment))

    def flag_label_issues(self, project_id: int, *, model: str | None = None) -> FlagResult:
        """Flag items whose consensus disagrees with the model's probabilities."""
        return self._run(calls.flag_label_issues(project_id, model=model))

    def list_label_issues(self, project_id: int, *, limit: int = 100) -> list[ReviewTask]:
        return self._run(calls.list_label_issues(project_id, limit=limit))

    def resolve_label_issue(self, task_id: int, action: str, *, value: Any = None) -> ReviewResult:
        """``keep`` the given label of a suspect item or ``fix`` it (to ``value``, default the suggestion)."""
        return self._run(calls.resolve_label_issue(task_id, action, value=value))

    def refit(self, project_id: int, *, method: str | None = None) -> RefitResult:
        """Refit consensus and annotator skills with the full truth-inference model."""
        return self._run(calls.refit(project_id, method=method))

    # ----------------------------------------------------------------------- decisions
    def set_decision_policy(
        self,
        project_id: int,
        *,
        coverage: float = 0.9,
        score: str = "lac",
        threshold: float = 0.0,
        class_conditional: bool = False,
        calibration: str = "none",
    ) -> DecisionPolicy:
        """Set the project's decision policy: conformal ``coverage`` and ``score`` (lac, aps, raps),
        the confidence ``threshold`` for auto-accepting a single-label set, and ``calibration``
        (``"temperature"`` recalibrates the model's probabilities first)."""
        return self._run(calls.set_decision_policy(
            project_id, coverage=coverage, score=score, threshold=threshold, class_conditional=class_conditional,
            calibration=calibration,
        ))

    def run_decisions(
        self, project_id: int, *, model: str, model_version: str | None = None, trusted_confidence: float = 0.9
    ) -> DecisionRun:
        """Calibrate the policy on trusted labels and decide every undecided item with ``model``'s
        probabilities: confident ones are accepted, the rest queued for an analyst."""
        return self._run(calls.run_decisions(
            project_id, model=model, model_version=model_version, trusted_confidence=trusted_confidence
        ))

    def decision_queue(self, project_id: int, *, status: str = "pending", limit: int = 50) -> list[QueuedDecision]:
        """Decisions waiting for an analyst (or ``status="escalated"``), with their evidence."""
        return self._run(calls.decision_queue(project_id, status=status, limit=limit))

    def record_decision(
        self, decision_id: int, action: str, *, label: str | None = None, reason: str = ""
    ) -> DecisionResult:
        """``accept`` (the top label, or ``label`` from the set), ``override`` to ``label`` with a
        ``reason``, or ``escalate``; recorded in the audit log."""
        return self._run(calls.record_decision(decision_id, action, label=label, reason=reason))

    # ----------------------------------------------------------------------- catalogue
    def list_datasets(self, *, batches: int = 10) -> list[DatasetSummary]:
        """Every dataset with its item count, versions and latest ``batches`` import batches."""
        return self._run(calls.list_datasets(batches=batches))

    def get_dataset(self, name: str) -> DatasetSummary:
        """One dataset with its versions and import batches."""
        return self._run(calls.get_dataset(name))

    def list_dataset_items(self, name: str, *, cursor: int = 0, limit: int = 100) -> Page[DatasetItem]:
        """One page of a dataset's items with content hash, source and row."""
        return self._run(calls.list_dataset_items(name, cursor=cursor, limit=limit))

    def iter_dataset_items(self, name: str, *, page_size: int = 1000) -> Iterator[DatasetItem]:
        """Every item of a dataset the caller may see, following ``X-Next-Cursor``."""
        cursor: int | None = 0
        while cursor is not None:
            page = self.list_dataset_items(name, cursor=cursor, limit=page_size)
            yield from page.rows
            cursor = page.next_cursor

    def dataset_duplicates(
        self,
        name: str,
        *,
        field: str | None = None,
        threshold: float | None = None,
        max_distance: int | None = None,
        limit: int | None = None,
        clusters: int | None = None,
    ) -> DuplicateReport:
        """Near-duplicate clusters (the ``clusters`` largest) of a dataset's first ``limit`` items, and the
        exact duplicates its imports reported."""
        call = calls.dataset_duplicates(
            name, field=field, threshold=threshold, max_distance=max_distance, limit=limit, clusters=clusters
        )
        return self._run(call)

    def item_lineage(self, item_id: int) -> ItemLineage:
        """Where an item came from: source, row, content hash, import batch, labels and versions."""
        return self._run(calls.item_lineage(item_id))
