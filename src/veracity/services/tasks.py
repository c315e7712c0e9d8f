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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from veracity.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.services._common import as_utc, check_count, iso, now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import validate_value
from veracity.services.projects import require_role
from veracity.services.quality import update_task_consensus
from veracity.services.review import refresh_skills
from veracity.storage import Database
from veracity.storage.fast import FastSelect, FastUpdate
from veracity.storage.models import Annotation, Assignment, Item, Prediction, Project, ProjectMember, Task, User

__all__ = [
    "ANNOTATE_ROLES",
    "AnnotationResult",
    "QueueProject",
    "QueueTask",
    "assign_items",
    "next_task",
    "skip_task",
    "submit_annotation",
    "undo_last_annotation",
]

ANNOTATE_ROLES = ("annotator", "reviewer", "manager")


# The queue's hot path (next task, submit) runs statements compiled once, on one connection: the
# ORM's per-object bookkeeping cost several times more than the SQL itself, and on SQLite even
# Core's per-execution work did, so there the SELECTs and UPDATEs run on the driver (storage.fast).
_bp = bindparam
_PROJECT_COLUMNS = (
    Project.id.label("p_id"), Project.label_schema, Project.schema_version, Project.overlap, Project.gold_rate,
    Project.min_labels, Project.max_labels, Project.target_confidence, Project.consensus_method, Project.settings,
)
_member = and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == _bp("user_id"))
_HeldLease, _HeldTask = aliased(Assignment), aliased(Task)
_any_expired = exists().where(
    Assignment.project_id == _bp("project_id"), Assignment.status == "leased", Assignment.expires_at < _bp("at")
)


def _next_context(holding: bool) -> Select[Any]:
    """What ``next`` needs before it picks, in one statement: the project, the caller's role and
    quota, the unexpired lease the caller already holds (if any, passing over the task ids in the
    expanding parameter ``holding`` when asked to) and whether any lease has expired."""
    held = (
        select(Assignment.id)
        .where(Assignment.project_id == _bp("project_id"), Assignment.user_id == _bp("user_id"),
               Assignment.status == "leased", Assignment.expires_at >= _bp("at"))
        .order_by(Assignment.id)
        .limit(1)
    )
    if holding:
        held = held.where(Assignment.task_id.not_in(_bp("holding", expanding=True)))
    return (
        select(*_PROJECT_COLUMNS, ProjectMember.role, ProjectMember.quota, _HeldLease.task_id.label("held_task_id"),
               _HeldLease.expires_at.label("held_expires_at"), _HeldTask.item_id.label("held_item_id"),
               _any_expired.label("any_expired"))
        .select_from(Project)
        .outerjoin(ProjectMember, _member)
        .outerjoin(_HeldLease, _HeldLease.id == held.scalar_subquery())
        .outerjoin(_HeldTask, _HeldTask.id == _HeldLease.task_id)
        .where(Project.id == _bp("project_id"))
    )


_NEXT_CONTEXT = FastSelect(_next_context(holding=False))
_NEXT_CONTEXT_HOLDING = _next_context(holding=True)  # a client buffering leases: Core (expanding IN)
_EXPIRED = select(Assignment.id, Assignment.task_id).where(
    Assignment.project_id == _bp("project_id"), Assignment.status == "leased", Assignment.expires_at < _bp("at")
)
_DONE = select(func.count()).where(Assignment.project_id == _bp("project_id"), Assignment.user_id == _bp("user_id"),
                                   Assignment.status.in_(("submitted", "leased")))
_seen = exists().where(Assignment.task_id == Task.id, Assignment.user_id == _bp("user_id"))
_candidates = (
    select(Task.id, Task.item_id, Item.external_id, Item.data)
    .join(Item, Item.id == Task.item_id)
    .where(Task.project_id == _bp("project_id"), Task.status == "open", Task.n_assigned < Task.target,
           Item.sensitivity <= _bp("clearance"), ~_seen)
    .limit(1)
    # PostgreSQL: concurrent askers skip rows another transaction is claiming (SQLite serialises
    # writers with BEGIN IMMEDIATE and ignores this clause).
    .with_for_update(of=Task, skip_locked=True)
)
_MINE = FastSelect(_candidates.where(Task.assignee_id == _bp("user_id")).order_by(Task.id))
# A task assigned to someone else keeps its last slot for them until they have taken it.
_assignee_took = exists().where(Assignment.task_id == Task.id, Assignment.user_id == Task.assignee_id)
_open_to_all = _candidates.where(
    (Task.assignee_id.is_(None)) | (Task.n_assigned < Task.target - 1) | _assignee_took
).order_by(Task.priority, Task.id)
_GOLD = FastSelect(_open_to_all.where(Task.is_gold.is_(True)))
_QUEUE = FastSelect(_open_to_all.where(Task.is_gold.is_(False)))
_TASKS = Task.__table__
_CLAIM = FastUpdate(
    update(_TASKS)
    .where(_TASKS.c.id == _bp("b_id"), _TASKS.c.n_assigned < _TASKS.c.target)
    .values(n_assigned=_TASKS.c.n_assigned + 1)
)
_INSERT_ASSIGNMENT = insert(Assignment.__table__)
_ITEM = select(Item.external_id, Item.data).where(Item.id == _bp("item_id"))
_PRELABEL = FastSelect(
    select(Prediction.value, Prediction.model_name, Prediction.model_version)
    .where(Prediction.item_id == _bp("item_id"), Prediction.value.is_not(None))
    .order_by(Prediction.id.desc())
    .limit(1)
)


