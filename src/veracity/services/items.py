"""Listing and filtering items of a project, and importing model predictions (pre-labels)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import String, cast, exists, insert, select

from veracity.errors import InvalidInputError
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import labels_of, validate_value
from veracity.services.projects import CONSENSUS_ROLES, require_role
from veracity.storage import Database
from veracity.storage.models import Annotation, Consensus, Item, Prediction, Task, User

__all__ = ["import_predictions", "list_items"]


def list_items(
    db: Database,
    actor: Actor,
    project_id: int,
    *,
    label: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    annotator: str | None = None,
    status: str | None = None,
    flagged: bool | None = None,
    text: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a project's items with their task state and consensus (keyset on task id).

    Filters: consensus ``label``, confidence range, items labelled by ``annotator``, task
    ``status`` (open, complete, review, reviewed), ``flagged``, and ``text`` contained in the
    item's data (case-insensitive).
    """
    limit = max(1, min(limit, 1000))
    with db.transaction(write=False) as s:
        require_role(s, actor, project_id, CONSENSUS_ROLES)
        cols = (Task.id, Task.status, Task.flagged, Task.n_annotations, Item.id, Item.external_id, Item.data,
                Consensus.label, Consensus.confidence)
        if label is not None:  # driven by ix_consensus_project_label, in task order (consensus.task_id)
            q = (
                select(*cols)
                .select_from(Consensus)
                .join(Task, Task.id == Consensus.task_id)
                .join(Item, Item.id == Task.item_id)
                .where(Consensus.project_id == project_id, Consensus.label_key == label, Consensus.task_id > after,
                       Item.sensitivity <= actor.clearance)
                .order_by(Consensus.task_id)
                .limit(limit + 1)
            )
        else:
            q = (
                select(*cols)
                .join(Item, Item.id == Task.item_id)
                .outerjoin(Consensus, Consensus.task_id == Task.id)
                .where(Task.project_id == project_id, Task.id > after, Item.sensitivity <= actor.clearance)
                .order_by(Task.id)
                .limit(limit + 1)
            )
        if min_confidence is not None:
            q = q.where(Consensus.confidence >= min_confidence)
        if max_confidence is not None:
            q = q.where(Consensus.confidence <= max_confidence)
        if status is not None:
            q = q.where(Task.status == status)
        if flagged is not None:
            q = q.where(Task.flagged.is_(flagged))
        if annotator is not None:
            q = q.where(
                exists().where(Annotation.task_id == Task.id, Annotation.status == "active",
                               Annotation.user_id == select(User.id).where(User.name == annotator).scalar_subquery())
            )
        if text:
            q = q.where(cast(Item.data, String).ilike(f"%{text}%"))
        rows = list(s.execute(q))
    page = [
        {"task_id": t, "status": st, "flagged": fl, "n_annotations": n, "item_id": i, "external_id": e,
         "data": d, "label": lab, "confidence": c}
        for t, st, fl, n, i, e, d, lab, c in rows[:limit]
    ]
    return page, (rows[limit - 1][0] if len(rows) > limit else None)


def _probabilities(raw: Any, classes: list[str], where: str) -> list[float] | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - set(classes))
        if unknown:
            raise InvalidInputError(f"{where}: unknown labels {unknown}; expected some of {classes}")
        raw = [raw.get(c, 0.0) for c in classes]
        names: list[Any] = classes
    else:
        names = list(range(len(classes)))
    if not isinstance(raw, list) or len(raw) != len(classes):
        raise InvalidInputError(f"{where}: expected {len(classes)} numbers (one per label)")
    probs: list[float] = []
    for name, x in zip(names, raw, strict=True):
        if x is None:
            raise InvalidInputError(f"{where}[{name!r}]: missing value")
        try:
            if isinstance(x, bool):
                raise TypeError(x)
            p = float(x)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where}[{name!r}]: expected a number, got {x!r}") from None
        if not math.isfinite(p):
            raise InvalidInputError(f"{where}[{name!r}]: expected a finite number, got {x!r}")
        if p < 0:
            raise InvalidInputError(f"{where}[{name!r}]: expected a non-negative number, got {x!r}")
        probs.append(p)
    total = math.fsum(probs)
    if abs(total - 1.0) > 1e-3:
        raise InvalidInputError(f"{where}: expected numbers summing to 1, got {total:.4f}")
    return probs


