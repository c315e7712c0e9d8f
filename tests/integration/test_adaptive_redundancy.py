"""Adaptive redundancy through the services layer: the stopping rule, its posterior and the queue."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from _accounts import new_user
from veracity.errors import InvalidInputError
from veracity.services import Actor
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services import tasks as task_service
from veracity.services.dashboard import project_dashboard
from veracity.storage import Database
from veracity.storage.models import Consensus, Project, Task

SCHEMA = {"kind": "classification", "labels": ["a", "b", "c"]}


def _project(db: Database, admin: Actor, members: list[Actor], **kw: Any) -> int:
    p = project_service.create_project(db, admin, name="P", schema=SCHEMA, **kw)
    for m in members:
        project_service.add_member(db, admin, p.id, m.name, "annotator")
    return p.id


def _tasks(db: Database, pid: int) -> dict[int, tuple[Task, float | None]]:
    with db.transaction(write=False) as s:
        rows = s.execute(
            select(Task, Consensus.confidence).outerjoin(Consensus, Consensus.task_id == Task.id)
            .where(Task.project_id == pid)
        ).all()
        return {t.id: (t, conf) for t, conf in rows}


def test_seeded_project_stops_at_the_target_and_within_min_and_max(db: Database) -> None:
    """A seeded crowd labels until the queue is empty, with the server's refits after every label.

    After every label: an item that completed did so at a posterior >= target and with at least
    ``min_labels``; an item sent to review has exactly ``max_labels``; none ever exceeds the maximum.
    """
    lo, hi, target = 2, 5, 0.9
    rng = np.random.default_rng(7)
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(8)]
    accuracy = [0.9, 0.9, 0.85, 0.85, 0.8, 0.8, 0.4, 0.34]  # the last two are close to chance
    pid = _project(db, admin, people, overlap=lo, min_labels=lo, max_labels=hi, target_confidence=target,
                   consensus_method="ds")
    n_items = 30
    truth = rng.integers(0, 3, size=n_items)
    project_service.import_items(db, admin, pid, [{"id": str(i), "text": f"x{i}"} for i in range(n_items)])
    active = list(range(len(people)))
    before = {tid: t.status for tid, (t, _) in _tasks(db, pid).items()}
    while active:
        w = active[int(rng.integers(len(active)))]
        task = task_service.next_task(db, people[w], pid)
        if task is None:
            active.remove(w)
            continue
        t = truth[int(task["item"]["external_id"])]
        answer = t if rng.random() < accuracy[w] else (t + 1 + rng.integers(0, 2)) % 3
        task_service.submit_annotation(db, people[w], task["task_id"], SCHEMA["labels"][int(answer)])
        # Each decision is checked against the posterior it was taken on: the label's own
        # (incremental) posterior, then the refit's. A refit may move the confidence of an item
        # that already stopped; it is not reopened.
        for step in ("label", "refit"):
            if step == "refit":
                quality_service.maybe_refit(db, pid, min_new=5)
            now = _tasks(db, pid)
            for tid, (row, conf) in now.items():
                assert row.n_annotations <= hi
                if row.status == "complete":
                    assert row.n_annotations >= lo
                    if before[tid] != "complete":  # stopped by this step
                        assert conf is not None and conf >= target
                if row.status == "review":
                    assert row.n_annotations == hi
                    if before[tid] != "review":
                        assert conf is not None and conf < target
            before = {tid: row.status for tid, (row, _) in now.items()}
    final = _tasks(db, pid)
    assert all(row.status in ("complete", "review") for row, _ in final.values())
    counts = [row.n_annotations for row, _ in final.values()]
    assert min(counts) >= lo and max(counts) <= hi
    assert any(c == lo for c in counts), "easy items should stop at the minimum"
    assert sum(counts) < hi * n_items


def test_refit_stops_open_items_that_the_full_model_puts_at_the_target(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(3)]
    pid = _project(db, admin, people, overlap=2, min_labels=2, max_labels=5, target_confidence=0.95,
                   consensus_method="ds")
    project_service.import_items(db, admin, pid, [{"id": str(i), "text": f"x{i}"} for i in range(6)])
    for person in people[:2]:  # two annotators who agree on every item (two items per class)
        for _ in range(6):
            task = task_service.next_task(db, person, pid)
            assert task is not None
            value = SCHEMA["labels"][int(task["item"]["external_id"]) % 3]
            task_service.submit_annotation(db, person, task["task_id"], value)
    # before any refit, two agreeing labels at the default accuracy 0.7 give 0.916 < 0.95: still open
    assert all(row.status == "open" and row.target == 3 for row, _ in _tasks(db, pid).values())
    quality_service.refit_project(db, pid)
    after = _tasks(db, pid)
    assert all(conf is not None and conf >= 0.95 for _, conf in after.values())
    assert all(row.status == "complete" and row.n_annotations == 2 for row, _ in after.values())
    assert task_service.next_task(db, people[2], pid) is None  # nothing left to label


def _newcomer_confidence(db: Database, first: list[str], override: Callable[[dict[str, Any]], dict[str, Any]]) -> float:
    """w0 labels ``first``, a refit runs, ``override`` rewrites its ``last_refit`` settings, and then w1 (whom
    the refit has not seen: one-coin at 0.7) labels a new item "c"; returns that item's stored confidence."""
    admin = new_user(db, "admin", "admin")
    w0, w1 = new_user(db, "w0"), new_user(db, "w1")
    pid = _project(db, admin, [w0, w1], overlap=1, consensus_method="ds")
    project_service.import_items(db, admin, pid, [{"text": f"x{i}"} for i in range(len(first) + 1)])
    for value in first:
        task = task_service.next_task(db, w0, pid)
        assert task is not None
        task_service.submit_annotation(db, w0, task["task_id"], value)
    quality_service.refit_project(db, pid)
    with db.transaction() as s:
        project = s.get(Project, pid)
        assert project is not None
        project.settings = {**project.settings, "last_refit": override(project.settings["last_refit"])}
    task = task_service.next_task(db, w1, pid)
    assert task is not None
    task_service.submit_annotation(db, w1, task["task_id"], "c")
    with db.transaction(write=False) as s:
        return float(s.execute(select(Consensus.confidence).where(Consensus.task_id == task["task_id"])).scalar_one())


