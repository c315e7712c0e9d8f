"""Review: reviewers accept, reject or correct labelled items; verdicts feed annotator skill.

The review queue holds, oldest first, the tasks of a project that need a second look:
tasks sent to review explicitly (still uncertain at ``max_labels``, or flagged as suspect), and
complete tasks whose annotators disagree (consensus confidence below the project setting
``review_below``, default 1.0: any disagreement). A reviewer never reviews a task they labelled.

- accept: the consensus stands; annotators who agree with it are credited, the others debited.
- reject: the task's labels are set aside (status "rejected") and it returns to the queue for new
  annotators, with the reviewer's comment stored.
- correct: the reviewer's value becomes the final label (confidence 1, method "review").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from veracity.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.services._common import canonical_json, iso, now
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import label_key, validate_value
from veracity.services.projects import require_cleared, require_role
from veracity.storage import Database
from veracity.storage.models import (
    Annotation,
    AnnotatorSkill,
    Consensus,
    Item,
    Prediction,
    Project,
    Review,
    Task,
    User,
)

__all__ = [
    "REVIEW_ROLES",
    "list_label_issues",
    "refresh_skills",
    "resolve_label_issue",
    "review_queue",
    "review_task",
]

REVIEW_ROLES = ("reviewer", "manager")
VERDICTS = ("accept", "reject", "correct")


def _item_payload(session: Session, task: Task) -> dict[str, Any]:
    item = session.get(Item, task.item_id)
    assert item is not None
    cons = session.get(Consensus, task.id)
    anns = [
        {"id": aid, "annotator": name, "value": value, "origin": origin, "created_at": iso(created)}
        for aid, name, value, origin, created in session.execute(
            select(Annotation.id, User.name, Annotation.value, Annotation.origin, Annotation.created_at)
            .outerjoin(User, User.id == Annotation.user_id)
            .where(Annotation.task_id == task.id, Annotation.status == "active")
            .order_by(Annotation.id)
        )
    ]
    pred = session.execute(
        select(Prediction.value, Prediction.probabilities, Prediction.model_name, Prediction.model_version)
        .where(Prediction.item_id == item.id)
        .order_by(Prediction.id.desc())
        .limit(1)
    ).first()
    return {
        "task_id": task.id,
        "status": task.status,
        "item": {"id": item.id, "external_id": item.external_id, "data": item.data},
        "annotations": anns,
        "consensus": None if cons is None else {"label": cons.label, "confidence": cons.confidence,
                                                "method": cons.method, "n_labels": cons.n_labels},
        "prediction": None if pred is None else {"value": pred[0], "probabilities": pred[1], "model": pred[2],
                                                 "model_version": pred[3]},
        "flagged": task.flagged,
        "issue_score": task.issue_score,
        "suggested": task.suggested,
    }


def _review_filter(project: Project) -> Any:
    threshold = float((project.settings or {}).get("review_below", 1.0))
    disagreed = exists().where(Consensus.task_id == Task.id, Consensus.confidence < threshold)
    return or_(Task.status == "review", and_(Task.status == "complete", disagreed))


def review_queue(db: Database, actor: Actor, project_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """Tasks waiting for review that the actor did not label themselves, oldest first."""
    with db.transaction(write=False) as s:
        project, _ = require_role(s, actor, project_id, REVIEW_ROLES)
        own = exists().where(Annotation.task_id == Task.id, Annotation.user_id == actor.user_id)
        tasks = s.execute(
            select(Task)
            .join(Item, Item.id == Task.item_id)
            .where(Task.project_id == project_id, _review_filter(project), ~own, Task.is_gold.is_(False),
                   Item.sensitivity <= actor.clearance)
            .order_by(Task.id)
            .limit(max(1, min(limit, 500)))
        ).scalars()
        return [_item_payload(s, t) for t in tasks]


def _set_consensus(session: Session, project: Project, task: Task, value: Any, method: str) -> None:
    cons = session.get(Consensus, task.id)
    if cons is None:
        cons = Consensus(task_id=task.id, project_id=project.id, item_id=task.item_id, method=method)
        session.add(cons)
    n = session.execute(
        select(func.count()).where(Annotation.task_id == task.id, Annotation.status == "active")
    ).scalar_one()
    cons.label, cons.label_key, cons.confidence = value, label_key(project.label_schema, value), 1.0
    cons.method, cons.n_labels, cons.updated_at = method, int(n), now()


def review_task(
    db: Database,
    actor: Actor,
    task_id: int,
    verdict: str,
    *,
    value: Any = None,
    comment: str = "",
) -> dict[str, Any]:
    """Record a reviewer's verdict on a task (see the module docstring)."""
    if verdict not in VERDICTS:
        raise InvalidInputError(f"verdict: expected one of {', '.join(VERDICTS)}, got {verdict!r}")
    with db.transaction() as s:
        task = s.get(Task, task_id)
        if task is None:
            raise NotFoundError(f"task {task_id} not found")
        require_cleared(s, actor, task.item_id, f"task {task_id} not found")
        project, _ = require_role(s, actor, task.project_id, REVIEW_ROLES)
        labelled = s.execute(
            select(Annotation.id).where(Annotation.task_id == task_id, Annotation.user_id == actor.user_id,
                                        Annotation.origin == "human").limit(1)
        ).first()
        if labelled is not None:
            raise PermissionDeniedError("no self-review: you labelled this task")
        if task.status == "reviewed":
            raise ConflictError(f"task {task_id} was already reviewed")
        review = Review(task_id=task_id, reviewer_id=actor.user_id, verdict=verdict, comment=comment)
        if verdict == "accept":
            cons = s.get(Consensus, task_id)
            if cons is None or cons.label is None:
                raise ConflictError(f"task {task_id} has no consensus label to accept; correct it instead")
            review.value = cons.label
            task.status = "reviewed"
        elif verdict == "correct":
            if value is None:
                raise InvalidInputError("value: a correction needs the right label value")
            item = s.get(Item, task.item_id)
            assert item is not None
            validate_value(project.label_schema, value, item=item.data, where="value")
            review.value = value
            s.add(Annotation(task_id=task_id, project_id=project.id, user_id=actor.user_id, value=value,
                             schema_version=project.schema_version, origin="review",
                             source=f"review by {actor.name}"))
            s.flush()
            _set_consensus(s, project, task, value, "review")
            task.status = "reviewed"
        else:  # reject: labels set aside, task back to the queue for other annotators
            rejected = s.execute(
                update(Annotation)
                .where(Annotation.task_id == task_id, Annotation.status == "active", Annotation.origin == "human")
                .values(status="rejected")
            ).rowcount
            task.n_annotations = max(0, task.n_annotations - rejected)
            task.n_assigned = max(0, task.n_assigned - rejected)
            task.status, task.completed_at, task.priority = "open", None, 0.0
            task.flagged = False
            cons = s.get(Consensus, task_id)
            if cons is not None:
                cons.label = cons.label_key = cons.confidence = None
                cons.n_labels = 0
        if task.flagged:
            task.flagged = False
            task.priority += 2.0  # no longer suspect: see services.quality.queue_priority
        s.add(review)
        s.flush()
        refresh_skills(s, project)
        append_event(s, actor=actor.name, action=f"review.{verdict}", object_type="task", object_id=task_id,
                     payload={"value": review.value, "comment": comment})
        return {"task_id": task_id, "verdict": verdict, "value": review.value, "status": task.status}


