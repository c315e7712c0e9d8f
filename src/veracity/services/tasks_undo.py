"""Undo of an annotator's last submission in a project.

The annotation is withdrawn (status ``"withdrawn"``, so consensus, exports and skills ignore it),
the annotator's assignment becomes a fresh lease on the same task, the task reopens if that
label had completed it, and its consensus is recomputed. The returned task payload carries the
withdrawn value as ``previous_value`` so that the UI can show it for editing. A task that a
reviewer has already ruled on cannot be undone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from veracity.errors import ConflictError, NotFoundError
from veracity.services._common import now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.projects import require_role
from veracity.services.tasks import ANNOTATE_ROLES, _task_payload, recompute_consensus
from veracity.storage import Database
from veracity.storage.models import Annotation, Assignment, Task

__all__ = ["undo_last_annotation"]


def undo_last_annotation(db: Database, actor: Actor, project_id: int, *, lease_seconds: int = 600) -> dict[str, Any]:
    """Withdraw the actor's most recent label in a project and lease its task back to them."""
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
        if assignment is None:  # labels stored without a lease (imports, older data): lease it now
            assignment = Assignment(task_id=task.id, project_id=project_id, user_id=actor.user_id)
            s.add(assignment)
            task.n_assigned += 1
        assignment.status, assignment.finished_at = "leased", None
        assignment.leased_at, assignment.expires_at = at, at + dt.timedelta(seconds=lease_seconds)
        ann.status = "withdrawn"
        task.n_annotations = max(0, task.n_annotations - 1)
        if task.status == "complete" and task.n_annotations < task.target:
            task.status, task.completed_at = "open", None
        s.flush()
        recompute_consensus(s, project, task)
        append_event(s, actor=actor.name, action="annotation.undo", object_type="annotation", object_id=ann.id,
                     payload={"task_id": task.id})
        s.flush()
        payload = _task_payload(s, task, assignment, project)
        payload["previous_value"] = ann.value
        return payload