def test_incremental_posterior_uses_the_refitted_class_prior(db: Database) -> None:
    prior = [0.8, 0.15, 0.05]

    def skew(refit: dict[str, Any]) -> dict[str, Any]:
        stored = refit["class_prior"]
        assert len(stored) == 3 and math.isclose(sum(stored), 1.0, abs_tol=1e-4)
        # a skewed prior, set by hand so that the expected posterior does not depend on the fit
        return {**refit, "class_prior": prior}

    conf = _newcomer_confidence(db, ["a", "a", "a", "b"], skew)
    post = np.array(prior) * np.array([0.15, 0.15, 0.7])
    expected = float(post.max() / post.sum())  # 0.8 * 0.15 / (0.12 + 0.0225 + 0.035) = 0.676, for "a"
    assert expected < 0.7  # without the prior, the label "c" alone would give 0.7
    assert conf == pytest.approx(expected, rel=1e-6)


def test_incremental_posterior_uses_the_refitted_temperature(db: Database) -> None:
    prior = [0.5, 0.3, 0.2]

    def temper(refit: dict[str, Any]) -> dict[str, Any]:
        assert refit["calibration"]["source"] in ("answers", "none")
        # prior and temperature set by hand, so that the expected posterior does not depend on the fit
        return {**refit, "class_prior": prior, "calibration": {**refit["calibration"], "temperature": 2.5}}

    conf = _newcomer_confidence(db, ["a", "b", "c", "a"], temper)
    logits = (np.log(prior) + np.log([0.15, 0.15, 0.7])) / 2.5
    post = np.exp(logits - logits.max())
    expected = float(post.max() / post.sum())
    assert expected < 0.5  # untempered, "c" would get 0.2 * 0.7 / (0.075 + 0.045 + 0.14) = 0.54
    assert conf == pytest.approx(expected, rel=1e-6)


