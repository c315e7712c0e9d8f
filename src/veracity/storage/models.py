"""SQLAlchemy 2 models of the whole Veracity data model (see ARCHITECTURE.md, "Data model").

The same models run on SQLite (the embedded default) and PostgreSQL. JSON columns use JSONB on
PostgreSQL. Times are stored in UTC. The schema is created and upgraded only by Alembic
(``veracity.storage.migrate``); tests check that the models and the migrations agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Annotation",
    "AnnotatorSkill",
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Consensus",
    "Dataset",
    "DatasetVersion",
    "DatasetVersionItem",
    "Decision",
    "ImportBatch",
    "Item",
    "ItemLabel",
    "Prediction",
    "Project",
    "ProjectDataset",
    "ProjectMember",
    "Review",
    "Task",
    "User",
    "WebSession",
    "utcnow",
]

JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit keys.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType, Any: JSONType}


def _ts() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


# --------------------------------------------------------------------------- people and access
class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin, manager, reviewer, annotator, viewer
    clearance: Mapped[int] = mapped_column(Integer, default=0)  # highest sensitivity level readable
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = _ts()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; token never stored
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(120), default="default")
    created_at: Mapped[dt.datetime] = _ts()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A signed-in browser session (cookie holds the random id; only its hash is stored)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _ts()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- data catalogue
class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = _ts()


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(40))
    importer_version: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = _ts()
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_dataset_hash_key", "dataset_id", "hash_key"),
        Index("ix_items_dataset_external", "dataset_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    # The first 8 bytes of the sha256 as a signed 64-bit integer (veracity.ingest.records.hash_key):
    # the indexed dedupe key. A 64-char hex index costs ~4x the space and makes large imports
    # seek; a key match is confirmed against content_hash before an item is called a duplicate.
    hash_key: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(Text)
    source_row: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id", ondelete="SET NULL"))
    sensitivity: Mapped[int] = mapped_column(Integer, default=0, index=True)  # 0 = unrestricted
    created_at: Mapped[dt.datetime] = _ts()


class ItemLabel(Base):
    """A label a source carried for an item imported without a project (no task to hang it on).

    Kept with the import batch and the source's annotator and origin, so nothing an import read is
    dropped; exports write them as the item's annotations, and a version freezes the latest one
    when the item has no consensus or annotation.
    """

    __tablename__ = "item_labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[Any] = mapped_column()
    annotator: Mapped[str | None] = mapped_column(String(120))
    origin: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="active")  # active, or parked (unmapped)
    created_at: Mapped[dt.datetime] = _ts()


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = _ts()


class DatasetVersionItem(Base):
    """Frozen membership of an item in a dataset version, with its content hash and label then."""

    __tablename__ = "dataset_version_items"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # kept even if the item is deleted
    external_id: Mapped[str | None] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[Any | None] = mapped_column()


# --------------------------------------------------------------------------- labelling workflow
class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    label_schema: Mapped[dict[str, Any]] = mapped_column()
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    gold_rate: Mapped[float] = mapped_column(Float, default=0.0)
    min_labels: Mapped[int | None] = mapped_column(Integer)  # adaptive redundancy (None = fixed)
    max_labels: Mapped[int | None] = mapped_column(Integer)
    target_confidence: Mapped[float | None] = mapped_column(Float)
    consensus_method: Mapped[str] = mapped_column(String(20), default="mv")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))  # the project's own dataset
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = _ts()


class ProjectDataset(Base):
    """The datasets a project labels (its own dataset and any others attached)."""

    __tablename__ = "project_datasets"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # manager, reviewer, annotator, viewer
    quota: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _ts()


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "item_id"),
        # Matches the ORDER BY of services.tasks._pick_task, so LIMIT 1 stops at the first fit.
        Index("ix_tasks_queue_v2", "project_id", "status", "priority", "id"),
        Index("ix_tasks_assignee", "assignee_id", "project_id", sqlite_where=text("assignee_id IS NOT NULL"),
              postgresql_where=text("assignee_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, complete, review
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_value: Mapped[Any | None] = mapped_column()
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # suspect: served first
    # queue order, lowest first: consensus confidence, minus 2 for flagged (suspect) items
    priority: Mapped[float] = mapped_column(Float, default=1.0)
    target: Mapped[int] = mapped_column(Integer, default=1)  # annotations wanted now
    n_assigned: Mapped[int] = mapped_column(Integer, default=0)  # live leases + submitted
    n_annotations: Mapped[int] = mapped_column(Integer, default=0)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    issue_score: Mapped[float | None] = mapped_column(Float)
    suggested: Mapped[Any | None] = mapped_column()
    created_at: Mapped[dt.datetime] = _ts()
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    """A lease of one overlap slot of a task to one annotator."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id"),
        Index("ix_assignments_lease", "status", "expires_at"),
        Index("ix_assignments_user", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="leased")  # leased, submitted, skipped, expired
    leased_at: Mapped[dt.datetime] = _ts()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_annotations_task", "task_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    value: Mapped[Any] = mapped_column()
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    origin: Mapped[str] = mapped_column(String(40), default="human")  # human, import, review, decision
    source: Mapped[str | None] = mapped_column(Text)  # lineage: import batch / review / decision ref
    status: Mapped[str] = mapped_column(String(20), default="active")  # active, rejected, superseded
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    kept_prelabel: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = _ts()


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(20))  # accept, reject, correct
    value: Mapped[Any | None] = mapped_column()
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = _ts()


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_item_model", "item_id", "model_name", "model_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100), default="")
    value: Mapped[Any | None] = mapped_column()  # a label value (pre-label)
    probabilities: Mapped[list[Any] | None] = mapped_column()  # per class, schema label order
    created_at: Mapped[dt.datetime] = _ts()


class Consensus(Base):
    __tablename__ = "consensus"
    __table_args__ = (Index("ix_consensus_project_label", "project_id", "label_key"),)

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    label: Mapped[Any | None] = mapped_column()
    label_key: Mapped[str | None] = mapped_column(String(255))  # label as text, for indexed filters
    confidence: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(20))
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = _ts()


class AnnotatorSkill(Base):
    __tablename__ = "annotator_skills"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    accuracy: Mapped[float | None] = mapped_column(Float)
    n_answers: Mapped[int] = mapped_column(Integer, default=0)
    n_gold: Mapped[int] = mapped_column(Integer, default=0)
    n_gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    confusion: Mapped[list[Any] | None] = mapped_column()
    method: Mapped[str] = mapped_column(String(20), default="mv")
    updated_at: Mapped[dt.datetime] = _ts()


# --------------------------------------------------------------------------- decisions and audit
class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_queue", "project_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100), default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prediction_set: Mapped[list[Any]] = mapped_column()
    probabilities: Mapped[list[Any] | None] = mapped_column()
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[str] = mapped_column(String(20))  # accept (automatic) or review (to a human)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, decided
    action: Mapped[str | None] = mapped_column(String(20))  # accept, override, escalate
    final_label: Mapped[Any | None] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    analyst_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = _ts()
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """One entry of the tamper-evident audit log: ``hash = sha256(prev_hash || canonical(event))``."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    ts: Mapped[dt.datetime] = _ts()
    actor: Mapped[str | None] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row holding the chain's head; appenders lock it so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
