"""The labelling workflow through the services layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from _accounts import new_user
from veracity.errors import ConflictError, InvalidInputError, PermissionDeniedError, SchemaValidationError
from veracity.services import Actor
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services import review as review_service
from veracity.services import tasks as task_service
from veracity.services.audit import verify_chain
from veracity.services.dashboard import project_dashboard
from veracity.storage import Database
from veracity.storage.models import AnnotatorSkill, AuditEvent, Consensus, Project, Task

SCHEMA = {"kind": "classification", "labels": ["a", "b", "c"]}


def _project(db: Database, admin: Actor, members: list[Actor], **kw: Any) -> int:
    p = project_service.create_project(db, admin, name=kw.pop("name", "P"), schema=kw.pop("schema", SCHEMA), **kw)
    for m in members:
        project_service.add_member(db, admin, p.id, m.name, "reviewer" if m.role == "reviewer" else "annotator")
    return p.id


def _label(db: Database, actor: Actor, pid: int, answer: Any) -> dict[str, Any] | None:
    task = task_service.next_task(db, actor, pid)
    if task is None:
        return None
    value = answer(task) if callable(answer) else answer
    task_service.submit_annotation(db, actor, task["task_id"], value)
    return task


def test_review_accept_reject_correct_and_no_self_review(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    a1, a2, rev = new_user(db, "a1"), new_user(db, "a2"), new_user(db, "rev", "reviewer")
    pid = _project(db, admin, [a1, a2, rev], overlap=2)
    project_service.import_items(db, admin, pid, [{"text": f"t{i}"} for i in range(3)])
    for _ in range(3):
        _label(db, a1, pid, "a")
        _label(db, a2, pid, lambda t: "a" if t["item"]["data"]["text"] == "t0" else "b")
    queue = review_service.review_queue(db, rev, pid)
    # t0 agreed (a, a); t1 and t2 disagree and wait for review
    assert sorted(q["item"]["data"]["text"] for q in queue) == ["t1", "t2"]
    assert {a["annotator"] for a in queue[0]["annotations"]} == {"a1", "a2"}
    with pytest.raises(PermissionDeniedError, match="no self-review"):
        # a1 is promoted to reviewer but still may not review what they labelled
        project_service.add_member(db, admin, pid, "a1", "reviewer")
        review_service.review_task(db, a1, queue[0]["task_id"], "accept")
    t1, t2 = queue[0]["task_id"], queue[1]["task_id"]
    review_service.review_task(db, rev, t1, "correct", value="c", comment="neither")
    with pytest.raises(SchemaValidationError, match="unknown label"):
        review_service.review_task(db, rev, t2, "correct", value="zzz")
    review_service.review_task(db, rev, t2, "reject", comment="look again")
    with db.transaction(write=False) as s:
        assert s.get(Consensus, t1).label == "c"  # type: ignore[union-attr]
        assert s.get(Task, t1).status == "reviewed"  # type: ignore[union-attr]
        task2 = s.get(Task, t2)
        assert task2 is not None and task2.status == "open" and task2.n_annotations == 0
        skills = {row.user_id: row for row in s.execute(select(AnnotatorSkill)).scalars()}
    # t1 corrected to c: both annotators were wrong on their one verified label
    assert skills[a1.user_id].n_gold == 1 and skills[a1.user_id].n_gold_correct == 0
    assert review_service.review_queue(db, rev, pid) == []
    # the rejected task goes to fresh annotators, not back to a1/a2
    assert task_service.next_task(db, a2, pid) is None
    a3 = new_user(db, "a3")
    project_service.add_member(db, admin, pid, "a3", "annotator")
    got = task_service.next_task(db, a3, pid)
    assert got is not None and got["task_id"] == t2
    assert verify_chain(db).ok


def test_gold_tasks_are_hidden_and_scored(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    good, bad = new_user(db, "good"), new_user(db, "bad")
    pid = _project(db, admin, [good, bad], overlap=1, gold_rate=1.0)
    project_service.import_items(db, admin, pid, [{"text": "g1", "gold": "b"}, {"text": "g2", "gold": "c"},
                                                  {"text": "plain"}])
    served = []
    for who, answer in ((good, lambda t: {"g1": "b", "g2": "c"}.get(t["item"]["data"]["text"], "a")),
                        (bad, "a")):
        while (task := _label(db, who, pid, answer)) is not None:
            assert "gold" not in str(task) and "gold_value" not in task
            served.append((who.name, task["item"]["data"]["text"]))
    # gold_rate=1: each annotator answers every gold task once; the plain item goes to one of them
    assert sorted(t for w, t in served if w == "good")[:2] == ["g1", "g2"]
    assert {t for w, t in served if w == "bad"} >= {"g1", "g2"}
    with db.transaction(write=False) as s:
        skills = {row.user_id: row for row in s.execute(select(AnnotatorSkill)).scalars()}
    assert skills[good.user_id].accuracy == 1.0 and skills[good.user_id].n_gold == 2
    assert skills[bad.user_id].accuracy == 0.0


def test_adaptive_redundancy_stops_early_and_sends_uncertain_items_to_review(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"p{i}") for i in range(6)]
    pid = _project(db, admin, people, overlap=1, min_labels=2, max_labels=4, target_confidence=0.9,
                   consensus_method="wmv")
    project_service.import_items(db, admin, pid, [{"text": "easy"}, {"text": "hard"}])
    flip = {"hard": iter(["a", "b", "a", "b", "a", "b"])}
    for person in people:
        _label(db, person, pid, lambda t: "a" if t["item"]["data"]["text"] == "easy" else next(flip["hard"]))
        _label(db, person, pid, lambda t: "a" if t["item"]["data"]["text"] == "easy" else next(flip["hard"]))
    with db.transaction(write=False) as s:
        rows = {t.item_id: t for t in s.execute(select(Task)).scalars()}
        easy, hard = sorted(rows.values(), key=lambda t: t.item_id)
    # two agreeing labels at the 0.7 prior accuracy give a posterior of 0.92 >= 0.9: done after 2
    assert easy.status == "complete" and easy.n_annotations == 2
    # a/b/a/b never reaches 0.9: stops at max_labels and goes to review
    assert hard.status == "review" and hard.n_annotations == 4


def test_refit_uses_the_truth_inference_engine(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(3)]
    pid = _project(db, admin, people, overlap=3, consensus_method="ds")
    project_service.import_items(db, admin, pid, [{"text": f"x{i}"} for i in range(8)])
    answers = {"w0": "a", "w1": "a", "w2": "b"}
    for person in people:
        while _label(db, person, pid, answers[person.name]) is not None:
            pass
    out = quality_service.refit_project(db, pid, actor=admin)
    assert out["n_answers"] == 24 and out["method"] == "ds"
    assert out["calibration"]["source"] == "answers" and out["calibration"]["n_gold"] == 0
    with db.transaction(write=False) as s:
        cons = list(s.execute(select(Consensus)).scalars())
        skills = {r.user_id: r for r in s.execute(select(AnnotatorSkill)).scalars()}
    assert all(c.label == "a" and c.method == "ds" for c in cons)
    assert skills[people[2].user_id].accuracy < skills[people[0].user_id].accuracy
    assert skills[people[0].user_id].confusion is not None


def test_refit_calibrates_confidence_on_gold_tasks(db: Database) -> None:
    """With 20+ answered gold tasks the refit's posterior temperature is fitted on them."""
    admin = new_user(db, "admin", "admin")
    people = [new_user(db, f"w{i}") for i in range(3)]
    pid = _project(db, admin, people, overlap=3, gold_rate=1.0, consensus_method="ds")
    gold = {f"g{i}": "abc"[i % 3] for i in range(24)}
    project_service.import_items(db, admin, pid, [{"text": t, "gold": g} for t, g in gold.items()]
                                 + [{"text": f"x{i}"} for i in range(12)])

    def answer(person: str) -> Any:
        # w0 is always right on gold; w1 and w2 share the same mistake on every third gold task
        def pick(task: dict[str, Any]) -> str:
            text = task["item"]["data"]["text"]
            if text in gold and person != "w0" and int(text[1:]) % 3 == 0:
                return "b"
            return gold.get(text, "a" if int(text[1:]) % 2 else "c")
        return pick

    for person in people:
        while _label(db, person, pid, answer(person.name)) is not None:
            pass
    out = quality_service.refit_project(db, pid, actor=admin)
    assert out["calibration"]["source"] == "gold" and out["calibration"]["n_gold"] == 24
    with db.transaction(write=False) as s:
        project = s.get(Project, pid)
        assert project is not None
        assert project.settings["last_refit"]["calibration"] == out["calibration"]
        gold_cons = [c for c in s.execute(select(Consensus)).scalars() if c.method == "gold"]
    assert len(gold_cons) == 24 and all(c.confidence == 1.0 for c in gold_cons)
    assert project_dashboard(db, admin, pid).refit["calibration"] == out["calibration"]


