"""Project quality: consensus and annotator skill from the truth-inference engine, adaptive
redundancy, and suspect-item flagging from model predictions.

Two speeds:

- **Incremental**, after each annotation (:func:`update_task_consensus`): the item's posterior over
  labels is recomputed from its labels with the parameters of the last full refit held fixed: the
  class prior, each annotator's confusion matrix (Dawid & Skene 1979) and the posterior
  temperature; annotators the refit has not seen yet count as one-coin at accuracy 0.7 (the true
  label with probability 0.7, each other label with ``0.3 / (K - 1)``). Projects with
  ``consensus_method="mv"`` use the plain vote share instead.
- **Full refit** (:func:`refit_project`, run in the background by the server and on demand): the
  project's chosen method of :func:`veracity.quality.infer_truth` (``ds``, ``glad``, ``mace``, ...)
  over every label, with gold tasks as anchors; it rewrites every consensus row and every
  annotator's accuracy and confusion matrix.

Pausing uninformative annotators: with ``settings["pause_below_information"]`` set (a share in
(0, 1); 0.05 is a reasonable floor), every full refit lists the annotators with at least
``settings["pause_min_answers"]`` (default 20) answers whose labels tell less than that share of
the true class (normalised mutual information of their refitted confusion matrix,
:func:`veracity.quality.label_information`) in ``settings["paused_annotators"]``; ``next`` serves
them nothing until a later refit clears them. Their labels stay and count as the model weighs them.

Adaptive redundancy: with ``target_confidence`` set, an item stops receiving annotators once its
posterior reaches the target and it has ``min_labels``; below the target it asks for one more label,
up to ``max_labels``; still uncertain at the maximum, it goes to review. The rule runs after every
label (incremental posterior) and again after every full refit for the items still open. Started
items wait in the queue at priority = their confidence (< 1), ahead of new items (priority 1), so
the next label goes to the least certain item that still needs one.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from veracity.errors import ConflictError, InvalidInputError
from veracity.quality import find_label_issues, infer_truth
from veracity.services._common import now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import label_key, labels_of
from veracity.services.projects import require_role
from veracity.storage import Database
from veracity.storage.fast import FastSelect, FastUpdate
from veracity.storage.models import Annotation, AnnotatorSkill, Consensus, Prediction, Project, Task

#: Consensus methods whose posteriors the refit tempers (``calibrate`` parameter).
_CALIBRATED = frozenset({"ds", "onecoin", "mace", "glad", "auto"})

__all__ = [
    "CATEGORICAL_KINDS",
    "DEFAULT_ACCURACY",
    "PAUSE_MIN_ANSWERS",
    "ProjectLike",
    "TaskLike",
    "flag_label_issues",
    "maybe_refit",
    "queue_priority",
    "refit_project",
    "update_task_consensus",
]

CATEGORICAL_KINDS = ("classification", "pairwise", "rating")
DEFAULT_ACCURACY = 0.7
PAUSE_MIN_ANSWERS = 20


def _key_value(schema: dict[str, Any], key: str) -> Any:
    if schema["kind"] == "rating":
        return float(key) if "." in key else int(key)
    return key


class ProjectLike(Protocol):
    """What consensus and adaptive redundancy read of a project: a :class:`Project` row or the
    light copy the labelling queue builds from its context query (``services.tasks.QueueProject``)."""

    id: int
    label_schema: dict[str, Any]
    overlap: int
    min_labels: int | None
    max_labels: int | None
    target_confidence: float | None
    consensus_method: str
    settings: dict[str, Any]


class TaskLike(Protocol):
    """What consensus and adaptive redundancy read and set of a task (a :class:`Task` row or
    ``services.tasks.QueueTask``)."""

    id: int
    item_id: int
    status: str
    is_gold: bool
    gold_value: Any
    flagged: bool
    target: int
    n_annotations: int
    priority: float
    completed_at: dt.datetime | None


def queue_priority(confidence: float | None, flagged: bool) -> float:
    """A task's place in the queue, lowest first: flagged (suspect) items, then least confident."""
    return (1.0 if confidence is None else confidence) - (2.0 if flagged else 0.0)


