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
import secrets
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veracity.errors import ConflictError, InvalidInputError, NotFoundError
from veracity.services._common import as_utc, iso, now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import validate_value
from veracity.services.projects import require_role
from veracity.services.quality import update_task_consensus
from veracity.services.review import refresh_skills
from veracity.storage import Database
from veracity.storage.models import Annotation, Assignment, Item, Prediction, Project, ProjectMember, Task, User

__all__ = [
    "ANNOTATE_ROLES",
    "AnnotationResult",
    "assign_items",
    "next_task",
    "skip_task",
    "submit_annotation",
    "undo_last_annotation",
]

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


def next_task(
    db: Database, actor: Actor, project_id: int, *, lease_seconds: int = 600, holding: Collection[int] = ()
) -> dict[str, Any] | None:
    """Lease the next task for the actor, or return None when the queue has nothing for them.

    An unexpired lease the actor already holds in this project is returned again (so a reload
    does not burn slots). Order: lowest ``priority`` first (flagged items, then the lowest consensus
    confidence; see ``services.quality.queue_priority``), then oldest. Tasks assigned to a named
    annotator go to them first; items marked above the actor's clearance are never served.
    Leases in ``holding`` (tasks a client already shows or buffers) are passed over, so a client
    can lease one task ahead.
    """
    for _attempt in range(20):
        with db.transaction() as s:
            project, _ = require_role(s, actor, project_id, ANNOTATE_ROLES)
            at = now()
            held = s.execute(
                select(Assignment)
                .where(Assignment.project_id == project_id, Assignment.user_id == actor.user_id,
                       Assignment.status == "leased", Assignment.expires_at >= at,
                       Assignment.task_id.not_in([int(t) for t in holding]))
                .order_by(Assignment.id)
                .limit(1)
            ).scalar_one_or_none()
            if held is not None:
                task = s.get(Task, held.task_id)
                assert task is not None
                return _task_payload(s, task, held, project)
            expire_leases(s, project_id, at)
            if _quota_reached(s, project_id, actor):
                return None
            candidate = _pick_task(s, project, actor)
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


def _quota_reached(session: Session, project_id: int, actor: Actor) -> bool:
    quota = session.execute(
        select(ProjectMember.quota).where(ProjectMember.project_id == project_id,
                                          ProjectMember.user_id == actor.user_id)
    ).scalar_one_or_none()
    if quota is None:
        return False
    done = session.execute(
        select(func.count()).where(Assignment.project_id == project_id, Assignment.user_id == actor.user_id,
                                   Assignment.status.in_(("submitted", "leased")))
    ).scalar_one()
    return int(done) >= quota


def _pick_task(session: Session, project: Project, actor: Actor) -> int | None:
    """The next task id for the actor: directly assigned first, then gold at ``gold_rate``, then the queue."""
    seen = exists().where(Assignment.task_id == Task.id, Assignment.user_id == actor.user_id)
    base = (
        select(Task.id)
        .join(Item, Item.id == Task.item_id)
        .where(Task.project_id == project.id, Task.status == "open", Task.n_assigned < Task.target,
               Item.sensitivity <= actor.clearance, ~seen)
        .limit(1)
        # PostgreSQL: concurrent askers skip rows another transaction is claiming (SQLite serialises
        # writers with BEGIN IMMEDIATE and ignores this clause).
        .with_for_update(of=Task, skip_locked=True)
    )
    mine = session.execute(base.where(Task.assignee_id == actor.user_id).order_by(Task.id)).scalar_one_or_none()
    if mine is not None:
        return mine
    # A task assigned to someone else keeps its last slot for them until they have taken it.
    assignee_took = exists().where(Assignment.task_id == Task.id, Assignment.user_id == Task.assignee_id)
    open_to_all = base.where(
        (Task.assignee_id.is_(None)) | (Task.n_assigned < Task.target - 1) | assignee_took
    ).order_by(Task.priority, Task.id)
    if project.gold_rate > 0 and secrets.randbelow(1_000_000) < project.gold_rate * 1_000_000:
        gold = session.execute(open_to_all.where(Task.is_gold.is_(True))).scalar_one_or_none()
        if gold is not None:
            return gold
    return session.execute(open_to_all.where(Task.is_gold.is_(False))).scalar_one_or_none()


@dataclass(frozen=True)
class AnnotationResult:
    id: int
    task_id: int
    project_id: int
    value: Any
    created: bool  # False when an idempotent retry returned the stored annotation

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "value": self.value}