@dataclass(slots=True)
class QueueProject:
    """The project columns the labelling queue reads (``_PROJECT_COLUMNS``): a plain copy, since
    an ORM object, even a transient one, costs more to build than the queries that fill it."""

    id: int
    label_schema: dict[str, Any]
    schema_version: int
    overlap: int
    gold_rate: float
    min_labels: int | None
    max_labels: int | None
    target_confidence: float | None
    consensus_method: str
    settings: dict[str, Any]


@dataclass(slots=True)
class QueueTask:
    """A task as ``submit_annotation`` updates it (see :class:`QueueProject`)."""

    id: int
    item_id: int
    status: str
    is_gold: bool
    gold_value: Any
    flagged: bool
    target: int
    n_annotations: int
    completed_at: dt.datetime | None
    priority: float = 1.0


def _project_of(row: Any, actor: Actor, project_id: int, allowed: Sequence[str]) -> QueueProject:
    """The project of a context row, after the checks of ``require_role``."""
    role = None if row is None else ("admin" if actor.is_admin else row.role)
    if row is None or role is None:
        raise NotFoundError(f"project {project_id} not found")
    if role != "admin" and role not in allowed:
        raise PermissionDeniedError(f"your role in project {project_id} is {role}; this needs {' or '.join(allowed)}")
    return QueueProject(row.p_id, row.label_schema, row.schema_version, row.overlap, row.gold_rate, row.min_labels,
                        row.max_labels, row.target_confidence, row.consensus_method, row.settings or {})


def expire_leases(conn: Connection, project_id: int, at: dt.datetime) -> int:
    """Mark expired leases of a project and give their slots back; returns how many expired."""
    expired = conn.execute(_EXPIRED, {"project_id": project_id, "at": at}).all()
    if not expired:
        return 0
    # PostgreSQL: the tasks first, in id order, then their leases, the order in which a submit
    # locks them (task row, then its lease): the other order deadlocks with a submit of a lease
    # that expires at that moment, and PostgreSQL aborts one of the two.
    conn.execute(
        select(Task.id).where(Task.id.in_(sorted({t for _, t in expired}))).order_by(Task.id).with_for_update()
    ).all()
    # Only leases still open when the update runs: on PostgreSQL a concurrent ``next`` may have
    # expired (or a submit finished) the same rows since the SELECT, and counting them again would
    # give a slot back twice.
    ended = conn.execute(
        update(Assignment)
        .where(Assignment.id.in_([a for a, _ in expired]), Assignment.status == "leased")
        .values(status="expired", finished_at=at)
        .returning(Assignment.task_id)
    ).scalars().all()
    for task_id, n in Counter(ended).items():
        conn.execute(update(Task).where(Task.id == task_id).values(n_assigned=Task.n_assigned - n))
    return len(ended)


