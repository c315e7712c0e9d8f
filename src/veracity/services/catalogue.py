"""The dataset catalogue as people browse it: datasets, their versions and import batches, their
items page by page, near-duplicate clusters with what to show of each member, and item images.

Reading rules are those of :mod:`veracity.services.ingest`: admins, managers, reviewers and
viewers may read the catalogue; annotators may not (they see items only through their tasks);
items above the caller's clearance are left out. Nothing here writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from veracity.errors import NotFoundError, PermissionDeniedError
from veracity.services import ingest as ingest_service
from veracity.services._common import iso
from veracity.services.actors import Actor
from veracity.storage import Database
from veracity.storage.models import Dataset, DatasetVersion, ImportBatch, Item, User

__all__ = [
    "DUPLICATE_LIMIT",
    "check_catalogue_reader",
    "dataset_detail",
    "duplicate_report",
    "item_image_path",
    "list_dataset_items",
    "list_datasets",
    "media_file",
]

DUPLICATE_LIMIT = 20_000  # items compared for near duplicates by default (the UI says so)
SNIPPET = 160


def check_catalogue_reader(actor: Actor | None) -> None:
    """Annotators cannot browse datasets (they see items through their tasks only)."""
    if actor is not None and actor.role == "annotator":
        raise PermissionDeniedError("annotators cannot browse datasets; ask a manager")


def _visible(actor: Actor | None) -> Any:
    return Item.sensitivity <= actor.clearance if actor is not None else True


def _batch_dict(b: ImportBatch, creator: str | None) -> dict[str, Any]:
    return {
        "id": b.id,
        "source": b.source,
        "format": b.format,
        "importer_version": b.importer_version,
        "created_by": creator,
        "created_at": iso(b.created_at),
        "rows": b.n_items + b.n_duplicates + b.n_errors,
        "imported": b.n_items,
        "duplicates": b.n_duplicates,
        "rejected": b.n_errors,
        "status": (b.report or {}).get("status"),
    }


def _batches(s: Session, dataset_ids: list[int], per_dataset: int) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in dataset_ids}
    if not dataset_ids:
        return out
    rows = s.execute(
        select(ImportBatch, User.name)
        .outerjoin(User, User.id == ImportBatch.created_by)
        .where(ImportBatch.dataset_id.in_(dataset_ids))
        .order_by(ImportBatch.dataset_id, ImportBatch.id.desc())
    )
    for b, creator in rows:
        if len(out[b.dataset_id]) < per_dataset:
            out[b.dataset_id].append(_batch_dict(b, creator))
    return out


def _versions(s: Session, dataset_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in dataset_ids}
    if not dataset_ids:
        return out
    for v in s.execute(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id.in_(dataset_ids))
        .order_by(DatasetVersion.dataset_id, DatasetVersion.number)
    ).scalars():
        out[v.dataset_id].append(
            {"number": v.number, "n_items": v.n_items, "note": v.note, "created_at": iso(v.created_at)}
        )
    return out


def _summaries(s: Session, actor: Actor | None, datasets: list[Dataset], per_dataset: int) -> list[dict[str, Any]]:
    ids = [d.id for d in datasets]
    counts: dict[int, int] = {}
    n_batches: dict[int, int] = {}
    if ids:
        counts = dict(
            s.execute(  # type: ignore[arg-type]
                select(Item.dataset_id, func.count())
                .where(Item.dataset_id.in_(ids), _visible(actor))
                .group_by(Item.dataset_id)
            ).all()
        )
        n_batches = dict(
            s.execute(  # type: ignore[arg-type]
                select(ImportBatch.dataset_id, func.count())
                .where(ImportBatch.dataset_id.in_(ids))
                .group_by(ImportBatch.dataset_id)
            ).all()
        )
    versions = _versions(s, ids)
    batches = _batches(s, ids, per_dataset)
    return [
        {
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "created_at": iso(d.created_at),
            "n_items": counts.get(d.id, 0),
            "n_batches": n_batches.get(d.id, 0),
            "duplicates_reported": sum(b["duplicates"] for b in batches[d.id]),
            "versions": versions[d.id],
            "batches": batches[d.id],
        }
        for d in datasets
    ]


def list_datasets(db: Database, actor: Actor | None = None, *, batches_per_dataset: int = 10) -> list[dict[str, Any]]:
    """Every dataset, by name: item count, versions and its latest import batches.

    ``duplicates_reported`` sums the exact duplicates of the batches listed (the latest
    ``batches_per_dataset``); ``n_batches`` counts all of them.
    """
    check_catalogue_reader(actor)
    with db.transaction(write=False) as s:
        datasets = list(s.execute(select(Dataset).order_by(Dataset.name)).scalars())
        return _summaries(s, actor, datasets, batches_per_dataset)


def dataset_detail(db: Database, actor: Actor | None, name: str, *, max_batches: int = 200) -> dict[str, Any]:
    """One dataset as :func:`list_datasets` shows it, with up to ``max_batches`` import batches."""
    check_catalogue_reader(actor)
    with db.transaction(write=False) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset {name!r} not found")
        return _summaries(s, actor, [ds], max_batches)[0]


def _snippet(data: dict[str, Any]) -> str:
    text = data.get("text")
    if isinstance(text, str):
        return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
    return ""


def list_dataset_items(
    db: Database, actor: Actor | None, name: str, *, after: int = 0, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a dataset's items in id order (keyset pagination on item id): (rows, next cursor)."""
    check_catalogue_reader(actor)
    limit = max(1, min(limit, 1000))
    with db.transaction(write=False) as s:
        ds_id = s.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none()
        if ds_id is None:
            raise NotFoundError(f"dataset {name!r} not found")
        rows = list(
            s.execute(
                select(Item.id, Item.external_id, Item.content_hash, Item.source, Item.source_row, Item.batch_id,
                       Item.data)
                .where(Item.dataset_id == ds_id, Item.id > after, _visible(actor))
                .order_by(Item.id)
                .limit(limit + 1)
            )
        )
    page = [
        {
            "item_id": iid,
            "external_id": ext,
            "content_hash": h,
            "source": src,
            "source_row": row,
            "batch_id": batch,
            "snippet": _snippet(data),
            "image": isinstance(data.get("image"), str),
        }
        for iid, ext, h, src, row, batch, data in rows[:limit]
    ]
    return page, (rows[limit - 1][0] if len(rows) > limit else None)