def test_label_issue_flagging_keep_and_fix(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    ann, rev = new_user(db, "ann"), new_user(db, "rev", "reviewer")
    pid = _project(db, admin, [ann, rev], overlap=1)
    res = project_service.import_items(db, admin, pid, [{"id": f"i{i}", "text": f"x{i}"} for i in range(30)])
    for _ in range(30):
        _label(db, ann, pid, lambda t: "b" if t["item"]["external_id"] in ("i3", "i7") else "a")
    probs = [{"external_id": f"i{i}", "probabilities": [0.95, 0.03, 0.02] if i not in (7, 11) else
              [0.02, 0.03, 0.95]} for i in range(30)]
    probs += [{"external_id": f"i{i}", "probabilities": [0.9, 0.05, 0.05]} for i in range(20, 30)]
    item_service.import_predictions(db, admin, pid, probs, model="m", model_version="1")
    out = quality_service.flag_label_issues(db, admin, pid)
    assert out["checked"] == 30 and out["flagged"] >= 2
    issues = review_service.list_label_issues(db, admin, pid)
    flagged = {i["item"]["external_id"]: i for i in issues}
    # i3: labelled b, the model is sure of a; i11: labelled a, the model is sure of c
    assert {"i3", "i11"} <= set(flagged) and "i0" not in flagged
    assert flagged["i3"]["given"] == "b" and flagged["i3"]["suggested"] == "a"
    assert flagged["i11"]["given"] == "a" and flagged["i11"]["suggested"] == "c"
    review_service.resolve_label_issue(db, rev, flagged["i3"]["task_id"], "fix")
    review_service.resolve_label_issue(db, rev, flagged["i11"]["task_id"], "keep")
    with db.transaction(write=False) as s:
        assert s.get(Consensus, flagged["i3"]["task_id"]).label == "a"  # type: ignore[union-attr]
        assert s.get(Consensus, flagged["i11"]["task_id"]).label == "a"  # type: ignore[union-attr]
        assert not s.get(Task, flagged["i11"]["task_id"]).flagged  # type: ignore[union-attr]
    assert res.imported == 30


def test_quota_assignment_undo_and_filters(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    ann, other = new_user(db, "ann"), new_user(db, "other")
    pid = _project(db, admin, [other], overlap=1)
    project_service.add_member(db, admin, pid, "ann", "annotator", quota=2)
    res = project_service.import_items(db, admin, pid, [{"text": f"hello {i}"} for i in range(5)])
    task_service.assign_items(db, admin, pid, "ann", [res.item_ids[4]])
    first = _label(db, other, pid, "a")
    assert first is not None and first["item"]["id"] != res.item_ids[4]  # reserved for ann
    got = _label(db, ann, pid, "b")
    assert got is not None and got["item"]["id"] == res.item_ids[4]  # assigned first
    undone = task_service.undo_last_annotation(db, ann, pid)
    assert undone["task_id"] == got["task_id"]
    task_service.submit_annotation(db, ann, got["task_id"], "c")
    assert _label(db, ann, pid, "a") is not None
    assert task_service.next_task(db, ann, pid) is None  # quota of 2 reached
    rows, _ = item_service.list_items(db, admin, pid, label="c")
    assert [r["item_id"] for r in rows] == [res.item_ids[4]]
    rows, _ = item_service.list_items(db, admin, pid, annotator="other")
    assert len(rows) == 1 and rows[0]["label"] == "a"
    rows, _ = item_service.list_items(db, admin, pid, text="HELLO 3")
    assert [r["data"]["text"] for r in rows] == ["hello 3"]
    rows, nxt = item_service.list_items(db, admin, pid, status="open", limit=1)
    assert len(rows) == 1 and nxt is not None
    with pytest.raises(PermissionDeniedError):
        item_service.list_items(db, ann, pid)


def test_leases_expire_and_return_the_slot(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    a1, a2 = new_user(db, "a1"), new_user(db, "a2")
    pid = _project(db, admin, [a1, a2], overlap=1)
    project_service.import_items(db, admin, pid, [{"text": "only"}])
    task = task_service.next_task(db, a1, pid, lease_seconds=0)
    assert task is not None
    got = task_service.next_task(db, a2, pid)
    assert got is not None and got["task_id"] == task["task_id"]  # a1's lease expired at once
    with pytest.raises(ConflictError, match="expired"):
        task_service.submit_annotation(db, a1, task["task_id"], "a")
    task_service.submit_annotation(db, a2, task["task_id"], "a")


def test_predictions_are_checked_and_shown_as_prelabels(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    pid = _project(db, admin, [], overlap=1)
    project_service.import_items(db, admin, pid, [{"id": "x", "text": "x"}])
    with pytest.raises(InvalidInputError, match=r"index 0\.probabilities"):
        item_service.import_predictions(db, admin, pid, [{"external_id": "x", "probabilities": [0.5, 0.2]}],
                                        model="m")
    with pytest.raises(InvalidInputError, match="no item 'nope'"):
        item_service.import_predictions(db, admin, pid, [{"external_id": "nope", "value": "a"}], model="m")
    item_service.import_predictions(db, admin, pid, [{"external_id": "x", "probabilities": {"b": 0.8, "a": 0.2}}],
                                    model="m", model_version="v2")
    task = task_service.next_task(db, admin, pid)
    assert task is not None and task["prelabel"] == {"value": "b", "model": "m", "model_version": "v2"}


def test_audit_chain_detects_tampering(db: Database) -> None:
    admin = new_user(db, "admin", "admin")
    _project(db, admin, [], name="One")
    _project(db, admin, [], name="Two")
    report = verify_chain(db)
    assert report.ok and report.n_events == 3
    with db.transaction() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.seq == 2)).scalar_one()
        ev.payload = {**ev.payload, "name": "Forged"}
    report = verify_chain(db)
    assert not report.ok and report.first_bad_seq == 2


def test_concurrent_labels_for_one_task_are_all_counted(db: Database) -> None:
    """Overlap 4: four annotators submit the same task at once; every label counts once in the
    task's counters and in its consensus (the submit locks the task row on PostgreSQL)."""
    import threading

    admin = new_user(db, "admin", "admin")
    crowd = [new_user(db, f"a{i}") for i in range(4)]
    pid = _project(db, admin, crowd, overlap=4)
    project_service.import_items(db, admin, pid, [{"text": "only"}])
    leases = [task_service.next_task(db, a, pid) for a in crowd]
    assert all(t is not None for t in leases) and len({t["task_id"] for t in leases if t}) == 1
    task_id = leases[0]["task_id"] if leases[0] else 0
    barrier = threading.Barrier(len(crowd))
    errors: list[BaseException] = []

    def submit(actor: Actor, value: str) -> None:
        barrier.wait()
        try:
            task_service.submit_annotation(db, actor, task_id, value)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(a, "b" if i < 3 else "a")) for i, a in enumerate(crowd)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.transaction(write=False) as s:
        task = s.get(Task, task_id)
        cons = s.get(Consensus, task_id)
    assert task is not None and cons is not None
    assert task.n_annotations == 4 and task.n_assigned == 4 and task.status == "complete"
    assert cons.n_labels == 4 and cons.label == "b" and cons.confidence == pytest.approx(0.75)
    assert task.priority == pytest.approx(0.75)
    assert task_service.next_task(db, crowd[0], pid) is None


def test_submit_checks_role_lease_and_value_in_order(db: Database) -> None:
    """The one-statement submit keeps the answers of the checks it replaced."""
    from veracity.errors import NotFoundError

    admin = new_user(db, "admin", "admin")
    a1, a2, viewer = new_user(db, "a1"), new_user(db, "a2"), new_user(db, "v1", "viewer")
    pid = _project(db, admin, [a1, a2], overlap=2)
    project_service.add_member(db, admin, pid, viewer.name, "viewer")
    project_service.import_items(db, admin, pid, [{"text": "x"}])
    task = task_service.next_task(db, a1, pid)
    assert task is not None
    tid = task["task_id"]
    with pytest.raises(NotFoundError, match="task 999999 not found"):
        task_service.submit_annotation(db, a1, 999_999, "a")
    outsider = new_user(db, "out")
    with pytest.raises(NotFoundError, match=f"project {pid} not found"):
        task_service.submit_annotation(db, outsider, tid, "a")
    with pytest.raises(PermissionDeniedError, match="viewer"):
        task_service.submit_annotation(db, viewer, tid, "a")
    with pytest.raises(SchemaValidationError, match="value"):
        task_service.submit_annotation(db, a1, tid, "zzz")
    with pytest.raises(ConflictError, match="not leased to you"):
        task_service.submit_annotation(db, a2, tid, "a")
    first = task_service.submit_annotation(db, a1, tid, "a", idempotency_key="k1")
    again = task_service.submit_annotation(db, a1, tid, "a", idempotency_key="k1")
    assert first.created and not again.created and again.id == first.id
    with pytest.raises(ConflictError, match="is submitted"):
        task_service.submit_annotation(db, a1, tid, "b")
    with db.transaction(write=False) as s:
        cons = s.get(Consensus, tid)
        stored = s.get(Task, tid)
    assert cons is not None and cons.label == "a" and cons.n_labels == 1 and cons.method == "mv"
    assert stored is not None and stored.n_annotations == 1 and stored.status == "open"


def test_background_refit_runs_exactly_when_enough_labels_are_new(db: Database) -> None:
    """maybe_refit (called once per label) refits at the 25th label, then at the 50th, and counts
    the project's labels only when a refit could be due."""
    admin = new_user(db, "admin", "admin")
    a1 = new_user(db, "a1")
    pid = _project(db, admin, [a1], consensus_method="ds")
    project_service.import_items(db, admin, pid, [{"text": f"x{i}"} for i in range(60)])
    refits: list[int] = []
    for n in range(1, 56):
        assert _label(db, a1, pid, "a" if n % 3 else "b") is not None
        out = quality_service.maybe_refit(db, pid)
        if out is not None:
            assert out["n_answers"] == n
            refits.append(n)
    assert refits == [25, 50]
    with db.transaction(write=False) as s:
        assert all(c.method == "ds" for c in s.execute(select(Consensus)).scalars() if c.n_labels)