# The incremental update runs on every submitted label: statements compiled once (on SQLite run on the
# driver, see storage.fast), no ORM session.
_TASK_LABELS = FastSelect(select(Annotation.user_id, Annotation.value).where(
    Annotation.task_id == bindparam("task_id"), Annotation.status == "active", Annotation.origin == "human"
))
_LABELLER_SKILLS = select(AnnotatorSkill.user_id, AnnotatorSkill.accuracy, AnnotatorSkill.confusion).where(
    AnnotatorSkill.project_id == bindparam("project_id"),
    AnnotatorSkill.user_id.in_(bindparam("user_ids", expanding=True)),
)
_CONSENSUS = Consensus.__table__
_UPDATE_CONSENSUS = FastUpdate(
    update(_CONSENSUS)
    .where(_CONSENSUS.c.task_id == bindparam("b_task_id"))
    .values(label=bindparam("b_label", type_=_CONSENSUS.c.label.type), label_key=bindparam("b_label_key"),
            confidence=bindparam("b_confidence"), n_labels=bindparam("b_n_labels"), method=bindparam("b_method"),
            updated_at=bindparam("b_updated_at", type_=_CONSENSUS.c.updated_at.type))
)
_INSERT_CONSENSUS = insert(_CONSENSUS)


def update_task_consensus(conn: Connection, project: ProjectLike, task: TaskLike) -> None:
    """Recompute one task's consensus after a label arrives, and apply adaptive redundancy.

    Reads the task's active human labels (a handful: one index range) and, for model-based
    projects, their annotators' current skills; writes the consensus row. ``task`` may be a
    transient object: this sets its ``priority`` (and, through adaptive redundancy, ``target``,
    ``status`` and ``completed_at``) and the caller stores them.
    """
    schema = project.label_schema
    rows = _TASK_LABELS.all(conn, {"task_id": task.id})
    classes = labels_of(schema)
    index = {c: i for i, c in enumerate(classes)}
    keys = [(uid, label_key(schema, v)) for uid, v in rows]
    keys = [(uid, k) for uid, k in keys if k is not None and k in index]
    label = confidence = key_out = None
    method = project.consensus_method
    if task.is_gold and task.gold_value is not None:
        key_out = label_key(schema, task.gold_value)
        label, confidence, method = task.gold_value, 1.0, "gold"
    elif keys and classes:
        n_k = len(classes)
        if method == "mv":
            votes = [0] * n_k
            for _, k in keys:
                votes[index[k]] += 1
            best = max(range(n_k), key=lambda i: (votes[i], -i))  # ties: the label listed first
            key_out, confidence = classes[best], votes[best] / len(keys)
        else:
            user_ids = sorted({u for u, _ in keys if u is not None})
            skills = {
                uid: (a, c)
                for uid, a, c in conn.execute(_LABELLER_SKILLS, {"project_id": project.id, "user_ids": user_ids})
            }
            logp = _log_class_prior(project, n_k)
            for uid, k in keys:
                a, confusion = skills.get(uid, (None, None))
                if confusion is not None and len(confusion) == n_k:
                    # P(this answer | true class j) from the refitted confusion matrix (rows: true class)
                    col = np.array([row[index[k]] for row in confusion], dtype=np.float64)
                    logp += np.log(np.clip(col, 1e-3, 1.0))
                    continue
                a = min(max(float(a or DEFAULT_ACCURACY), 1.0 / n_k + 1e-3), 1 - 1e-3)
                row = np.full(n_k, math.log((1 - a) / max(n_k - 1, 1)))
                row[index[k]] = math.log(a)
                logp += row
            logp /= _refit_temperature(project)
            post = np.exp(logp - logp.max())
            post /= post.sum()
            best = int(np.argmax(post))  # ties: the label listed first in the schema
            key_out, confidence = classes[best], float(post[best])
        label = _key_value(schema, key_out)
    values = {"b_label": label, "b_label_key": key_out, "b_confidence": confidence, "b_n_labels": len(rows),
              "b_method": method, "b_updated_at": now()}
    if _UPDATE_CONSENSUS.run(conn, {"b_task_id": task.id, **values}) == 0:
        conn.execute(_INSERT_CONSENSUS, {"task_id": task.id, "project_id": project.id, "item_id": task.item_id,
                                         **{k[2:]: v for k, v in values.items()}})
    task.priority = queue_priority(confidence, task.flagged)
    _apply_redundancy(project, task, confidence)