def import_predictions(
    db: Database,
    actor: Actor,
    project_id: int,
    records: Iterable[Mapping[str, Any]],
    *,
    model: str,
    model_version: str = "",
    record_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Store model outputs for a project's items: a pre-label ``value`` and/or per-label ``probabilities``.

    Each record names its item by ``item_id`` or ``external_id`` (alias ``id``; compared as text,
    so ``7`` finds the item ``"7"``). ``probabilities`` is a list in the schema's label order or a
    ``{label: p}`` object of finite, non-negative numbers summing to 1. With probabilities and no
    value, the pre-label is the most probable label. All-or-nothing: a bad record stores nothing.

    Error messages name a record ``index i`` and a field ``index i.probabilities``; pass
    ``record_names`` (one per record, e.g. ``"preds.csv: line 3"``) to name them so instead, a field
    then following after a comma (``"preds.csv: line 3, probabilities"``).
    """
    if not model:
        raise InvalidInputError("model: expected the model's name")
    records = list(records)
    if record_names is not None and len(record_names) != len(records):
        raise InvalidInputError(f"expected one record name per record, got {len(record_names)} and {len(records)}")

    def at(i: int, field: str | None = None) -> str:
        if record_names is None:
            return f"index {i}" if field is None else f"index {i}.{field}"
        return record_names[i] if field is None else f"{record_names[i]}, {field}"

    with db.transaction() as s:
        project, _ = require_role(s, actor, project_id, ("manager",))
        schema = project.label_schema
        classes = labels_of(schema)
        ext_map: dict[str, int] = {}
        shared: dict[str, set[int]] = {}  # external ids that name more than one item of the project
        for ext, iid in s.execute(
            select(Item.external_id, Item.id)
            .join(Task, Task.item_id == Item.id)
            .where(Task.project_id == project_id, Item.external_id.is_not(None))
        ):
            if ext_map.setdefault(ext, iid) != iid:
                shared.setdefault(ext, {ext_map[ext]}).add(iid)
        own = {iid for (iid,) in s.execute(select(Task.item_id).where(Task.project_id == project_id))}
        rows = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InvalidInputError(f"{at(i)}: expected an object, got {type(rec).__name__}")
            iid = rec.get("item_id")
            if iid is None:
                key = "external_id" if "external_id" in rec else "id"
                ext = rec.get(key)
                if isinstance(ext, bool) or not isinstance(ext, (str, int)):
                    if ext is None:
                        raise InvalidInputError(f"{at(i)}: expected 'item_id' or 'external_id'")
                    raise InvalidInputError(f"{at(i, key)}: expected text or an integer, got {ext!r}")
                iid = ext_map.get(str(ext))
                if iid is None:
                    raise InvalidInputError(f"{at(i, key)}: no item {str(ext)!r} in project {project_id}")
                if str(ext) in shared:  # the prediction would reach one of them, silently
                    ids = sorted(shared[str(ext)])
                    raise InvalidInputError(
                        f"{at(i, key)}: {len(ids)} items of project {project_id} have the external id {str(ext)!r} "
                        f"(item ids {', '.join(map(str, ids[:5]))}); name the item by item_id"
                    )
            elif isinstance(iid, bool) or not isinstance(iid, int):
                raise InvalidInputError(f"{at(i, 'item_id')}: expected an integer item id, got {iid!r}")
            elif iid not in own:
                raise InvalidInputError(f"{at(i, 'item_id')}: item {iid} is not in project {project_id}")
            probs = _probabilities(rec.get("probabilities"), classes, at(i, "probabilities"))
            value = rec.get("value")
            if value is None and probs is not None and schema["kind"] == "classification":
                value = classes[max(range(len(probs)), key=probs.__getitem__)]
            if value is not None:
                validate_value(schema, value, where=at(i, "value"))
            if value is None and probs is None:
                raise InvalidInputError(f"{at(i)}: expected 'value' or 'probabilities'")
            rows.append({"project_id": project_id, "item_id": iid, "model_name": model,
                         "model_version": model_version, "value": value, "probabilities": probs})
        if rows:
            s.execute(insert(Prediction), rows)
        append_event(s, actor=actor.name, action="predictions.import", object_type="project", object_id=project_id,
                     payload={"model": model, "model_version": model_version, "n": len(rows)})
    return {"imported": len(rows), "model": model, "model_version": model_version}