def duplicate_report(
    db: Database,
    actor: Actor | None,
    name: str,
    *,
    field: str | None = None,
    threshold: float = 0.8,
    max_distance: int = 6,
    limit: int = DUPLICATE_LIMIT,
    max_clusters: int = 200,
    max_exact: int = 200,
    media_root: Path | None = None,
) -> dict[str, Any]:
    """Near-duplicate clusters of a dataset (:func:`veracity.services.ingest.near_duplicates`) with a
    text snippet or image flag per member, and the exact duplicates its imports reported.

    Only the first ``limit`` items (in id order) are compared; ``compared`` and ``truncated`` say
    how many that was. The ``max_clusters`` largest clusters are returned; ``n_clusters`` counts
    all of them. Exact duplicates are listed as the import batches sampled them (up to
    ``max_exact``); ``exact_total`` counts them all.
    """
    check_catalogue_reader(actor)
    clusters = ingest_service.near_duplicates(
        db, name, field=field, threshold=threshold, max_distance=max_distance, limit=limit, actor=actor,
        media_root=media_root,
    )
    n_clusters = len(clusters)
    clusters = clusters[: max(0, max_clusters)]
    member_ids = [m["item_id"] for c in clusters for m in c["items"]]
    with db.transaction(write=False) as s:
        ds = s.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset {name!r} not found")
        n_items = s.execute(
            select(func.count()).select_from(Item).where(Item.dataset_id == ds.id, _visible(actor))
        ).scalar_one()
        data: dict[int, dict[str, Any]] = {}
        for start in range(0, len(member_ids), 500):
            part = member_ids[start : start + 500]
            data.update(s.execute(select(Item.id, Item.data).where(Item.id.in_(part))).all())  # type: ignore[arg-type]
        exact: list[dict[str, Any]] = []
        exact_total = 0
        for b in s.execute(
            select(ImportBatch).where(ImportBatch.dataset_id == ds.id).order_by(ImportBatch.id)
        ).scalars():
            exact_total += b.n_duplicates
            for d in (b.report or {}).get("duplicate_of", []):
                if len(exact) < max_exact:
                    exact.append({"batch_id": b.id, "source": d.get("source"), "row": d.get("row"),
                                  "duplicate_of": d.get("duplicate_of")})
    for c in clusters:
        for m in c["items"]:
            d = data.get(m["item_id"], {})
            m["snippet"] = _snippet(d)
            m["image"] = isinstance(d.get("image"), str)
    return {
        "dataset": name,
        "n_items": n_items,
        "compared": min(n_items, limit),
        "limit": limit,
        "truncated": n_items > limit,
        "threshold": threshold,
        "max_distance": max_distance,
        "n_clusters": n_clusters,
        "clusters": clusters,
        "exact": exact,
        "exact_total": exact_total,
    }


