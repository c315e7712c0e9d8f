"""The labelling queue: leasing the next task, submitting and skipping, and consensus updates.

Overlap slots are handed out with a conditional counter update
(``UPDATE tasks SET n_assigned = n_assigned + 1 WHERE id = ? AND n_assigned < target``), so two
annotators asking at once never receive the same slot, and ``assignments`` is unique per
(task, annotator), so nobody sees an item twice. Leases expire after ``lease_seconds``; an expired
lease gives its slot back to the queue. Annotations carry an optional idempotency key, unique per
annotator, so a retried submission stores one row.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veracity.errors import ConflictError, InvalidInputError, NotFoundError
from veracity.services._common import as_utc, iso, now
from veracity.services.actors import Actor
from veracity.services.label_schemas import label_key, labels_of, validate_value
from veracity.services.projects import require_role
from veracity.storage import Database
from veracity.storage.models import Annotation, Assignment, Consensus, Item, Prediction, Project, Task

__all__ = ["ANNOTATE_ROLES", "AnnotationResult", "next_task", "recompute_consensus", "skip_task", "submit_annotation"]

ANNOTATE_ROLES = ("annotator", "reviewer", "manager")


def expire_leases(session: Session, project_id: int, at: dt.datetime) -> int:
    """Mark expired leases of a project and give their slots back; returns how many expired."""
    expired = list(
        session.execute(
            select(Assignment.id, Assignment.task_id).where(
                Assignment.project_id == project_id, Assignment.status == "leased", Assignment.expires_at < at
            )
        )
    )
    if not expired:
        return 0
    session.execute(
        update(Assignment).where(Assignment.id.in_([a for a, _ in expired])).values(status="expired", finished_at=at)
    )
    for task_id, n in Counter(t for _, t in expired).items():
        session.execute(update(Task).where(Task.id == task_id).values(n_assigned=Task.n_assigned - n))
    return len(expired)


def _task_payload(session: Session, task: Task, assignment: Assignment, project: Project) -> dict[str, Any]:
    item = session.get(Item, task.item_id)
    assert item is not None
    payload: dict[str, Any] = {
        "task_id": task.id,
        "project_id": project.id,
        "item": {"id": item.id, "external_id": item.external_id, "data": item.data},
        "schema": project.label_schema,
        "schema_version": project.schema_version,
        "lease_expires_at": iso(assignment.expires_at),
    }
    if (project.settings or {}).get("show_prelabels", True):
        pred = session.execute(
            select(Prediction.value, Prediction.model_name, Prediction.model_version)
            .where(Prediction.item_id == item.id, Prediction.value.is_not(None))
            .order_by(Prediction.id.desc())
            .limit(1)
        ).first()
        if pred is not None:
            payload["prelabel"] = {"value": pred[0], "model": pred[1], "model_version": pred[2]}
    return payload


def next_task(db: Database, actor: Actor, project_id: int, *, lease_seconds: int = 600) -> dict[str, Any] | None:
    """Lease the next task for the actor, or return None when the queue has nothing for them.

    An unexpired lease the actor already holds in this project is returned again (so a reload
    does not burn slots). Order: flagged items first, then lowest priority value (consensus
    confidence), then oldest. Tasks assigned to a named annotator go only to them; items marked
    above the actor's clearance are never served.
    """
    for _attempt in range(20):
        with db.transaction() as s:
            project, _ = require_role(s, actor, project_id, ANNOTATE_ROLES)
            at = now()
            held = s.execute(
                select(Assignment)
                .where(Assignment.project_id == project_id, Assignment.user_id == actor.user_id,
                       Assignment.status == "leased", Assignment.expires_at >= at)
                .order_by(Assignment.id)
                .limit(1)
            ).scalar_one_or_none()
            if held is not None:
                task = s.get(Task, held.task_id)
                assert task is not None
                return _task_payload(s, task, held, project)
            expire_leases(s, project_id, at)
            seen = exists().where(Assignment.task_id == Task.id, Assignment.user_id == actor.user_id)
            candidate = s.execute(
                select(Task.id)
                .join(Item, Item.id == Task.item_id)
                .where(
                    Task.project_id == project_id,
                    Task.status == "open",
                    Task.n_assigned < Task.target,
                    (Task.assignee_id.is_(None)) | (Task.assignee_id == actor.user_id),
                    Item.sensitivity <= actor.clearance,
                    ~seen,
                )
                .order_by(Task.flagged.desc(), Task.priority, Task.id)
                .limit(1)
            ).scalar_one_or_none()
            if candidate is None:
                return None
            claimed = s.execute(
                update(Task)
                .where(and_(Task.id == candidate, Task.n_assigned < Task.target))
                .values(n_assigned=Task.n_assigned + 1)
            )
            if claimed.rowcount != 1:
                continue  # someone took the last slot between our read and write: look again
            assignment = Assignment(task_id=candidate, project_id=project_id, user_id=actor.user_id,
                                    status="leased", leased_at=at, expires_at=at + dt.timedelta(seconds=lease_seconds))
            s.add(assignment)
            try:
                s.flush()
            except IntegrityError:
                s.rollback()
                continue
            task = s.get(Task, candidate)
            assert task is not None
            return _task_payload(s, task, assignment, project)
    raise ConflictError("the queue is too busy right now; try again")


@dataclass(frozen=True)
class AnnotationResult:
    id: int
    task_id: int
    value: Any
    created: bool  # False when an idempotent retry returned the stored annotation

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "value": self.value}


def submit_annotation(
    db: Database,
    actor: Actor,
    task_id: int,
    value: Any,
    *,
    idempotency_key: str | None = None,
    duration_ms: int | None = None,
) -> AnnotationResult:
    """Store the actor's label for a task they hold a lease on, and update the consensus."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 128:
        raise InvalidInputError("idempotency_key: expected 1 to 128 characters")
    if idempotency_key is not None:
        with db.transaction(write=False) as s:
            prior = s.execute(
                select(Annotation).where(Annotation.user_id == actor.user_id,
                                         Annotation.idempotency_key == idempotency_key)
            ).scalar_one_or_none()
            if prior is not None:
                if prior.task_id != task_id:
                    raise ConflictError("idempotency_key was already used for another task")
                return AnnotationResult(prior.id, prior.task_id, prior.value, created=False)
    try:
        with db.transaction() as s:
            task = s.get(Task, task_id)
            if task is None:
                raise NotFoundError(f"task {task_id} not found")
            project, _ = require_role(s, actor, task.project_id, ANNOTATE_ROLES)
            item = s.get(Item, task.item_id)
            assert item is not None
            validate_value(project.label_schema, value, item=item.data, where="value")
            assignment = s.execute(
                select(Assignment).where(Assignment.task_id == task_id, Assignment.user_id == actor.user_id)
            ).scalar_one_or_none()
            at = now()
            if assignment is None:
                raise ConflictError(f"task {task_id} is not leased to you: ask for it with GET .../next first")
            if assignment.status != "leased":
                raise ConflictError(f"your lease on task {task_id} is {assignment.status}; it cannot take a label")
            if as_utc(assignment.expires_at) < at:
                raise ConflictError(f"your lease on task {task_id} expired at {iso(assignment.expires_at)}")
            ann = Annotation(task_id=task_id, project_id=project.id, user_id=actor.user_id, value=value,
                             schema_version=project.schema_version, origin="human", idempotency_key=idempotency_key,
                             duration_ms=duration_ms, created_at=at)
            s.add(ann)
            assignment.status, assignment.finished_at = "submitted", at
            task.n_annotations += 1
            s.flush()
            recompute_consensus(s, project, task)
            return AnnotationResult(ann.id, task_id, value, created=True)
    except IntegrityError as exc:
        if idempotency_key is None:
            raise
        with db.transaction(write=False) as s:  # a concurrent retry won the race: return its row
            prior = s.execute(
                select(Annotation).where(Annotation.user_id == actor.user_id,
                                         Annotation.idempotency_key == idempotency_key)
            ).scalar_one_or_none()
            if prior is None:
                raise ConflictError("annotation conflicts with a concurrent write; try again") from exc
            return AnnotationResult(prior.id, prior.task_id, prior.value, created=False)