def _replay(session: Session, actor: Actor, task_id: int, key: str | None) -> AnnotationResult | None:
    """The annotation the actor already stored under ``key``, if any (idempotent retries)."""
    if key is None:
        return None
    prior = session.execute(
        select(Annotation).where(Annotation.user_id == actor.user_id, Annotation.idempotency_key == key)
    ).scalar_one_or_none()
    if prior is None:
        return None
    if prior.task_id != task_id:
        raise ConflictError("idempotency_key was already used for another task")
    return AnnotationResult(prior.id, prior.task_id, prior.project_id, prior.value, created=False)


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
    try:
        with db.transaction() as s:
            replay = _replay(s, actor, task_id, idempotency_key)
            if replay is not None:
                return replay
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
                replay = _replay(s, actor, task_id, idempotency_key)
                if replay is not None:  # a concurrent retry with this key committed first
                    return replay
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
            update_task_consensus(s, project, task)
            if task.is_gold:
                refresh_skills(s, project)
            return AnnotationResult(ann.id, task_id, project.id, value, created=True)
    except IntegrityError as exc:
        if idempotency_key is None:
            raise
        with db.transaction(write=False) as s:  # a concurrent retry won the race: return its row
            replay = _replay(s, actor, task_id, idempotency_key)
            if replay is None:
                raise ConflictError("annotation conflicts with a concurrent write; try again") from exc
            return replay


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



def assign_items(db: Database, actor: Actor, project_id: int, user_name: str, item_ids: list[int]) -> int:
    """Reserve a slot of each item's task for a named annotator; they are served these first."""
    with db.transaction() as s:
        require_role(s, actor, project_id, ("manager",))
        user = s.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError(f"user: no user named {user_name!r}")
        member = s.get(ProjectMember, (project_id, user.id))
        if member is None or member.role not in ANNOTATE_ROLES:
            raise InvalidInputError(f"user: {user_name!r} is not an annotator of project {project_id}")
        res = s.execute(
            update(Task).where(Task.project_id == project_id, Task.item_id.in_(item_ids)).values(assignee_id=user.id)
        )
        if res.rowcount != len(set(item_ids)):
            missing = len(set(item_ids)) - res.rowcount
            raise NotFoundError(f"item_ids: {missing} item(s) are not in project {project_id}")
        return int(res.rowcount)


def undo_last_annotation(db: Database, actor: Actor, project_id: int, *, lease_seconds: int = 600) -> dict[str, Any]:
    """Withdraw the actor's most recent label in a project and lease its task back to them.

    The label gets status "withdrawn" (consensus, exports and skills ignore it), the task reopens
    if that label had completed it, and its consensus is recomputed. The returned task payload
    carries the withdrawn value as ``previous_value`` for editing. Reviewed tasks cannot be undone.
    """
    with db.transaction() as s:
        project, _ = require_role(s, actor, project_id, ANNOTATE_ROLES)
        ann = s.execute(
            select(Annotation)
            .where(Annotation.project_id == project_id, Annotation.user_id == actor.user_id,
                   Annotation.origin == "human", Annotation.status == "active")
            .order_by(Annotation.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if ann is None:
            raise NotFoundError(f"you have no label in project {project_id} to undo")
        task = s.get(Task, ann.task_id)
        assert task is not None
        if task.status == "reviewed":
            raise ConflictError(f"task {task.id} was already reviewed; its labels can no longer be undone")
        assignment = s.execute(
            select(Assignment).where(Assignment.task_id == task.id, Assignment.user_id == actor.user_id)
        ).scalar_one_or_none()
        at = now()
        if assignment is None:  # a label stored without a lease: lease the task now
            assignment = Assignment(task_id=task.id, project_id=project_id, user_id=actor.user_id)
            s.add(assignment)
            task.n_assigned += 1
        assignment.status, assignment.finished_at = "leased", None
        assignment.leased_at, assignment.expires_at = at, at + dt.timedelta(seconds=lease_seconds)
        ann.status = "withdrawn"
        task.n_annotations = max(0, task.n_annotations - 1)
        if task.status in ("complete", "review"):
            task.status, task.completed_at = "open", None
            task.target = max(task.target, task.n_annotations + 1)
        s.flush()
        update_task_consensus(s, project, task)
        append_event(s, actor=actor.name, action="annotation.undo", object_type="annotation", object_id=ann.id,
                     payload={"task_id": task.id})
        s.flush()
        payload = _task_payload(s, task, assignment, project)
        payload["previous_value"] = ann.value
        return payload
