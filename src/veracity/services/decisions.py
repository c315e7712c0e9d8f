"""Decision support: route a model's outputs by conformal prediction sets, queue the uncertain ones
for an analyst, and record every decision in the audit log.

A project's decision policy (``settings["decision_policy"]``: coverage, score, threshold,
class_conditional; see :class:`veracity.decide.DecisionPolicy`) is applied to one model version:

1. calibration: items with a trusted label (reviewed, gold, or complete with consensus confidence
   of at least ``trusted_confidence``) and that model's probabilities fit a split-conformal
   predictor;
2. every other item with that model's probabilities gets a prediction set; a single-label set whose
   top probability clears the threshold is accepted automatically, the rest go to the queue;
3. an analyst accepts, overrides (with a reason; the override becomes a label for the next training
   set) or escalates each queued decision. Every step is an audit event.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from veracity.decide import DecisionPolicy, TemperatureScaling, decide, risk_coverage_curve
from veracity.errors import ConflictError, InvalidInputError, NotFoundError
from veracity.services._common import iso, now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import labels_of
from veracity.services.projects import require_cleared, require_role
from veracity.storage import Database
from veracity.storage.models import Annotation, Consensus, Decision, Item, Prediction, Project, Task, User

__all__ = ["decision_queue", "get_policy", "record_decision", "run_decisions", "set_policy"]

ANALYST_ROLES = ("reviewer", "manager")
ACTIONS = ("accept", "override", "escalate")


def set_policy(db: Database, actor: Actor, project_id: int, policy: dict[str, Any]) -> dict[str, Any]:
    """Store a project's decision policy (validated)."""
    checked = DecisionPolicy.from_dict(dict(policy)).to_dict()
    with db.transaction() as s:
        project, _ = require_role(s, actor, project_id, ("manager",))
        if project.label_schema["kind"] != "classification":
            raise ConflictError("decision support needs a classification project")
        settings = dict(project.settings or {})
        settings["decision_policy"] = checked
        project.settings = settings
        append_event(s, actor=actor.name, action="decision.policy", object_type="project", object_id=project_id,
                     payload=checked)
    return checked


def get_policy(project: Project) -> DecisionPolicy:
    return DecisionPolicy.from_dict(dict((project.settings or {}).get("decision_policy") or {}))


def _latest_probs(
    session: Any, project_id: int, model: str, version: str | None
) -> dict[int, tuple[int, list[float], str]]:
    q = (
        select(Task.id, Prediction.id, Prediction.probabilities, Prediction.model_version)
        .join(Prediction, Prediction.item_id == Task.item_id)
        .where(Task.project_id == project_id, Prediction.model_name == model, Prediction.probabilities.is_not(None))
        .order_by(Prediction.id)
    )
    if version is not None:
        q = q.where(Prediction.model_version == version)
    return {tid: (pid, probs, ver) for tid, pid, probs, ver in session.execute(q)}