def _task_payload(conn: Connection, project: QueueProject | Project, task_id: int, item_id: int,
                  expires_at: dt.datetime, item: Any = None) -> dict[str, Any]:
    """What an annotator is shown: the item, the schema and, if the project shows them, the latest pre-label.

    ``item`` is the item's (external_id, data) when the caller already read them.
    """
    if item is None:
        item = conn.execute(_ITEM, {"item_id": item_id}).one()
    payload: dict[str, Any] = {
        "task_id": task_id,
        "project_id": project.id,
        "item": {"id": item_id, "external_id": item[0], "data": item[1]},
        "schema": project.label_schema,
        "schema_version": project.schema_version,
        "lease_expires_at": iso(expires_at),
    }
    if (project.settings or {}).get("show_prelabels", True):
        pred = _PRELABEL.first(conn, {"item_id": item_id})
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
    holding_ids = [int(t) for t in holding]
    who = {"project_id": project_id, "user_id": actor.user_id}
    for _attempt in range(20):
        try:
            with db.connect() as c:
                at = now()
                ctx = (_NEXT_CONTEXT.first(c, {**who, "at": at}) if not holding_ids else
                       c.execute(_NEXT_CONTEXT_HOLDING, {**who, "at": at, "holding": holding_ids}).first())
                project = _project_of(ctx, actor, project_id, ANNOTATE_ROLES)
                if ctx.held_task_id is not None:
                    return _task_payload(c, project, ctx.held_task_id, ctx.held_item_id, ctx.held_expires_at)
                if ctx.any_expired:
                    expire_leases(c, project_id, at)
                if ctx.quota is not None and c.execute(_DONE, who).scalar_one() >= ctx.quota:
                    return None
                if actor.user_id in (project.settings or {}).get("paused_annotators", ()):
                    return None  # see services.quality: paused as uninformative by the last refit
                candidate = _pick_task(c, project, actor)
                if candidate is None:
                    return None
                task_id, item_id = candidate.id, candidate.item_id
                if _CLAIM.run(c, {"b_id": task_id}) != 1:
                    continue  # someone took the last slot between our read and write: look again
                expires = at + dt.timedelta(seconds=lease_seconds)
                c.execute(_INSERT_ASSIGNMENT, {"task_id": task_id, "project_id": project_id,
                                               "user_id": actor.user_id, "status": "leased", "leased_at": at,
                                               "expires_at": expires})
                return _task_payload(c, project, task_id, item_id, expires,
                                     (candidate.external_id, candidate.data))
        except IntegrityError:
            continue  # the same annotator's concurrent request leased this task first: look again
    raise ConflictError("the queue is too busy right now; try again")


def _pick_task(conn: Connection, project: QueueProject, actor: Actor) -> Any:
    """The next task for the actor (id, item_id, item external_id and data): directly assigned
    first, then gold at ``gold_rate``, then the queue."""
    params = {"project_id": project.id, "user_id": actor.user_id, "clearance": actor.clearance}
    mine = _MINE.first(conn, params)
    if mine is not None:
        return mine
    if project.gold_rate > 0 and secrets.randbelow(1_000_000) < project.gold_rate * 1_000_000:
        gold = _GOLD.first(conn, params)
        if gold is not None:
            return gold
    return _QUEUE.first(conn, params)


@dataclass(frozen=True)
class AnnotationResult:
    id: int
    task_id: int
    project_id: int
    value: Any
    created: bool  # False when an idempotent retry returned the stored annotation
    consensus_method: str = "mv"  # the project's: "mv" projects never need a background refit

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "value": self.value}


_REPLAY = select(Annotation.id, Annotation.task_id, Annotation.project_id, Annotation.value).where(
    Annotation.user_id == _bp("user_id"), Annotation.idempotency_key == _bp("key")
)
# Everything a submit checks, in one statement; PostgreSQL locks the task row, so that two labels
# for one task (overlap) update its counters and consensus one after the other.
_SUBMIT_CONTEXT = FastSelect(
    select(Task.id, Task.project_id, Task.item_id, Task.status, Task.is_gold, Task.gold_value, Task.flagged,
           Task.target, Task.n_annotations, Task.completed_at, Item.data,
           Assignment.id.label("lease_id"), Assignment.status.label("lease_status"), Assignment.expires_at,
           *_PROJECT_COLUMNS, ProjectMember.role)
    .join(Item, Item.id == Task.item_id)
    .join(Project, Project.id == Task.project_id)
    .outerjoin(ProjectMember, _member)
    .outerjoin(Assignment, and_(Assignment.task_id == Task.id, Assignment.user_id == _bp("user_id")))
    .where(Task.id == _bp("task_id"))
    .with_for_update(of=Task)
)
_INSERT_ANNOTATION = insert(Annotation.__table__)
_ASSIGNMENTS = Assignment.__table__
_FINISH_LEASE = FastUpdate(  # only a lease still open: see submit_annotation
    update(_ASSIGNMENTS)
    .where(_ASSIGNMENTS.c.id == _bp("b_id"), _ASSIGNMENTS.c.status == "leased")
    .values(status="submitted", finished_at=_bp("b_at", type_=_ASSIGNMENTS.c.finished_at.type))
)
_STORE_TASK = FastUpdate(
    update(_TASKS)
    .where(_TASKS.c.id == _bp("b_id"))
    .values(n_annotations=_bp("b_n"), priority=_bp("b_priority"), target=_bp("b_target"), status=_bp("b_status"),
            completed_at=_bp("b_completed_at", type_=_TASKS.c.completed_at.type))
)