def item_image_path(db: Database, actor: Actor | None, item_id: int, *, media_root: Path) -> Path:
    """The local image file of an item, for display, when it is safe to serve.

    Served only when ``data["image"]`` names an existing file with an image suffix that lies (after
    resolving links) inside ``media_root``, or inside the folder its import batch read from when
    that batch's importer read the image itself (``services.ingest.IMAGE_FORMATS``). Any other path (one a
    JSONL or CSV row merely names, ``/etc/passwd``, a link out of the folder) answers NotFound.
    """
    check_catalogue_reader(actor)
    with db.transaction(write=False) as s:
        row = s.execute(
            select(Item.data, Item.sensitivity, ImportBatch.source, ImportBatch.format)
            .outerjoin(ImportBatch, ImportBatch.id == Item.batch_id)
            .where(Item.id == item_id)
        ).first()
    if row is None or (actor is not None and row[1] > actor.clearance):
        raise NotFoundError(f"item {item_id} not found")
    data, _, source, fmt = row
    value = data.get("image") if isinstance(data, dict) else None
    path = ingest_service.safe_local_image(value, source, fmt, media_root)
    if path is None:
        raise NotFoundError(f"item {item_id}: no image that can be served (none, or outside the import's folder)")
    return path


#: Item data fields whose value the screens load as an image (see ``static/label.js`` and ``image.js``).
MEDIA_FIELDS = ("image", "url", "src")


def media_file(db: Database, actor: Actor, rel_path: str, *, media_root: Path) -> Path:
    """The file ``/media/<rel_path>`` names in ``media_root`` (the server's ``data_dir/media``), for a
    signed-in ``actor``: the screens load item images from there.

    NotFound when the path leaves the folder (``..``, an absolute path, a link pointing out), is not
    a regular file, or is what an item marked above the actor's clearance shows (its ``image``,
    ``url`` or ``src`` names the file as ``/media/...`` or by its absolute path).
    """
    missing = NotFoundError(f"media file {rel_path!r} not found")
    root = media_root.resolve()
    try:
        path = (root / rel_path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise missing from None
    if not path.is_relative_to(root) or not path.is_file():
        raise missing
    names = sorted({"/media/" + rel_path, "/media/" + path.relative_to(root).as_posix(), str(path)})
    with db.transaction(write=False) as s:
        hidden = s.execute(
            select(Item.id)
            .where(Item.sensitivity > actor.clearance,
                   or_(*(Item.data[f].as_string().in_(names) for f in MEDIA_FIELDS)))
            .limit(1)
        ).first()
    if hidden is not None:
        raise missing
    return path