def run_decisions(
    db: Database,
    actor: Actor,
    project_id: int,
    *,
    model: str,
    model_version: str | None = None,
    trusted_confidence: float = 0.9,
    random_state: int = 0,
) -> dict[str, Any]:
    """Calibrate on trusted labels, then decide on every undecided item with this model's outputs."""
    with db.transaction() as s:
        project, _ = require_role(s, actor, project_id, ("manager",))
        if project.label_schema["kind"] != "classification":
            raise ConflictError("decision support needs a classification project")
        policy = get_policy(project)
        classes = labels_of(project.label_schema)
        index = {c: i for i, c in enumerate(classes)}
        probs_by_task = _latest_probs(s, project_id, model, model_version)
        if not probs_by_task:
            raise NotFoundError(f"model: no probabilities of model {model!r} in project {project_id}")
        trusted: dict[int, int] = {}
        for tid, key, conf, status, is_gold in s.execute(
            select(Task.id, Consensus.label_key, Consensus.confidence, Task.status, Task.is_gold)
            .join(Consensus, Consensus.task_id == Task.id)
            .where(Task.project_id == project_id, Consensus.label_key.is_not(None))
        ):
            if key in index and (status == "reviewed" or is_gold or (status == "complete" and
                                                                     (conf or 0) >= trusted_confidence)):
                trusted[tid] = index[key]
        decided = {tid for (tid,) in s.execute(
            select(Task.id).join(Decision, Decision.item_id == Task.item_id).where(
                Task.project_id == project_id, Decision.project_id == project_id, Decision.model_name == model)
        )}
        cal = [t for t in probs_by_task if t in trusted]
        todo = [t for t in probs_by_task if t not in trusted and t not in decided]
        if len(cal) < 10:
            raise ConflictError(f"need at least 10 trusted labels with {model} probabilities to calibrate, "
                                f"have {len(cal)}")
        cal_probs = np.asarray([probs_by_task[t][1] for t in cal], dtype=np.float64)
        cal_labels = np.asarray([trusted[t] for t in cal])
        predictor = policy.fit(cal_probs, cal_labels, random_state=random_state)
        fitted = predictor.to_dict()
        estimate = {**_estimate(policy, cal_probs, cal_labels, random_state), "temperature": fitted["temperature"]}
        settings = dict(project.settings or {})
        settings["decision_estimate"] = {"model": model, **estimate}
        project.settings = settings
        if not todo:
            return {"calibration": len(cal), "decided": 0, "accepted": 0, "review": 0, "estimate": estimate}
        test_probs = np.asarray([probs_by_task[t][1] for t in todo], dtype=np.float64)
        out = decide(test_probs, predictor, policy)
        item_of = {t: i for t, i in s.execute(select(Task.id, Task.item_id).where(Task.id.in_(todo)))}
        accepted = 0
        for j, tid in enumerate(todo):
            pred_id, probs, version = probs_by_task[tid]
            pset = [classes[k] for k in np.flatnonzero(out.sets[j])]
            top = classes[int(out.top_label[j])]
            auto = out.outcome[j] == "accept"
            accepted += int(auto)
            dec = Decision(
                project_id=project_id, item_id=item_of[tid], prediction_id=pred_id, model_name=model,
                model_version=version, inputs={"task_id": tid, "fitted": fitted}, prediction_set=pset,
                probabilities=probs,
                policy=policy.to_dict(), outcome=str(out.outcome[j]), status="decided" if auto else "pending",
                action="auto" if auto else None, final_label=top if auto else None,
                decided_at=now() if auto else None,
            )
            s.add(dec)
            s.flush()
            append_event(s, actor=actor.name, action=f"decision.{'auto_accept' if auto else 'queue'}",
                         object_type="decision", object_id=dec.id,
                         payload={"item_id": dec.item_id, "model": model, "model_version": version, "set": pset,
                                  "top": top, "confidence": float(out.confidence[j]), "policy": policy.to_dict(),
                                  "fitted": fitted})
        return {"calibration": len(cal), "decided": len(todo), "accepted": accepted, "review": len(todo) - accepted,
                "automation_rate": accepted / len(todo), "estimate": estimate}


#: Thresholds of the stored risk-coverage curve (plus the policy's own).
_CURVE_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 21), 2)


def _estimate(policy: DecisionPolicy, probs: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, Any]:
    """Expected automation and error rates of the policy, honestly: fit on one half of the trusted
    items, measure the risk-coverage curve on the other half, read it at the policy's threshold."""
    order = np.random.default_rng(seed).permutation(labels.size)
    half = labels.size // 2
    fit, held = order[:half], order[half:]
    predictor = policy.fit(probs[fit], labels[fit], random_state=seed)
    grid = np.union1d(_CURVE_THRESHOLDS, [policy.threshold])  # the policy's threshold read exactly
    curve = risk_coverage_curve(probs[held], labels[held], predictor, thresholds=grid)
    # no item accepted at the threshold: the error rate is undefined (None; JSON has no NaN)
    at = {k: (v if np.isfinite(v) else None) for k, v in curve.at(policy.threshold).items()}
    points = curve.to_dict()
    return {**at, "n_heldout": int(held.size), "coverage": points["coverage"],
            "curve": {k: points[k] for k in ("thresholds", "automation_rate", "error_rate")}}


