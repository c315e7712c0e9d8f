"""Leasing ahead: the labelling screen holds the next task before the current one is answered.

:func:`next_task_ahead` is :func:`veracity.services.tasks.next_task` for a client that already
shows (or buffers) some of its leased tasks: those, named in ``holding``, are passed over, so the
call returns another lease the actor holds or leases a new task by the same rules (queue order,
overlap slots claimed with a conditional update, quotas, clearance, gold rate). With it the screen
swaps to the next item the moment a key is pressed and sends the answer in the background.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from veracity.errors import ConflictError
from veracity.services._common import now
from veracity.services.actors import Actor
from veracity.services.projects import require_role
from veracity.services.tasks import ANNOTATE_ROLES, _pick_task, _quota_reached, _task_payload, expire_leases
from veracity.storage import Database
from veracity.storage.models import Assignment, Task

__all__ = ["next_task_ahead"]


def next_task_ahead(
    db: Database, actor: Actor, project_id: int, *, holding: Collection[int], lease_seconds: int = 600
) -> dict[str, Any] | None:
    """The actor's next task other than the tasks in ``holding`` (None when there is none)."""
    held_ids = [int(t) for t in holding]
    for _attempt in range(20):
        with db.transaction() as s:
            project, _ = require_role(s, actor, project_id, ANNOTATE_ROLES)
            at = now()
            held = s.execute(
                select(Assignment)
                .where(
                    Assignment.project_id == project_id,
                    Assignment.user_id == actor.user_id,
                    Assignment.status == "leased",
                    Assignment.expires_at >= at,
                    Assignment.task_id.not_in(held_ids),
                )
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
            candidate = _pick_task(s, project, actor)  # never a task the actor holds: those count as seen
            if candidate is None:
                return None
            claimed = s.execute(
                update(Task)
                .where(and_(Task.id == candidate, Task.n_assigned < Task.target))
                .values(n_assigned=Task.n_assigned + 1)
            )
            if claimed.rowcount != 1:
                continue
            assignment = Assignment(
                task_id=candidate,
                project_id=project_id,
                user_id=actor.user_id,
                status="leased",
                leased_at=at,
                expires_at=at + dt.timedelta(seconds=lease_seconds),
            )
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