def _replay(conn: Connection, actor: Actor, task_id: int, key: str | None) -> AnnotationResult | None:
    """The annotation the actor already stored under ``key``, if any (idempotent retries)."""
    if key is None:
        return None
    prior = conn.execute(_REPLAY, {"user_id": actor.user_id, "key": key}).first()
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
    if duration_ms is not None:
        check_count("duration_ms", duration_ms)
    try:
        with db.connect() as c:
            row = _SUBMIT_CONTEXT.first(c, {"task_id": task_id, "user_id": actor.user_id})
            if row is None or row.lease_id is None or row.lease_status != "leased":
                # No open lease: a retry of a stored label (found by its key) gets that label back.
                # With an open lease there is no stored label to find (storing one ends the lease), and a
                # key already used on another task fails the insert below and is answered there.
                replay = _replay(c, actor, task_id, idempotency_key)
                if replay is not None:
                    return replay
            if row is None:
                raise NotFoundError(f"task {task_id} not found")
            project = _project_of(row, actor, row.project_id, ANNOTATE_ROLES)
            validate_value(project.label_schema, value, item=row.data, where="value")
            at = now()
            if row.lease_id is None:
                raise ConflictError(f"task {task_id} is not leased to you: ask for it with GET .../next first")
            if row.lease_status != "leased":
                raise ConflictError(f"your lease on task {task_id} is {row.lease_status}; it cannot take a label")
            if as_utc(row.expires_at) < at:
                raise ConflictError(f"your lease on task {task_id} expired at {iso(row.expires_at)}")
            ann_id = c.execute(_INSERT_ANNOTATION, {
                "task_id": task_id, "project_id": project.id, "user_id": actor.user_id, "value": value,
                "schema_version": project.schema_version, "origin": "human", "status": "active",
                "idempotency_key": idempotency_key, "duration_ms": duration_ms, "created_at": at,
            }).inserted_primary_key[0]
            if _FINISH_LEASE.run(c, {"b_id": row.lease_id, "b_at": at}) != 1:
                # PostgreSQL: the task row lock orders submits, but the lease was read from the snapshot
                # taken before the wait; a concurrent submit of the same lease (or a ``next`` that
                # expired it) committed first. Nothing is stored.
                raise ConflictError(f"your lease on task {task_id} was ended by a concurrent request; "
                                    "it cannot take a label")
            task = QueueTask(task_id, row.item_id, row.status, row.is_gold, row.gold_value, row.flagged, row.target,
                             row.n_annotations + 1, row.completed_at)
            update_task_consensus(c, project, task)
            _STORE_TASK.run(c, {"b_id": task_id, "b_n": task.n_annotations, "b_priority": task.priority,
                                "b_target": task.target, "b_status": task.status,
                                "b_completed_at": task.completed_at})
            if task.is_gold:
                with Session(bind=c) as s:  # joins this transaction; commits with it
                    stored = s.get(Project, project.id)
                    assert stored is not None
                    refresh_skills(s, stored)
                    s.flush()
            return AnnotationResult(int(ann_id), task_id, project.id, value, created=True,
                                    consensus_method=project.consensus_method)
    except IntegrityError as exc:
        if idempotency_key is None:
            raise
        with db.connect(write=False) as c:  # a concurrent retry won the race: return its row
            replay = _replay(c, actor, task_id, idempotency_key)
            if replay is None:
                raise ConflictError("annotation conflicts with a concurrent write; try again") from exc
            return replay


def skip_task(db: Database, actor: Actor, task_id: int) -> None:
    """Give a leased task back: its slot returns to the queue, and it is not served to the actor again."""
    with db.transaction() as s:
        # PostgreSQL: the task row is locked before its counter is read and the lease is checked, so
        # concurrent skips (and submits) of the task count one after the other.
        task = s.get(Task, task_id, with_for_update=True)
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
        # items marked above the caller's clearance count as not in the project: neither reached nor revealed
        cleared = select(Item.id).where(Item.id.in_(item_ids), Item.sensitivity <= actor.clearance)
        res = s.execute(
            update(Task).where(Task.project_id == project_id, Task.item_id.in_(cleared)).values(assignee_id=user.id)
        )
        if res.rowcount != len(set(item_ids)):
            missing = len(set(item_ids)) - res.rowcount
            raise NotFoundError(f"item_ids: {missing} item(s) are not in project {project_id}")
        append_event(s, actor=actor.name, action="project.assign", object_type="project", object_id=project_id,
                     payload={"user": user_name, "n_items": int(res.rowcount)})
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
        task = s.get(Task, ann.task_id, with_for_update=True)  # PostgreSQL: counters read under the lock
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
        update_task_consensus(s.connection(), project, task)
        append_event(s, actor=actor.name, action="annotation.undo", object_type="annotation", object_id=ann.id,
                     payload={"task_id": task.id})
        s.flush()
        payload = _task_payload(s.connection(), project, task.id, task.item_id, assignment.expires_at)
        payload["previous_value"] = ann.value
        return payload