def decision_queue(db: Database, actor: Actor, project_id: int, *, status: str = "pending",
                   limit: int = 50, n_evidence: int = 3) -> list[dict[str, Any]]:
    """Queued decisions with the set, probabilities and the nearest trusted examples as evidence.

    Evidence: the labelled items whose probability vectors from the same model are closest
    (Euclidean) to the queued item's, with their trusted labels.
    """
    with db.transaction(write=False) as s:
        project, _ = require_role(s, actor, project_id, ANALYST_ROLES)
        classes = labels_of(project.label_schema)
        rows = [(d, i) for d, i in s.execute(
            select(Decision, Item)
            .join(Item, Item.id == Decision.item_id)
            .where(Decision.project_id == project_id, Decision.status == status,
                   Item.sensitivity <= actor.clearance)
            .order_by(Decision.id)
            .limit(max(1, min(limit, 500)))
        )]
        if not rows:
            return []
        models = {d.model_name for d, _ in rows}
        evidence_pool: dict[str, tuple[np.ndarray, list[dict[str, Any]]]] = {}
        for model in models:
            pool = list(s.execute(
                select(Item.id, Item.external_id, Item.data, Consensus.label, Prediction.probabilities)
                .join(Task, Task.item_id == Item.id)
                .join(Consensus, Consensus.task_id == Task.id)
                .join(Prediction, Prediction.item_id == Item.id)
                .where(Task.project_id == project_id, Prediction.model_name == model,
                       Prediction.probabilities.is_not(None), Consensus.label.is_not(None),
                       Task.status.in_(("complete", "reviewed")), Item.sensitivity <= actor.clearance)
                .limit(20000)
            ))
            if pool:
                vectors = np.asarray([p[4] for p in pool], dtype=np.float64)
                evidence_pool[model] = (vectors, [{"item_id": p[0], "external_id": p[1], "data": p[2],
                                                   "label": p[3]} for p in pool])
        out = []
        for dec, item in rows:
            evidence: list[dict[str, Any]] = []
            if dec.model_name in evidence_pool and dec.probabilities:
                vectors, meta = evidence_pool[dec.model_name]
                dist = np.linalg.norm(vectors - np.asarray(dec.probabilities), axis=1)
                order = [int(i) for i in np.argsort(dist, kind="stable") if meta[int(i)]["item_id"] != item.id]
                evidence = [{**meta[i], "distance": float(dist[i])} for i in order[:n_evidence]]
            temperature = ((dec.inputs or {}).get("fitted") or {}).get("temperature")
            out.append({
                "id": dec.id, "item": {"id": item.id, "external_id": item.external_id, "data": item.data},
                "model": dec.model_name, "model_version": dec.model_version, "set": dec.prediction_set,
                "probabilities": dict(zip(classes, _tempered(dec.probabilities or [], temperature), strict=False)),
                "model_probabilities": dict(zip(classes, dec.probabilities or [], strict=False)),
                "temperature": temperature,
                "policy": dec.policy, "outcome": dec.outcome, "status": dec.status, "evidence": evidence,
                "created_at": iso(dec.created_at),
            })
        return out


def _tempered(probs: list[float], temperature: float | None) -> list[float]:
    """What the policy worked with: the model's probabilities, recalibrated when it fitted a temperature."""
    if not probs or not temperature:
        return list(probs)
    return TemperatureScaling.apply(np.asarray([probs], dtype=np.float64), float(temperature))[0].tolist()


def record_decision(db: Database, actor: Actor, decision_id: int, action: str, *, label: str | None = None,
                    reason: str = "") -> dict[str, Any]:
    """An analyst's verdict on a queued decision: accept (the top label), override, or escalate."""
    if action not in ACTIONS:
        raise InvalidInputError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    with db.transaction() as s:
        dec = s.get(Decision, decision_id)
        if dec is None:
            raise NotFoundError(f"decision {decision_id} not found")
        require_cleared(s, actor, dec.item_id, f"decision {decision_id} not found")
        project, _ = require_role(s, actor, dec.project_id, ANALYST_ROLES)
        if dec.status == "decided":
            raise ConflictError(f"decision {decision_id} was already made ({dec.action})")
        classes = labels_of(project.label_schema)
        probs = dec.probabilities or []
        if action == "accept":
            final = label if label is not None else (classes[int(np.argmax(probs))] if probs else None)
            if final is None or final not in dec.prediction_set:
                raise InvalidInputError("label: accept takes a label from the prediction set")
            dec.status = "decided"
        elif action == "override":
            if label not in classes:
                raise InvalidInputError(f"label: expected one of {classes}, got {label!r}")
            if not reason.strip():
                raise InvalidInputError("reason: an override needs a reason")
            final = label
            dec.status = "decided"
            task = s.execute(
                select(Task).where(Task.project_id == project.id, Task.item_id == dec.item_id)
            ).scalar_one()
            s.add(Annotation(task_id=task.id, project_id=project.id, user_id=actor.user_id, value=label,
                             schema_version=project.schema_version, origin="decision",
                             source=f"decision {decision_id} override: {reason}"))
        else:
            final = None
            dec.status = "escalated"
        dec.action, dec.final_label, dec.reason = action, final, reason
        dec.analyst_id, dec.decided_at = actor.user_id, now()
        append_event(s, actor=actor.name, action=f"decision.{action}", object_type="decision", object_id=decision_id,
                     payload={"item_id": dec.item_id, "label": final, "reason": reason, "model": dec.model_name,
                              "model_version": dec.model_version, "set": dec.prediction_set})
        analyst = s.get(User, actor.user_id)
        return {"id": decision_id, "status": dec.status, "action": action, "label": final,
                "analyst": analyst.name if analyst else actor.name}
