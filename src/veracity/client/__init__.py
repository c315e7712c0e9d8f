"""Python SDK of Veracity's REST API: :class:`Client` (sync) and :class:`AsyncClient` (async), on httpx.

Both clients have the same methods, one per endpoint, and build their requests in one place
(``_calls``). They import only httpx, the standard library and :mod:`veracity.errors`, so they work
against a remote server without the server's dependencies being used.

Errors: an error response becomes the :mod:`veracity.errors` class named by its JSON ``code``
(``invalid_input`` -> :class:`~veracity.errors.InvalidInputError`, ``schema_validation`` ->
:class:`~veracity.errors.SchemaValidationError`, ``not_found``, ``conflict``, ``permission_denied``,
``unauthenticated``, ``storage``), keeping the server's ``message`` and ``details``. Anything else
is an :class:`ApiError`. Every error carries ``status_code``, ``method`` and ``path``. Values to send
may be numpy scalars or arrays (and item or prediction lists a pandas DataFrame); NaN and infinity
are refused before sending, naming the field. Transport failures that outlast the retries are
raised as httpx's own exceptions.

Retries (``retries=3`` by default, exponential backoff with jitter, or as long as a ``Retry-After``
header asks, up to 60 s): connection failures and 429/502/503/504 answers are retried for requests
that are safe to repeat: reads, annotations (each carries an idempotency key, a fresh uuid4 unless
you pass one, so a repeat stores one row), item imports (exact duplicates are detected by content
hash and not stored twice), member roles, assignments, refits and label-issue flagging. Writes that
would be applied twice (project creation, undo, skip, review verdicts, prediction import,
label-issue resolution) are retried only when the connection could not be made at all, i.e.
before anything was sent.

Example::

    from veracity.client import Client

    with Client("http://127.0.0.1:8000", token) as vc:
        project = vc.create_project("Pets", {"kind": "classification", "labels": ["cat", "dog"]}, overlap=2)
        vc.import_items(project["id"], [{"id": "a", "text": "meow"}, {"id": "b", "text": "woof"}])
        while (task := vc.next_task(project["id"])) is not None:
            vc.submit_annotation(task["task_id"], "cat")
        for row in vc.iter_consensus(project["id"]):
            print(row["external_id"], row["label"], row["confidence"])
"""

from __future__ import annotations

from veracity.client._async import AsyncClient
from veracity.client._errors import ApiError
from veracity.client._sync import Client
from veracity.client._types import (
    AnnotationResult,
    AssignResult,
    ConsensusRow,
    DatasetItem,
    DatasetSummary,
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
    RefitResult,
    ReviewResult,
    ReviewTask,
    Task,
    TaskItem,
)

__all__ = [
    "AnnotationResult",
    "ApiError",
    "AssignResult",
    "AsyncClient",
    "Client",
    "ConsensusRow",
    "DatasetItem",
    "DatasetSummary",
    "DuplicateReport",
    "FlagResult",
    "Health",
    "ImportResult",
    "ItemLineage",
    "ItemRow",
    "Member",
    "MemberResult",
    "Page",
    "PredictionsResult",
    "Project",
    "ProjectSummary",
    "RefitResult",
    "ReviewResult",
    "ReviewTask",
    "Task",
    "TaskItem",
]