def _log_class_prior(project: ProjectLike, n_k: int) -> np.ndarray:
    """Log class prior of the last full refit (zeros, i.e. uniform, before the first one).

    The incremental posterior is the model's posterior for one item with the refitted parameters
    held fixed: ``P(true = j | labels) ~ prior_j * prod_labels P(label | true = j)`` (Dawid & Skene
    1979). Leaving the prior out overstates the confidence in rare classes, and so stops items
    early exactly where the model is least sure.
    """
    prior = ((project.settings or {}).get("last_refit") or {}).get("class_prior")
    if not isinstance(prior, list) or len(prior) != n_k:
        return np.zeros(n_k)
    return np.log(np.clip(np.asarray(prior, dtype=np.float64), 1e-3, 1.0))


def _calibration_params(project: ProjectLike, method: str) -> dict[str, Any]:
    """``calibrate="gold"`` for projects with adaptive redundancy, nothing otherwise.

    With adaptive redundancy an item gets more labels exactly when its first ones disagree, so the
    labels kept on stopped items agree more than the annotators' skill explains. Predicting one
    held-out label from the others (how the refit tempers its posteriors without gold) then finds
    the model under-confident and sharpens it, 2-4x on simulated crowds, which would stop items
    even earlier. The model's own posterior stays valid (the stopping rule only looks at observed
    labels), and gold tasks, which are not stopped early, can still calibrate it.
    """
    if project.target_confidence is None or method not in _CALIBRATED:
        return {}
    return {"calibrate": "gold"}


def _refit_temperature(project: ProjectLike) -> float:
    """Posterior temperature of the last full refit (1 before the first one).

    The refit tempers its posteriors (fitted on gold tasks when there are enough, otherwise on
    held-out answers; see ``veracity.quality.aggregate``); the incremental posterior holds that
    parameter fixed too, so that an item's confidence does not jump when a refit rewrites it and
    adaptive redundancy stops on the same calibrated scale either way.
    """
    cal = ((project.settings or {}).get("last_refit") or {}).get("calibration") or {}
    tau = cal.get("temperature") if isinstance(cal, dict) else None
    return float(tau) if isinstance(tau, int | float) and 0 < tau < math.inf else 1.0


def _apply_redundancy(project: ProjectLike, task: TaskLike, confidence: float | None) -> None:
    if task.is_gold or task.status not in ("open", "complete"):
        return
    n = task.n_annotations
    if project.target_confidence is None or project.label_schema["kind"] not in CATEGORICAL_KINDS:
        if n >= task.target and task.status == "open":
            task.status, task.completed_at = "complete", now()
        return
    lo = project.min_labels or 1
    hi = project.max_labels or max(lo, project.overlap)
    if n < lo:
        task.target = max(task.target, lo)
        return
    if confidence is not None and confidence >= project.target_confidence:
        task.target = n
        task.status, task.completed_at = "complete", now()
    elif n >= hi:
        task.target = n
        task.status, task.completed_at = "review", now()
    else:
        task.target = n + 1
        task.status = "open"


def _coded_answers(session: Session, project: Project) -> dict[str, Any]:
    schema = project.label_schema
    classes = labels_of(schema)
    index = {c: i for i, c in enumerate(classes)}
    rows = session.execute(
        select(Annotation.task_id, Annotation.user_id, Annotation.value)
        .join(Task, Task.id == Annotation.task_id)
        .where(Annotation.project_id == project.id, Annotation.status == "active", Annotation.origin == "human",
               Annotation.user_id.is_not(None))
        .order_by(Annotation.id)
    )
    t_ids: dict[int, int] = {}
    w_ids: dict[int, int] = {}
    t_idx, w_idx, lab = [], [], []
    for tid, uid, value in rows:
        k = label_key(schema, value)
        if k is None or k not in index:
            continue
        t_idx.append(t_ids.setdefault(tid, len(t_ids)))
        w_idx.append(w_ids.setdefault(uid, len(w_ids)))
        lab.append(index[k])
    gold_t, gold_l = [], []
    for tid, gold in session.execute(
        select(Task.id, Task.gold_value).where(Task.project_id == project.id, Task.is_gold.is_(True))
    ):
        k = label_key(schema, gold)
        if tid in t_ids and k in index:
            gold_t.append(t_ids[tid])
            gold_l.append(index[k])
    return {"classes": classes, "task_ids": list(t_ids), "user_ids": list(w_ids), "task_idx": t_idx,
            "worker_idx": w_idx, "label": lab, "gold_t": gold_t, "gold_l": gold_l}


