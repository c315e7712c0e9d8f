"""The labelling queue under concurrent requests on PostgreSQL (READ COMMITTED).

SQLite serialises writers (``BEGIN IMMEDIATE``), so these interleavings only exist on PostgreSQL.
Each test holds a row lock from a separate connection, lets the concurrent calls queue up behind
it (waiting until PostgreSQL reports them waiting on the lock, not for a fixed time) and then
releases it, so the calls run in the order that lost or double-counted updates before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from _accounts import new_user
from _pg_locks import behind_lock, wait_for_waiters
from veracity.errors import ConflictError
from veracity.services import Actor
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.storage import Database
from veracity.storage.models import Annotation, Assignment, Task

SCHEMA = {"kind": "classification", "labels": ["a", "b"]}


@pytest.fixture
def pg(postgresql_url: str) -> Iterator[Database]:
    database = Database(postgresql_url)
    yield database
    database.dispose()


def _project(db: Database, overlap: int, names: list[str]) -> tuple[int, int, list[Actor]]:
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, n) for n in names]
    p = project_service.create_project(db, admin, name="P", schema=SCHEMA, overlap=overlap)
    for a in people:
        project_service.add_member(db, admin, p.id, a.name, "annotator")
    project_service.import_items(db, admin, p.id, [{"text": "only"}])
    with db.transaction(write=False) as s:
        task_id = s.execute(select(Task.id)).scalar_one()
    return p.id, task_id, people


def test_concurrent_next_gives_an_expired_slot_back_once(pg: Database) -> None:
    """Two annotators ask at once after a lease expired: both expire it, only one may reuse its slot."""
    pid, task_id, (a1, a2, a3) = _project(pg, 1, ["a1", "a2", "a3"])
    assert task_service.next_task(pg, a1, pid, lease_seconds=0) is not None  # expired at once
    got = behind_lock(pg, "SELECT * FROM assignments FOR UPDATE",
                       [lambda: task_service.next_task(pg, a2, pid), lambda: task_service.next_task(pg, a3, pid)])
    assert sum(g is not None for g in got) == 1, got
    with pg.transaction(write=False) as s:
        leased = s.execute(select(func.count()).where(Assignment.status == "leased")).scalar_one()
        assert leased == 1
        assert s.execute(select(Task.n_assigned).where(Task.id == task_id)).scalar_one() == 1


def test_concurrent_submits_of_one_lease_store_one_label(pg: Database) -> None:
    """A double submit without an idempotency key: one label is stored, the other is a conflict."""
    pid, task_id, (a1,) = _project(pg, 2, ["a1"])
    assert task_service.next_task(pg, a1, pid) is not None
    got = behind_lock(pg, "SELECT * FROM tasks FOR UPDATE",
                       [lambda: task_service.submit_annotation(pg, a1, task_id, "a"),
                        lambda: task_service.submit_annotation(pg, a1, task_id, "b")])
    assert isinstance(got[0], task_service.AnnotationResult) and got[0].created
    assert isinstance(got[1], ConflictError)
    with pg.transaction(write=False) as s:
        assert s.execute(select(func.count()).select_from(Annotation)).scalar_one() == 1
        assert s.execute(select(Task.n_annotations).where(Task.id == task_id)).scalar_one() == 1


def test_concurrent_skips_give_both_slots_back(pg: Database) -> None:
    pid, task_id, (a1, a2) = _project(pg, 2, ["a1", "a2"])
    assert task_service.next_task(pg, a1, pid) is not None and task_service.next_task(pg, a2, pid) is not None
    got = behind_lock(pg, "SELECT * FROM tasks FOR UPDATE",
                      [lambda: task_service.skip_task(pg, a1, task_id),
                       lambda: task_service.skip_task(pg, a2, task_id)])
    assert got == [None, None]
    with pg.transaction(write=False) as s:
        assert s.execute(select(Task.n_assigned).where(Task.id == task_id)).scalar_one() == 0


def test_undo_during_a_submit_keeps_the_label_count(pg: Database) -> None:
    """a2 submits while a1 undoes their label of the same task: one active label, counted once."""
    pid, task_id, (a1, a2) = _project(pg, 3, ["a1", "a2"])
    assert task_service.next_task(pg, a1, pid) is not None
    task_service.submit_annotation(pg, a1, task_id, "a")
    assert task_service.next_task(pg, a2, pid) is not None
    got = behind_lock(pg, "SELECT * FROM tasks FOR UPDATE",
                       [lambda: task_service.submit_annotation(pg, a2, task_id, "b"),
                        lambda: task_service.undo_last_annotation(pg, a1, pid)])
    assert not any(isinstance(g, Exception) for g in got), got
    with pg.transaction(write=False) as s:
        active = s.execute(select(func.count()).where(Annotation.status == "active")).scalar_one()
        assert active == 1
        assert s.execute(select(Task.n_annotations).where(Task.id == task_id)).scalar_one() == 1


def test_expiring_leases_locks_tasks_before_leases(pg: Database) -> None:
    """A submit locks its task row, then the lease. ``next`` expiring that lease at the same moment
    must take the locks in the same order, or the two deadlock (PostgreSQL aborts one): while
    ``next`` waits for the task, the lease must still be free."""
    pid, task_id, (a1, a2) = _project(pg, 1, ["a1", "a2"])
    assert task_service.next_task(pg, a1, pid, lease_seconds=0) is not None  # expired at once
    with pg.transaction(write=False) as s:
        lease_id = s.execute(select(Assignment.id)).scalar_one()
    engine = create_engine(make_url(pg.url), poolclass=NullPool)
    got: list[object] = []
    try:
        with engine.connect() as blocker, engine.connect() as probe:
            blocker.execute(text("SELECT id FROM tasks WHERE id = :t FOR UPDATE"), {"t": task_id})
            worker = threading.Thread(target=lambda: got.append(task_service.next_task(pg, a2, pid)))
            worker.start()
            wait_for_waiters(pg, 1)
            try:
                probe.execute(text("SELECT id FROM assignments WHERE id = :a FOR UPDATE NOWAIT"), {"a": lease_id})
                free = True
            except OperationalError:  # lock_not_available: next holds the lease while it waits
                free = False
            probe.rollback()
            blocker.rollback()
            worker.join()
    finally:
        engine.dispose()
    assert free
    assert got and got[0] is not None  # a2 got the slot the expired lease gave back
