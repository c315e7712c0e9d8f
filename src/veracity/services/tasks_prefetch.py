"""Leasing ahead: the labelling screen holds the next task before the current one is answered.

:func:`next_task_ahead` is :func:`veracity.services.tasks.next_task` for a client that already
shows (or buffers) some of its leased tasks: those, named in ``holding``, are passed over, so the
call returns another lease the actor holds or leases a new task by the same rules (queue order,
overlap slots claimed with a conditional update, quotas, clearance, gold rate). With it the screen
swaps to the next item the moment a key is pressed and sends the answer in the background.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from veracity.services.actors import Actor
from veracity.services.tasks import next_task
from veracity.storage import Database

__all__ = ["next_task_ahead"]


def next_task_ahead(
    db: Database, actor: Actor, project_id: int, *, holding: Collection[int], lease_seconds: int = 600
) -> dict[str, Any] | None:
    """The actor's next task other than the tasks in ``holding`` (None when there is none)."""
    return next_task(db, actor, project_id, lease_seconds=lease_seconds, holding=holding)
