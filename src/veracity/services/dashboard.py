"""Read-only statistics of a project for the manager dashboard.

Everything here is a plain query plus arithmetic on the rows it returns; nothing is written.
"Accuracy" on the leaderboard is agreement with the current consensus (on tasks with at least two
labels) and, where the project has gold tasks, the share of gold answers matched. "Agreement over
time" is the observed pairwise agreement of labels (for each label, the share of the other labels
on its task with the same answer), averaged over up to ``n_bins`` equal-sized groups of labels in
the order they were given.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import case, func, select

from veracity.quality.aggregation import GOLD_CALIBRATION_MIN
from veracity.services._common import as_utc, canonical_json, now
from veracity.services.actors import Actor
from veracity.services.label_schemas import label_key, labels_of
from veracity.services.projects import project_role, require_role
from veracity.storage import Database
from veracity.storage.models import Annotation, AnnotatorSkill, Assignment, Consensus, Item, Task, User

__all__ = ["DASHBOARD_ROLES", "Dashboard", "project_dashboard", "project_summaries"]

DASHBOARD_ROLES = ("manager", "reviewer", "viewer")
CATEGORICAL = ("classification", "multilabel", "rating", "pairwise")
SHAPED = ("spans", "boxes", "polygons", "keypoints")


@dataclass(frozen=True)
class Dashboard:
    """The figures behind one project's dashboard (plain values, ready to render)."""

    project: dict[str, Any]
    progress: dict[str, int]
    queue: dict[str, int]
    label_distribution: list[tuple[str, int]]
    agreement: list[dict[str, Any]]
    leaderboard: list[dict[str, Any]]
    confusion: dict[str, dict[str, Any]] = field(default_factory=dict)
    suspect: int = 0
    #: the last full refit (method, time, labels, where its confidences' temperature came from) and
    #: ``gold_needed``, the answered gold tasks a refit needs to calibrate on them
    refit: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _progress(session: Any, project_id: int) -> dict[str, int]:
    out = {"tasks": 0, "complete": 0, "in_progress": 0, "untouched": 0, "in_review": 0, "reviewed": 0,
           "annotations": 0, "target_annotations": 0, "gold": 0}
    started = func.sum(case((Task.n_annotations > 0, 1), else_=0))
    for status, gold, n, n_started, n_ann, target in session.execute(
        select(Task.status, Task.is_gold, func.count(), started, func.sum(Task.n_annotations), func.sum(Task.target))
        .where(Task.project_id == project_id)
        .group_by(Task.status, Task.is_gold)
    ):
        n, n_started, n_ann, target = int(n), int(n_started or 0), int(n_ann or 0), int(target or 0)
        out["tasks"] += n
        out["annotations"] += n_ann
        out["target_annotations"] += max(target, n_ann)
        if gold:
            out["gold"] += n
        if status == "complete":
            out["complete"] += n
        elif status == "review":
            out["in_review"] += n
        elif status == "reviewed":
            out["reviewed"] += n
        else:
            out["in_progress"] += n_started
            out["untouched"] += n - n_started
    return out


def _queue(session: Any, project_id: int) -> dict[str, int]:
    open_slots = session.execute(
        select(func.coalesce(func.sum(Task.target - Task.n_assigned), 0)).where(
            Task.project_id == project_id, Task.status == "open", Task.n_assigned < Task.target
        )
    ).scalar_one()
    open_tasks = session.execute(
        select(func.count()).where(Task.project_id == project_id, Task.status == "open",
                                   Task.n_assigned < Task.target)
    ).scalar_one()
    leased = session.execute(
        select(func.count()).where(Assignment.project_id == project_id, Assignment.status == "leased",
                                   Assignment.expires_at >= now())
    ).scalar_one()
    flagged = session.execute(
        select(func.count()).where(Task.project_id == project_id, Task.flagged.is_(True))
    ).scalar_one()
    return {"open_tasks": int(open_tasks), "open_slots": int(open_slots), "leased": int(leased),
            "flagged": int(flagged)}


def _shape_labels(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v["label"]) for v in value if isinstance(v, dict) and "label" in v]


def _agreement(per_task: dict[int, list[tuple[Any, str]]], n_bins: int) -> list[dict[str, Any]]:
    scored: list[tuple[Any, float]] = []
    for labels in per_task.values():
        if len(labels) < 2:
            continue
        keys = Counter(k for _, k in labels)
        for at, k in labels:
            scored.append((at, (keys[k] - 1) / (len(labels) - 1)))
    if not scored:
        return []
    scored.sort(key=lambda p: p[0])
    n_bins = max(1, min(n_bins, len(scored)))
    out = []
    for b in range(n_bins):
        lo, hi = b * len(scored) // n_bins, (b + 1) * len(scored) // n_bins
        chunk = scored[lo:hi]
        if chunk:
            out.append({"label": f"{lo + 1}-{hi}", "until": as_utc(chunk[-1][0]).isoformat(timespec="minutes"),
                        "value": sum(v for _, v in chunk) / len(chunk), "n": len(chunk)})
    return out