def refresh_skills(session: Session, project: Project) -> None:
    """Recount each annotator's verified accuracy in a project from gold tasks and reviews.

    A label counts as verified when its task has a gold value or a reviewer's accept/correct
    verdict; accuracy is the share of verified labels that match. Labels on other tasks count
    towards ``n_answers`` only. (The full model of ``veracity.quality`` refits skills from all
    labels; see ``services.quality``.)
    """
    verified: dict[int, str] = {}
    for tid, gold in session.execute(
        select(Task.id, Task.gold_value).where(Task.project_id == project.id, Task.is_gold.is_(True))
    ):
        verified[tid] = canonical_json(gold)
    for tid, value in session.execute(
        select(Review.task_id, Review.value)
        .join(Task, Task.id == Review.task_id)
        .where(Task.project_id == project.id, Review.verdict.in_(("accept", "correct")))
        .order_by(Review.id)
    ):
        verified[tid] = canonical_json(value)
    stats: dict[int, list[int]] = {}
    for uid, tid, value in session.execute(
        select(Annotation.user_id, Annotation.task_id, Annotation.value).where(
            Annotation.project_id == project.id, Annotation.origin == "human", Annotation.user_id.is_not(None)
        )
    ):
        st = stats.setdefault(uid, [0, 0, 0])
        st[0] += 1
        if tid in verified:
            st[1] += 1
            st[2] += int(canonical_json(value) == verified[tid])
    for uid, (n, n_ver, n_ok) in stats.items():
        row = session.get(AnnotatorSkill, (project.id, uid))
        if row is None:
            row = AnnotatorSkill(project_id=project.id, user_id=uid)
            session.add(row)
        row.n_answers, row.n_gold, row.n_gold_correct = n, n_ver, n_ok
        if n_ver:
            row.accuracy = n_ok / n_ver
        row.updated_at = now()


