"""FastSelect (SQLite driver path) returns exactly what Core returns, for every hot statement.

On PostgreSQL the same calls go through Core, so the comparison there checks the fallback.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from _accounts import new_user_and_token
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services import tasks as task_service
from veracity.services import users as user_service
from veracity.storage import Database
from veracity.storage.fast import FastSelect
from veracity.storage.models import Prediction, Task

SCHEMA = {"kind": "classification", "labels": ["a", "b", "c"]}


def _same(db: Database, fast: FastSelect, params: dict[str, Any]) -> int:
    """Rows of the fast path and of Core, compared by value, key and type; returns how many."""
    with db.connect(write=False) as c:
        core = [tuple(r) for r in c.execute(fast.stmt, params).all()]
        core_keys = list(c.execute(fast.stmt, params).keys())
        rows = fast.all(c, params)
        first = fast.first(c, params)
    assert [tuple(r) for r in rows] == core
    assert [[type(v) for v in r] for r in rows] == [[type(v) for v in r] for r in core]
    assert all(list(r._fields) == core_keys for r in rows)
    assert (first is None) == (not core)
    if core:
        assert tuple(first) == core[0]
        for key in core_keys:  # attribute access, as the services read rows
            assert getattr(first, key) == core[0][core_keys.index(key)]
    return len(core)


def test_hot_statements_match_core(db: Database) -> None:
    admin, _ = new_user_and_token(db, "admin", "admin")
    ann, token = new_user_and_token(db, "ann")
    other, _ = new_user_and_token(db, "other")
    p = project_service.create_project(db, admin, name="P", schema=SCHEMA, overlap=2, gold_rate=0.0,
                                       consensus_method="ds", settings={"show_prelabels": True})
    for person in (ann, other):
        project_service.add_member(db, admin, p.id, person.name, "annotator")
    project_service.import_items(db, admin, p.id, [{"id": f"i{i}", "text": f"x{i}"} for i in range(6)])
    with db.transaction() as s:
        first_task = s.execute(select(Task).where(Task.project_id == p.id).order_by(Task.id)).scalars().first()
        assert first_task is not None
        s.add(Prediction(item_id=first_task.item_id, model_name="m", model_version="1", value="b",
                         probabilities=[0.1, 0.8, 0.1], project_id=p.id))
    leased = task_service.next_task(db, ann, p.id)
    assert leased is not None and leased["prelabel"]["value"] == "b"
    task_service.submit_annotation(db, ann, leased["task_id"], "a", idempotency_key="k1")
    held = task_service.next_task(db, other, p.id)  # an unexpired lease, left open
    assert held is not None
    quality_service.refit_project(db, p.id)

    at = dt.datetime.now(dt.UTC)
    n = 0
    for user in (ann, other, admin):
        who = {"project_id": p.id, "user_id": user.user_id}
        n += _same(db, task_service._NEXT_CONTEXT, {**who, "at": at})
        n += _same(db, task_service._NEXT_CONTEXT, {**who, "at": at + dt.timedelta(days=1)})  # leases expired
        queue = {**who, "clearance": user.clearance}
        for fast in (task_service._MINE, task_service._GOLD, task_service._QUEUE):
            n += _same(db, fast, queue)
        for task_id in (leased["task_id"], held["task_id"], 10**9):
            n += _same(db, task_service._SUBMIT_CONTEXT, {"task_id": task_id, "user_id": user.user_id})
    for item_id in (leased["item"]["id"], held["item"]["id"]):
        n += _same(db, task_service._PRELABEL, {"item_id": item_id})
    for task_id in (leased["task_id"], held["task_id"]):
        n += _same(db, quality_service._TASK_LABELS, {"task_id": task_id})
    n += _same(db, user_service._TOKEN_ACTOR, {"token_hash": user_service._token_hash(token)})
    n += _same(db, user_service._TOKEN_ACTOR, {"token_hash": "no such token"})
    assert n >= 15  # the comparisons saw rows, not only empty results


def test_hot_updates_match_core(db: Database) -> None:
    """Each FastUpdate on one row and Core's execution of the same statement on a twin row leave
    the two rows equal, and report the same row counts (also for a row that does not exist)."""
    from veracity.storage.models import Consensus

    admin, _ = new_user_and_token(db, "admin", "admin")
    ann, _ = new_user_and_token(db, "ann")
    p = project_service.create_project(db, admin, name="P", schema=SCHEMA, overlap=3, consensus_method="ds")
    project_service.add_member(db, admin, p.id, ann.name, "annotator")
    project_service.import_items(db, admin, p.id, [{"id": f"i{i}", "text": f"x{i}"} for i in range(4)])
    tasks = []
    for _ in range(2):  # two labelled tasks: each has a task row, a lease and a consensus row
        lease = task_service.next_task(db, ann, p.id)
        assert lease is not None
        task_service.submit_annotation(db, ann, lease["task_id"], "a")
        tasks.append(lease["task_id"])
    a, b = tasks
    with db.transaction() as s:
        lease_a, lease_b = (s.execute(select(task_service.Assignment.id).where(task_service.Assignment.task_id == t))
                            .scalar_one() for t in (a, b))
        # open again: _FINISH_LEASE ends only a lease that is still open
        s.execute(update(task_service.Assignment).where(task_service.Assignment.id.in_([lease_a, lease_b]))
                  .values(status="leased"))
    at = dt.datetime.now(dt.UTC).replace(microsecond=123456)
    cases = [
        (task_service._CLAIM, lambda t, _l: {"b_id": t}),
        (task_service._FINISH_LEASE, lambda _t, lease: {"b_id": lease, "b_at": at}),
        (task_service._STORE_TASK, lambda t, _l: {"b_id": t, "b_n": 2, "b_priority": 0.25, "b_target": 3,
                                                  "b_status": "complete", "b_completed_at": at}),
        (quality_service._UPDATE_CONSENSUS, lambda t, _l: {
            "b_task_id": t, "b_label": "c", "b_label_key": "c", "b_confidence": 0.75, "b_n_labels": 2,
            "b_method": "ds", "b_updated_at": at}),
    ]
    for fast, params in cases:
        with db.connect() as c:
            n_fast = fast.run(c, params(a, lease_a))
            n_core = c.execute(fast.stmt, params(b, lease_b)).rowcount
            n_none = fast.run(c, params(10**9, 10**9))
        assert n_fast == n_core == 1 and n_none == 0
    with db.transaction(write=False) as s:
        def columns(model: Any, key: str, value: int) -> dict[str, Any]:
            row = s.execute(select(model).where(getattr(model, key) == value)).scalar_one()
            skip = {"id", "task_id", "item_id", "leased_at", "expires_at"}  # set by the two leases, not here
            return {k: v for k, v in vars(row).items() if not k.startswith("_") and k not in skip}

        assert columns(Task, "id", a) == columns(Task, "id", b)
        assert columns(Consensus, "task_id", a) == columns(Consensus, "task_id", b)
        assert columns(task_service.Assignment, "id", lease_a) == columns(task_service.Assignment, "id", lease_b)