def test_adaptive_projects_temper_only_from_gold(db: Database) -> None:
    """Labels of adaptively stopped items agree more than skill explains: no answer-fitted temperature."""
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(3)]
    pid = _project(db, admin, people, overlap=2, min_labels=2, max_labels=3, target_confidence=0.9,
                   consensus_method="ds")
    project_service.import_items(db, admin, pid, [{"id": str(i), "text": f"x{i}"} for i in range(30)])
    for person in people:
        while (task := task_service.next_task(db, person, pid)) is not None:
            i = int(task["item"]["external_id"])
            value = SCHEMA["labels"][(i + (person.name == "w2" and i % 4 == 0)) % 3]
            task_service.submit_annotation(db, person, task["task_id"], value)
    out = quality_service.refit_project(db, pid)
    assert out["calibration"] == {"source": "none", "temperature": 1.0, "n_gold": 0}


def test_started_items_are_served_before_new_ones_least_confident_first(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(4)]
    pid = _project(db, admin, people, overlap=2, min_labels=2, max_labels=4, target_confidence=0.99,
                   consensus_method="mv")
    project_service.import_items(db, admin, pid, [{"text": f"x{i}"} for i in range(4)])
    # w0 labels item 0 and item 1; w1 agrees on item 0 and disagrees on item 1
    for person, values in ((people[0], ["a", "a"]), (people[1], ["a", "b"])):
        for value in values:
            task = task_service.next_task(db, person, pid)
            assert task is not None
            task_service.submit_annotation(db, person, task["task_id"], value)
    states = {row.item_id: (row.n_annotations, conf) for row, conf in _tasks(db, pid).values()}
    assert sorted(n for n, _ in states.values()) == [0, 0, 2, 2]
    nxt = task_service.next_task(db, people[2], pid)
    assert nxt is not None
    # the split item (confidence 0.5, still open) comes before the new ones (the agreed one stopped at 1.0)
    served = states[nxt["item"]["id"]]
    assert served == (2, 0.5)


def test_refit_pauses_an_uninformative_annotator_and_only_them(db: Database) -> None:
    """With ``pause_below_information``, a refit pauses the annotator whose answers ignore the truth.

    Three reliable annotators agree on the item's class; a fourth always answers "a" (a constant
    spammer: 1/3 accuracy, like chance, but a plain accuracy floor would not catch a constant answer
    on a skewed set). After the refit only the spammer is listed and served nothing more.
    """
    admin = new_user(db, "admin", "admin")
    good = [new_user(db, f"g{i}") for i in range(3)]
    spammer = new_user(db, "spam")
    pid = _project(db, admin, [*good, spammer], overlap=4, consensus_method="ds",
                   settings={"pause_below_information": 0.05, "pause_min_answers": 10})
    n_items = 30
    project_service.import_items(db, admin, pid, [{"id": str(i), "text": f"x{i}"} for i in range(n_items + 10)])
    for person in [*good, spammer]:
        for _ in range(n_items):
            task = task_service.next_task(db, person, pid)
            assert task is not None
            truth = int(task["item"]["external_id"]) % 3
            value = "a" if person is spammer else SCHEMA["labels"][truth]
            task_service.submit_annotation(db, person, task["task_id"], value)
    quality_service.refit_project(db, pid)
    with db.transaction(write=False) as s:
        project = s.get(Project, pid)
        assert project is not None
        assert project.settings["paused_annotators"] == [spammer.user_id]
    assert task_service.next_task(db, spammer, pid) is None  # 10 items are still open for them
    assert task_service.next_task(db, good[0], pid) is not None
    board = {row["user"]: row["paused"] for row in project_dashboard(db, admin, pid).leaderboard}
    assert board == {"g0": False, "g1": False, "g2": False, "spam": True}


def test_pause_settings_are_checked(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    with pytest.raises(InvalidInputError, match="pause_below_information"):
        project_service.create_project(db, admin, name="P", schema=SCHEMA, settings={"pause_below_information": 1.5})
    with pytest.raises(InvalidInputError, match="pause_min_answers"):
        project_service.create_project(db, admin, name="Q", schema=SCHEMA,
                                       settings={"pause_below_information": 0.05, "pause_min_answers": 0})