def skip_task(db: Database, actor: Actor, task_id: int) -> None:
    """Give a leased task back: its slot returns to the queue, and it is not served to the actor again."""
    with db.transaction() as s:
        task = s.get(Task, task_id)
        if task is None:
            raise NotFoundError(f"task {task_id} not found")
        require_role(s, actor, task.project_id, ANNOTATE_ROLES)
        assignment = s.execute(
            select(Assignment).where(Assignment.task_id == task_id, Assignment.user_id == actor.user_id,
                                     Assignment.status == "leased")
        ).scalar_one_or_none()
        if assignment is None:
            raise ConflictError(f"task {task_id} is not leased to you")
        assignment.status, assignment.finished_at = "skipped", now()
        task.n_assigned -= 1


def recompute_consensus(session: Session, project: Project, task: Task) -> None:
    """Majority vote over the task's active labels; ties go to the label listed first in the schema.

    Confidence is the winning share of votes. Kinds without a categorical key (spans, boxes, ...)
    record the number of labels only. A task whose labels reach its target is complete.
    """
    schema = project.label_schema
    values = list(
        session.execute(
            select(Annotation.value).where(Annotation.task_id == task.id, Annotation.status == "active",
                                           Annotation.origin != "import")
        ).scalars()
    )
    votes: Counter[str] = Counter()
    first_value: dict[str, Any] = {}
    for v in values:
        key = label_key(schema, v)
        if key is not None:
            votes[key] += 1
            first_value.setdefault(key, v)
    label = confidence = key_out = None
    if votes:
        order = {name: i for i, name in enumerate(labels_of(schema))}
        key_out = min(votes, key=lambda k: (-votes[k], order.get(k, len(order)), k))
        label, confidence = first_value[key_out], votes[key_out] / sum(votes.values())
    row = session.get(Consensus, task.id)
    if row is None:
        row = Consensus(task_id=task.id, project_id=project.id, item_id=task.item_id, method="mv")
        session.add(row)
    row.label, row.label_key, row.confidence = label, key_out, confidence
    row.n_labels, row.updated_at = len(values), now()
    task.priority = 1.0 if confidence is None else float(confidence)
    if task.n_annotations >= task.target and task.status == "open":
        task.status, task.completed_at = "complete", now()
