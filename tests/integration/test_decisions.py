"""Decision support through the services layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from _accounts import new_user
from veracity.errors import ConflictError, InvalidInputError, NotFoundError
from veracity.services import decisions as decision_service
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.services.audit import list_events, verify_chain
from veracity.storage import Database
from veracity.storage.models import Annotation, Decision, Item

LABELS = ["cat", "dog", "fox"]


def test_policy_routes_confident_items_and_queues_the_rest(db: Database) -> None:
    boss = new_user(db, "boss", "admin")
    analyst = new_user(db, "ana", "reviewer")
    p = project_service.create_project(db, boss, name="D", schema={"kind": "classification", "labels": LABELS})
    project_service.add_member(db, boss, p.id, "ana", "reviewer")
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, size=120)
    res = project_service.import_items(db, boss, p.id, [{"id": f"x{i}", "text": f"item {i}"} for i in range(120)])
    # a model that is sure and right on most items, unsure on every fifth
    probs = np.full((120, 3), 0.05)
    probs[np.arange(120), truth] = 0.9
    probs[::5] = [0.4, 0.35, 0.25]
    item_service.import_predictions(db, boss, p.id, [{"external_id": f"x{i}", "probabilities": probs[i].tolist()}
                                                     for i in range(120)], model="net", model_version="3")
    for _ in range(60):  # trusted labels for the first 60 served items
        task = task_service.next_task(db, boss, p.id)
        assert task is not None
        i = int(task["item"]["external_id"][1:])
        task_service.submit_annotation(db, boss, task["task_id"], LABELS[truth[i]])

    with pytest.raises(InvalidInputError, match="coverage"):
        decision_service.set_policy(db, boss, p.id, {"coverage": 1.5})
    decision_service.set_policy(db, boss, p.id, {"coverage": 0.9, "score": "lac", "threshold": 0.8})
    out = decision_service.run_decisions(db, boss, p.id, model="net")
    assert out["calibration"] == 60 and out["decided"] == 60
    assert out["accepted"] + out["review"] == 60 and out["review"] >= 10  # the unsure fifth is queued
    est = out["estimate"]
    assert est["n_heldout"] == 30 and 0.5 <= est["automation_rate"] <= 0.9 and est["error_rate"] <= 0.1
    curve = est["curve"]
    assert curve["thresholds"][0] == 0.0 and curve["thresholds"][-1] == 1.0 and len(curve["thresholds"]) == 21
    assert all(a >= b for a, b in zip(curve["automation_rate"], curve["automation_rate"][1:], strict=False))
    assert curve["automation_rate"][curve["thresholds"].index(0.8)] == est["automation_rate"]
    assert decision_service.run_decisions(db, boss, p.id, model="net")["decided"] == 0

    queue = decision_service.decision_queue(db, analyst, p.id)
    assert len(queue) == out["review"]
    first = queue[0]
    assert len(first["set"]) >= 1 and set(first["probabilities"]) == set(LABELS)
    assert len(first["evidence"]) == 3 and all(e["label"] in LABELS for e in first["evidence"])

    with pytest.raises(InvalidInputError, match="reason"):
        decision_service.record_decision(db, analyst, first["id"], "override", label="fox")
    decision_service.record_decision(db, analyst, first["id"], "override", label="fox", reason="tail shape")
    with pytest.raises(ConflictError):
        decision_service.record_decision(db, analyst, first["id"], "accept")
    second = queue[1]
    outside = next(lab for lab in LABELS if lab not in second["set"]) if len(second["set"]) < 3 else None
    if outside is not None:
        with pytest.raises(InvalidInputError, match="prediction set"):
            decision_service.record_decision(db, analyst, second["id"], "accept", label=outside)
    decision_service.record_decision(db, analyst, second["id"], "accept", label=second["set"][0])
    decision_service.record_decision(db, analyst, queue[2]["id"], "escalate", reason="unsure")
    assert len(decision_service.decision_queue(db, analyst, p.id)) == out["review"] - 3
    assert len(decision_service.decision_queue(db, analyst, p.id, status="escalated")) == 1

    with db.transaction(write=False) as s:
        overrides = list(s.execute(select(Annotation).where(Annotation.origin == "decision")).scalars())
        made = s.get(Decision, first["id"])
    assert [a.value for a in overrides] == ["fox"]
    assert made is not None and made.final_label == "fox" and made.model_version == "3"
    assert made.policy == {"coverage": 0.9, "score": "lac", "threshold": 0.8, "class_conditional": False,
                           "calibration": "none"}
    assert made.inputs["fitted"]["temperature"] is None and made.inputs["fitted"]["n_calibration"] == 60
    actions = [e["action"] for e in list_events(db, limit=500)]
    assert actions.count("decision.override") == 1 and actions.count("decision.escalate") == 1
    assert actions.count("decision.auto_accept") == out["accepted"]
    assert verify_chain(db).ok
    assert res.imported == 120


def test_temperature_calibration_tempers_an_overconfident_model(db: Database) -> None:
    """A model that says 0.97 and is right 70% of the time: the policy recalibrates before it decides."""
    boss = new_user(db, "boss", "admin")
    p = project_service.create_project(db, boss, name="T", schema={"kind": "classification", "labels": LABELS})
    rng = np.random.default_rng(2)
    n = 200
    truth = rng.integers(0, 3, size=n)
    said = np.where(rng.random(n) < 0.7, truth, (truth + rng.integers(1, 3, size=n)) % 3)
    probs = np.full((n, 3), 0.015)
    probs[np.arange(n), said] = 0.97
    project_service.import_items(db, boss, p.id, [{"id": f"x{i}", "text": f"item {i}"} for i in range(n)])
    item_service.import_predictions(db, boss, p.id, [{"external_id": f"x{i}", "probabilities": probs[i].tolist()}
                                                     for i in range(n)], model="net")
    for _ in range(120):
        task = task_service.next_task(db, boss, p.id)
        assert task is not None
        task_service.submit_annotation(db, boss, task["task_id"], LABELS[truth[int(task["item"]["external_id"][1:])]])
    with pytest.raises(InvalidInputError, match="calibration"):
        decision_service.set_policy(db, boss, p.id, {"calibration": "platt"})
    decision_service.set_policy(db, boss, p.id, {"coverage": 0.8, "threshold": 0.9, "calibration": "temperature"})
    out = decision_service.run_decisions(db, boss, p.id, model="net")
    assert out["calibration"] == 120 and out["decided"] == 80
    assert out["estimate"]["temperature"] > 2  # softened
    assert out["accepted"] == 0  # calibrated, nothing is 90% sure: an analyst sees every item
    assert out["estimate"]["automation_rate"] == 0 and out["estimate"]["error_rate"] is None  # stored as JSON null
    queue = decision_service.decision_queue(db, boss, p.id, limit=100)
    assert len(queue) == 80
    first = queue[0]
    assert max(first["model_probabilities"].values()) == pytest.approx(0.97)
    assert 0.6 < max(first["probabilities"].values()) < 0.8  # close to the 70% it is right
    assert first["temperature"] == pytest.approx(out["estimate"]["temperature"])
    events = [e for e in list_events(db, limit=500) if e["action"] == "decision.queue"]
    assert len(events) == 80 and events[0]["payload"]["fitted"]["temperature"] == first["temperature"]
    assert verify_chain(db).ok


def test_decisions_on_items_above_clearance_stay_hidden(db: Database) -> None:
    """An analyst cleared to 0 neither sees nor, by id, decides the queued items marked 5."""
    boss = new_user(db, "boss", "admin")
    analyst = new_user(db, "ana", "reviewer")
    p = project_service.create_project(db, boss, name="H", schema={"kind": "classification", "labels": LABELS})
    project_service.add_member(db, boss, p.id, "ana", "reviewer")
    project_service.import_items(db, boss, p.id, [{"id": f"x{i}", "text": f"item {i}", "sensitivity": 5 * (i % 2)}
                                                  for i in range(80)])
    probs = np.tile([0.4, 0.35, 0.25], (80, 1))  # unsure everywhere: every decision is queued
    item_service.import_predictions(db, boss, p.id, [{"external_id": f"x{i}", "probabilities": probs[i].tolist()}
                                                     for i in range(80)], model="net", model_version="1")
    for n in range(20):  # labels for calibration, on items the admin (clearance 0) is served
        task = task_service.next_task(db, boss, p.id)
        assert task is not None
        task_service.submit_annotation(db, boss, task["task_id"], LABELS[n % 3])
    decision_service.set_policy(db, boss, p.id, {"coverage": 0.9, "score": "lac", "threshold": 0.99})
    decision_service.run_decisions(db, boss, p.id, model="net")
    queue = decision_service.decision_queue(db, analyst, p.id, limit=100)
    with db.transaction(write=False) as s:
        hidden = s.execute(select(Decision.id).join(Item, Item.id == Decision.item_id)
                           .where(Item.sensitivity == 5, Decision.status == "pending")).scalars().all()
    assert queue and hidden and not {d["id"] for d in queue} & set(hidden)
    with pytest.raises(NotFoundError, match=f"decision {hidden[0]} not found"):
        decision_service.record_decision(db, analyst, hidden[0], "escalate", reason="peek")
    decision_service.record_decision(db, analyst, queue[0]["id"], "escalate", reason="unsure")