def refit_project(db: Database, project_id: int, *, method: str | None = None,
                  actor: Actor | None = None) -> dict[str, Any]:
    """Refit consensus and skills of a categorical project with the full truth-inference model."""
    with db.transaction() as s:
        if actor is not None:
            require_role(s, actor, project_id, ("manager",))
        project = s.get(Project, project_id)
        if project is None:
            raise InvalidInputError(f"project {project_id} not found")
        if project.label_schema["kind"] not in CATEGORICAL_KINDS:
            raise ConflictError(f"project {project_id} is of kind {project.label_schema['kind']}: "
                                "truth inference needs categorical labels")
        method = method or (project.consensus_method if project.consensus_method != "mv" else "mv")
        data = _coded_answers(s, project)
        if not data["task_idx"]:
            return {"project_id": project_id, "method": method, "n_answers": 0}
        res = infer_truth(
            np.asarray(data["task_idx"]), np.asarray(data["worker_idx"]), np.asarray(data["label"]),
            n_tasks=len(data["task_ids"]), n_classes=len(data["classes"]), n_workers=len(data["user_ids"]),
            method=method, gold_task_idx=np.asarray(data["gold_t"], dtype=np.int64) if data["gold_t"] else None,
            gold_label=np.asarray(data["gold_l"], dtype=np.int64) if data["gold_t"] else None, random_state=0,
            **_calibration_params(project, method),
        )
        schema = project.label_schema
        counts = np.bincount(np.asarray(data["worker_idx"]), minlength=len(data["user_ids"]))
        conf = res.probas[np.arange(len(data["task_ids"])), res.label_idx]
        for j, tid in enumerate(data["task_ids"]):
            task = s.get(Task, tid)
            assert task is not None
            if task.is_gold or task.status == "reviewed":
                continue
            key = data["classes"][int(res.label_idx[j])]
            s.execute(
                update(Consensus).where(Consensus.task_id == tid).values(
                    label=_key_value(schema, key), label_key=key, confidence=float(conf[j]), method=method,
                    updated_at=now())
            )
            task.priority = queue_priority(float(conf[j]), task.flagged)
            if task.status == "open":
                # Adaptive redundancy with the refitted posterior: an open item that the full model
                # now puts at the target stops here instead of waiting for its next label (items
                # already complete are not reopened).
                _apply_redundancy(project, task, float(conf[j]))
        for w, uid in enumerate(data["user_ids"]):
            row = s.get(AnnotatorSkill, (project_id, uid))
            if row is None:
                row = AnnotatorSkill(project_id=project_id, user_id=uid)
                s.add(row)
            row.accuracy = float(res.worker_accuracy[w])
            row.n_answers = int(counts[w])
            row.confusion = None if res.confusions is None else np.round(res.confusions[w], 4).tolist()
            row.method, row.updated_at = method, now()
        settings = dict(project.settings or {})
        # where the confidences' temperature came from: gold tasks, held-out answers, or none
        calibration = {"source": str(res.extras.get("temperature_source", "none")),
                       "temperature": round(float(res.extras.get("temperature", 1.0)), 6),
                       "n_gold": len(data["gold_t"])}
        settings["last_refit"] = {"at": now().isoformat(), "method": method, "n_answers": len(data["label"]),
                                  "calibration": calibration}
        if res.priors is not None:  # the class prior of the incremental posterior (_log_class_prior)
            settings["last_refit"]["class_prior"] = np.round(res.priors, 6).tolist()
        if settings.get("pause_below_information") is not None:
            settings["paused_annotators"] = _paused(settings, res, counts, data["user_ids"])
        project.settings = settings
        return {"project_id": project_id, "method": method, "n_answers": len(data["label"]),
                "n_tasks": len(data["task_ids"]), "n_workers": len(data["user_ids"]), "calibration": calibration}


def _paused(settings: dict[str, Any], res: Any, counts: np.ndarray, user_ids: list[int]) -> list[int]:
    """Annotators whose answers, by the refitted model, carry almost nothing about the truth.

    With ``settings["pause_below_information"] = s``, an annotator with at least
    ``settings["pause_min_answers"]`` (default 20) answers whose labels remove less than a share
    ``s`` of the uncertainty about the true class (``AggregationResult.worker_information``) gets
    no new tasks until a later refit says otherwise: a spammer's labels cost as much as anyone's
    and only make the items they touch ask for more.
    """
    info = res.worker_information
    floor = float(settings["pause_below_information"])
    min_answers = int(settings.get("pause_min_answers", PAUSE_MIN_ANSWERS))
    return sorted(int(uid) for w, uid in enumerate(user_ids) if counts[w] >= min_answers and info[w] < floor)