def project_dashboard(db: Database, actor: Actor, project_id: int, *, n_bins: int = 10) -> Dashboard:
    """Progress, queue sizes, label distribution, agreement, leaderboard and confusion matrices.

    Label distribution, agreement, leaderboard and confusion matrices count only items within the
    caller's clearance; progress and queue counts cover the whole project.
    """
    with db.transaction(write=False) as s:
        project, _ = require_role(s, actor, project_id, DASHBOARD_ROLES)
        schema = project.label_schema
        kind = schema["kind"]
        labels = labels_of(schema)
        progress = _progress(s, project_id)
        queue = _queue(s, project_id)
        queue["waiting_review"] = progress["in_review"]

        # Labels, gold answers and annotations only of items within the caller's clearance; the
        # progress and queue counts above are the project's whole workload.
        cleared = Item.sensitivity <= actor.clearance
        consensus: dict[int, tuple[str | None, int]] = {
            tid: (key, int(n))
            for tid, key, n in s.execute(
                select(Consensus.task_id, Consensus.label_key, Consensus.n_labels)
                .join(Task, Task.id == Consensus.task_id)
                .join(Item, Item.id == Task.item_id)
                .where(Consensus.project_id == project_id, cleared)
            )
        }
        gold: dict[int, str] = {
            tid: canonical_json(v)
            for tid, v in s.execute(
                select(Task.id, Task.gold_value)
                .join(Item, Item.id == Task.item_id)
                .where(Task.project_id == project_id, Task.is_gold.is_(True), cleared)
            )
        }
        paused = set((project.settings or {}).get("paused_annotators") or ())
        last = (project.settings or {}).get("last_refit") or {}
        refit = {k: last[k] for k in ("at", "method", "n_answers", "calibration") if k in last}
        refit["gold_needed"] = GOLD_CALIBRATION_MIN  # answered gold tasks that calibrate the confidence
        skills = {
            uid: acc
            for uid, acc in s.execute(
                select(AnnotatorSkill.user_id, AnnotatorSkill.accuracy).where(AnnotatorSkill.project_id == project_id)
            )
        }
        rows = s.execute(
            select(Annotation.task_id, User.name, Annotation.user_id, Annotation.value, Annotation.created_at,
                   Annotation.duration_ms)
            .join(User, User.id == Annotation.user_id)
            .join(Task, Task.id == Annotation.task_id)
            .join(Item, Item.id == Task.item_id)
            .where(Annotation.project_id == project_id, Annotation.status == "active",
                   Annotation.origin == "human", cleared)
            .order_by(Annotation.id)
        ).all()

    dist: Counter[str] = Counter()
    if kind in CATEGORICAL:
        for key, _n in consensus.values():
            if key is None:
                continue
            for part in key.split("|") if kind == "multilabel" else [key]:
                dist[part] += 1
    elif kind in SHAPED:
        for row in rows:
            dist.update(_shape_labels(row.value))
    order = {name: i for i, name in enumerate(labels)}
    distribution = sorted(dist.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))

    per_task: dict[int, list[tuple[Any, str]]] = defaultdict(list)
    people: dict[str, dict[str, Any]] = {}
    confusion: dict[str, dict[str, Any]] = {}
    square = kind in ("classification", "rating", "pairwise")
    index = {name: i for i, name in enumerate(labels)}
    for row in rows:
        key = label_key(schema, row.value) if kind in CATEGORICAL else None
        p = people.setdefault(row.name, {"user": row.name, "n": 0, "agree": 0, "compared": 0, "gold_ok": 0,
                                         "n_gold": 0, "durations": [], "skill": skills.get(row.user_id),
                                         "paused": row.user_id in paused})
        p["n"] += 1
        if row.duration_ms is not None:
            p["durations"].append(row.duration_ms)
        if row.task_id in gold:
            p["n_gold"] += 1
            p["gold_ok"] += int(canonical_json(row.value) == gold[row.task_id])
        if key is None:
            continue
        per_task[row.task_id].append((row.created_at, key))
        cons_key, n_labels = consensus.get(row.task_id, (None, 0))
        if cons_key is not None and n_labels >= 2:
            p["compared"] += 1
            p["agree"] += int(key == cons_key)
            if square and cons_key in index and key in index:
                m = confusion.setdefault(row.name, {"labels": labels,
                                                    "matrix": [[0] * len(labels) for _ in labels]})
                m["matrix"][index[cons_key]][index[key]] += 1

    leaderboard = []
    for p in people.values():
        durations = p.pop("durations")
        agree, compared, gold_ok, n_gold = p.pop("agree"), p.pop("compared"), p.pop("gold_ok"), p["n_gold"]
        p["accuracy"] = agree / compared if compared else None
        p["compared"] = compared
        p["gold_accuracy"] = gold_ok / n_gold if n_gold else None
        p["median_seconds"] = statistics.median(durations) / 1000 if durations else None
        leaderboard.append(p)
    leaderboard.sort(key=lambda p: (-(p["accuracy"] if p["accuracy"] is not None else -1), -p["n"], p["user"]))

    info = {"id": project.id, "name": project.name, "kind": kind, "labels": labels, "overlap": project.overlap,
            "gold_rate": project.gold_rate, "colors": dict(schema.get("colors") or {}),
            "description": project.description, "target_confidence": project.target_confidence}
    return Dashboard(
        project=info, progress=progress, queue=queue, label_distribution=distribution,
        agreement=_agreement(per_task, n_bins), leaderboard=leaderboard,
        confusion=dict(sorted(confusion.items())), suspect=queue["flagged"], refit=refit,
    )


def project_summaries(db: Database, actor: Actor, project_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per project the actor can see: tasks, complete (or reviewed) tasks and flagged tasks."""
    if not project_ids:
        return {}
    with db.transaction(write=False) as s:
        visible = [pid for pid in project_ids if project_role(s, actor, pid) is not None]
        out = {pid: {"tasks": 0, "done": 0, "flagged": 0} for pid in visible}
        for pid, status, flagged, n in s.execute(
            select(Task.project_id, Task.status, Task.flagged, func.count())
            .where(Task.project_id.in_(visible))
            .group_by(Task.project_id, Task.status, Task.flagged)
        ):
            out[pid]["tasks"] += int(n)
            if status in ("complete", "reviewed"):
                out[pid]["done"] += int(n)
            if flagged:
                out[pid]["flagged"] += int(n)
        return out