# --------------------------------------------------------------------------- suspect items
def list_label_issues(db: Database, actor: Actor, project_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
    """Flagged (suspect) tasks, most suspect first: item, given label, suggested label, score."""
    with db.transaction(write=False) as s:
        require_role(s, actor, project_id, REVIEW_ROLES)
        tasks = s.execute(
            select(Task)
            .join(Item, Item.id == Task.item_id)
            .where(Task.project_id == project_id, Task.flagged.is_(True), Item.sensitivity <= actor.clearance)
            .order_by(Task.issue_score.asc().nulls_last(), Task.id)
            .limit(max(1, min(limit, 1000)))
        ).scalars()
        out = []
        for t in tasks:
            payload = _item_payload(s, t)
            payload["given"] = None if payload["consensus"] is None else payload["consensus"]["label"]
            out.append(payload)
        return out


def resolve_label_issue(
    db: Database, actor: Actor, task_id: int, action: str, *, value: Any = None
) -> dict[str, Any]:
    """Keep the given label of a suspect item, or fix it (to ``value``, default the suggestion)."""
    if action not in ("keep", "fix"):
        raise InvalidInputError(f"action: expected 'keep' or 'fix', got {action!r}")
    with db.transaction(write=False) as s:
        task = s.get(Task, task_id)
        if task is None:
            raise NotFoundError(f"task {task_id} not found")
        require_cleared(s, actor, task.item_id, f"task {task_id} not found")
        require_role(s, actor, task.project_id, REVIEW_ROLES)
        if not task.flagged:
            raise ConflictError(f"task {task_id} is not flagged as suspect")
        suggested = task.suggested
    if action == "fix":
        return review_task(db, actor, task_id, "correct", value=suggested if value is None else value,
                           comment="label issue fixed")
    with db.transaction() as s:
        task = s.get(Task, task_id)
        assert task is not None
        task.flagged = False
        task.priority += 2.0  # no longer suspect: see services.quality.queue_priority
        cons = s.get(Consensus, task_id)
        s.add(Review(task_id=task_id, reviewer_id=actor.user_id, verdict="keep",
                     value=None if cons is None else cons.label, comment="label issue: kept the given label"))
        append_event(s, actor=actor.name, action="label_issue.keep", object_type="task", object_id=task_id)
    return {"task_id": task_id, "verdict": "keep", "status": "kept"}