_refit_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()
# Per project: labels this process reported since it last counted, and how many it waits for before
# counting again (counting is a scan of the project's labels, too slow to run after every label).
_refit_waits: dict[tuple[str, int], list[int]] = {}


def maybe_refit(db: Database, project_id: int, *, min_new: int = 25, share: float = 0.1) -> dict[str, Any] | None:
    """Refit a project in the background once enough new labels arrived since the last refit.

    Call once per new label. Runs when the project's method is not ``mv`` and at least
    ``max(min_new, share * total)`` human labels are new. After a count that finds ``k`` labels
    missing, the next ``k - 1`` calls of this process return at once without counting (no refit
    can be due before ``k`` more labels arrive; labels stored by other processes only make the
    next count find the refit due). One refit per project at a time in this process; a refit
    already running makes this call return None at once.
    """
    key = (db.url, project_id)
    with _locks_guard:
        wait = _refit_waits.setdefault(key, [0, 0])
        wait[0] += 1
        if wait[0] < wait[1]:
            return None
        wait[0] = wait[1] = 0
    with db.transaction(write=False) as s:
        project = s.get(Project, project_id)
        if project is None or project.consensus_method == "mv":
            return None
        if project.label_schema["kind"] not in CATEGORICAL_KINDS:
            return None
        total = s.execute(
            select(func.count()).where(Annotation.project_id == project_id, Annotation.origin == "human",
                                       Annotation.status == "active")
        ).scalar_one()
        last = int(((project.settings or {}).get("last_refit") or {}).get("n_answers", 0))
    missing = max(min_new, share * total) - (total - last)
    if missing > 0:
        with _locks_guard:
            _refit_waits[key][1] = math.ceil(missing)
        return None
    with _locks_guard:
        lock = _refit_locks.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=False):
        return None
    try:
        return refit_project(db, project_id)
    finally:
        lock.release()


def flag_label_issues(db: Database, actor: Actor, project_id: int, *, model_name: str | None = None,
                      method: str = "auto") -> dict[str, Any]:
    """Flag items whose consensus label disagrees with the model's probabilities (confident learning).

    Uses each item's latest prediction with probabilities (optionally of ``model_name``). Flagged
    items get ``issue_score`` (low = suspect) and ``suggested`` and are served first for review.
    """
    with db.transaction() as s:
        project, _ = require_role(s, actor, project_id, ("manager", "reviewer"))
        schema = project.label_schema
        classes = labels_of(schema)
        index = {c: i for i, c in enumerate(classes)}
        q = (
            select(Task.id, Consensus.label_key, Prediction.probabilities, Prediction.id)
            .join(Consensus, Consensus.task_id == Task.id)
            .join(Prediction, Prediction.item_id == Task.item_id)
            .where(Task.project_id == project_id, Prediction.probabilities.is_not(None),
                   Consensus.label_key.is_not(None), Task.status != "reviewed")
            .order_by(Task.id, Prediction.id)
        )
        if model_name is not None:
            q = q.where(Prediction.model_name == model_name)
        latest: dict[int, tuple[str, list[float]]] = {}
        for tid, key, probs, _pid in s.execute(q):
            if key in index and isinstance(probs, list) and len(probs) == len(classes):
                latest[tid] = (key, probs)
        if len(latest) < 2:
            raise ConflictError("need consensus labels and model probabilities for at least 2 items to flag issues")
        task_ids = list(latest)
        labels = np.array([index[latest[t][0]] for t in task_ids])
        probs = np.array([latest[t][1] for t in task_ids], dtype=np.float64)
        probs /= probs.sum(axis=1, keepdims=True)
        res = find_label_issues(labels, probs, method=method)
        flagged = 0
        for j, tid in enumerate(task_ids):
            task = s.get(Task, tid)
            assert task is not None
            task.issue_score = float(res.scores[j])
            task.flagged = bool(res.mask[j])
            task.suggested = _key_value(schema, classes[int(res.suggested[j])]) if res.mask[j] else None
            cons = s.get(Consensus, tid)
            task.priority = queue_priority(None if cons is None else cons.confidence, task.flagged)
            flagged += int(res.mask[j])
        append_event(s, actor=actor.name, action="label_issues.flag", object_type="project", object_id=project_id,
                     payload={"checked": len(task_ids), "flagged": flagged, "method": method})
        return {"checked": len(task_ids), "flagged": flagged}
