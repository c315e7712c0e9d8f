"""Shapes of the JSON the REST API answers, as ``TypedDict`` (plain dicts at run time)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NotRequired, TypedDict, TypeVar

__all__ = [
    "AnnotationResult",
    "AssignResult",
    "ConsensusRow",
    "DatasetItem",
    "DatasetSummary",
    "DecisionPolicy",
    "DecisionResult",
    "DecisionRun",
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
    "QueuedDecision",
    "RefitResult",
    "ReviewResult",
    "ReviewTask",
    "Task",
    "TaskItem",
]

T = TypeVar("T")


class Project(TypedDict):
    id: int
    name: str
    description: str
    schema: dict[str, Any]
    schema_version: int
    overlap: int
    gold_rate: float
    min_labels: int | None
    max_labels: int | None
    target_confidence: float | None
    consensus_method: str
    dataset_id: int
    created_at: str | None
    settings: dict[str, Any]


class ProjectSummary(Project):
    n_tasks: int
    n_annotations: int


class Member(TypedDict):
    user: str
    role: str


class MemberResult(TypedDict):
    project_id: int
    user: str
    role: str
    quota: int | None


class ImportResult(TypedDict):
    imported: int
    duplicates: int
    errors: list[dict[str, Any]]
    duplicate_of: list[dict[str, Any]]


class TaskItem(TypedDict):
    id: int
    external_id: str | None
    data: dict[str, Any]


class Task(TypedDict):
    """A leased task as ``GET .../next`` (and undo) return it."""

    task_id: int
    project_id: int
    item: TaskItem
    schema: dict[str, Any]
    schema_version: int
    lease_expires_at: str | None
    prelabel: NotRequired[dict[str, Any]]


class AnnotationResult(TypedDict):
    id: int
    task_id: int
    value: Any
    replayed: bool  # True when the server returned the row stored by an earlier try with the same key


class ItemRow(TypedDict):
    task_id: int
    status: str
    flagged: bool
    n_annotations: int
    item_id: int
    external_id: str | None
    data: dict[str, Any]
    label: Any
    confidence: float | None


class ConsensusRow(TypedDict):
    task_id: int
    item_id: int
    external_id: str | None
    label: Any
    confidence: float | None
    n_labels: int
    method: str | None


class ReviewTask(TypedDict):
    """A task in the review queue or the label-issue list, with its labels and model output."""

    task_id: int
    status: str
    item: TaskItem
    annotations: list[dict[str, Any]]
    consensus: dict[str, Any] | None
    prediction: dict[str, Any] | None
    flagged: bool
    issue_score: float | None
    suggested: Any
    given: NotRequired[Any]


class ReviewResult(TypedDict):
    task_id: int
    verdict: str
    status: str
    value: NotRequired[Any]


class PredictionsResult(TypedDict):
    imported: int
    model: str
    model_version: str


class DecisionPolicy(TypedDict):
    """A project's decision policy (see ``veracity.decide.DecisionPolicy``)."""

    coverage: float
    score: str
    threshold: float
    class_conditional: bool
    calibration: str


class DecisionRun(TypedDict):
    """Outcome of deciding every undecided item: trusted items used for calibration, items decided,
    auto-accepted and queued for review, and the policy's estimated automation and error rates."""

    calibration: int
    decided: int
    accepted: int
    review: int
    estimate: dict[str, Any]


class QueuedDecision(TypedDict):
    """A decision waiting for an analyst: the item, the prediction set, the (recalibrated) and the
    model's own probabilities, the policy and the nearest labelled items as evidence."""

    id: int
    item: TaskItem
    model: str
    model_version: str | None
    set: list[str]
    probabilities: dict[str, float]
    model_probabilities: dict[str, float]
    temperature: float | None
    policy: dict[str, Any]
    outcome: str
    status: str
    evidence: list[dict[str, Any]]
    created_at: str | None


class DecisionResult(TypedDict):
    id: int
    status: str
    action: str
    label: str | None
    analyst: str


class AssignResult(TypedDict):
    assigned: int
    user: str


class FlagResult(TypedDict):
    checked: int
    flagged: int


class RefitResult(TypedDict):
    project_id: int
    method: str
    n_answers: int
    n_tasks: NotRequired[int]
    n_workers: NotRequired[int]


class DatasetSummary(TypedDict):
    id: int
    name: str
    description: str
    created_at: str | None
    n_items: int
    n_batches: int
    duplicates_reported: int
    versions: list[dict[str, Any]]  # number, n_items, note, created_at
    batches: list[dict[str, Any]]  # id, source, format, importer_version, created_by, created_at, rows, ...


class DatasetItem(TypedDict):
    item_id: int
    external_id: str | None
    content_hash: str
    source: str | None
    source_row: int | None
    batch_id: int | None
    snippet: str
    image: bool


class DuplicateReport(TypedDict):
    dataset: str
    n_items: int
    compared: int
    limit: int
    truncated: bool
    threshold: float
    max_distance: int
    n_clusters: int
    clusters: list[dict[str, Any]]  # size, items: [{item_id, external_id, snippet, image}]
    exact: list[dict[str, Any]]  # batch_id, source, row, duplicate_of
    exact_total: int


class ItemLineage(TypedDict):
    item_id: int
    dataset: str | None
    external_id: str | None
    data: dict[str, Any]
    content_hash: str
    source: str | None
    source_row: int | None
    created_at: str | None
    import_batch: dict[str, Any] | None
    annotations: list[dict[str, Any]]
    source_labels: list[dict[str, Any]]
    consensus: list[dict[str, Any]]
    versions: list[dict[str, Any]]


class Health(TypedDict):
    ok: bool
    version: str
    database: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; pass ``next_cursor`` as ``cursor`` for the next one."""

    rows: list[T] = field(default_factory=list)
    next_cursor: int | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> T:
        return self.rows[index]

    @classmethod
    def of(cls, rows: Sequence[T], next_cursor: int | None) -> Page[T]:
        return cls(list(rows), next_cursor)
