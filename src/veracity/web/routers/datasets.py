"""/api/v1/datasets and /api/v1/items/{id}/lineage: the catalogue, read-only (services.catalogue)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from veracity.services import catalogue as catalogue_service
from veracity.services import ingest as ingest_service
from veracity.web.deps import DB, MAX_ID, AppSettings, CurrentActor, Id

router = APIRouter(prefix="/api/v1", tags=["datasets"])

_BATCH = {"id": 3, "source": "/data/reviews.jsonl", "format": "jsonl", "importer_version": "veracity-ingest 0.1.0",
          "created_by": "alice", "created_at": "2026-11-29T12:00:00+00:00", "rows": 1002, "imported": 1000,
          "duplicates": 2, "rejected": 0, "status": "ok"}
_DATASET = {"id": 1, "name": "reviews", "description": "", "created_at": "2026-11-29T12:00:00+00:00",
            "n_items": 1000, "n_batches": 1, "duplicates_reported": 2,
            "versions": [{"number": 1, "n_items": 1000, "note": "first cut",
                          "created_at": "2026-11-29T12:05:00+00:00"}],
            "batches": [_BATCH]}


def _example(value: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": value}}}}


@router.get("/datasets", summary="The catalogue: every dataset with item count, versions and latest import batches",
            responses=_example([_DATASET]))
def list_datasets(
    db: DB, actor: CurrentActor, batches: int = Query(10, ge=0, le=200, description="Latest batches per dataset.")
) -> list[dict[str, Any]]:
    return catalogue_service.list_datasets(db, actor, batches_per_dataset=batches)


@router.get("/datasets/{name:path}/items", summary="A dataset's items with provenance, keyset-paginated",
            responses=_example([{"item_id": 7, "external_id": "r7", "content_hash": "9f2c…", "source":
                                 "/data/reviews.jsonl", "source_row": 7, "batch_id": 3, "snippet": "Great kettle",
                                 "image": False}]))
def list_dataset_items(
    name: str,
    db: DB,
    actor: CurrentActor,
    response: Response,
    cursor: int = Query(0, ge=0, le=MAX_ID, description="Value of X-Next-Cursor from the previous page."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    rows, nxt = catalogue_service.list_dataset_items(db, actor, name, after=cursor, limit=limit)
    if nxt is not None:
        response.headers["X-Next-Cursor"] = str(nxt)
        response.headers["Link"] = f'<?cursor={nxt}&limit={limit}>; rel="next"'
    return rows


@router.get(
    "/datasets/{name:path}/duplicates",
    summary="Near-duplicate clusters (texts by MinHash/LSH, images by dHash) and the exact duplicates imports reported",
    responses=_example({"dataset": "reviews", "n_items": 1000, "compared": 1000, "limit": 20000, "truncated": False,
                        "threshold": 0.8, "max_distance": 6, "n_clusters": 1,
                        "clusters": [{"size": 2, "items": [
                            {"item_id": 4, "external_id": "r4", "snippet": "The kettle broke after a week.",
                             "image": False},
                            {"item_id": 9, "external_id": "r9", "snippet": "The kettle broke after a week!",
                             "image": False}]}],
                        "exact": [{"batch_id": 3, "source": "/data/reviews.jsonl", "row": 12,
                                   "duplicate_of": {"item_id": 5}}],
                        "exact_total": 2}),
)
def dataset_duplicates(
    name: str,
    db: DB,
    actor: CurrentActor,
    settings: AppSettings,
    field: str | None = Query(None, description="Data field to compare (default text, else image)."),
    threshold: float = Query(0.8, gt=0.0, le=1.0, description="Texts: Jaccard similarity of shingles."),
    max_distance: int = Query(6, ge=0, le=32, description="Images: dHash bits that may differ."),
    limit: int = Query(catalogue_service.DUPLICATE_LIMIT, ge=1, le=200_000,
                       description="Items compared at most, in id order."),
    clusters: int = Query(1000, ge=0, le=100_000, description="Largest clusters returned (n_clusters counts all)."),
) -> dict[str, Any]:
    return catalogue_service.duplicate_report(db, actor, name, field=field, threshold=threshold,
                                              max_distance=max_distance, limit=limit, max_clusters=clusters,
                                              media_root=settings.data_dir / "media")


@router.get("/datasets/{name:path}", summary="One dataset with its versions and import batches",
            responses=_example(_DATASET))
def get_dataset(name: str, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return catalogue_service.dataset_detail(db, actor, name)


@router.get(
    "/items/{item_id}/lineage",
    summary="An item's lineage: source, row, content hash, import batch, labels and who produced them, versions",
    responses=_example({"item_id": 7, "dataset": "reviews", "external_id": "r7", "data": {"text": "Great kettle"},
                        "content_hash": "9f2c…", "source": "/data/reviews.jsonl", "source_row": 7,
                        "created_at": "2026-11-29T12:00:00+00:00",
                        "import_batch": {"id": 3, "source": "/data/reviews.jsonl", "format": "jsonl",
                                         "importer_version": "veracity-ingest 0.1.0", "created_by": "alice",
                                         "created_at": "2026-11-29T12:00:00+00:00"},
                        "annotations": [], "source_labels": [{"kind": "label", "value": "positive",
                                                              "annotator": None, "origin": "import",
                                                              "status": "active", "import_batch": 3}],
                        "consensus": [], "versions": [{"version": 1, "label": "positive", "content_hash": "9f2c…"}]}),
)
def item_lineage(item_id: Id, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return ingest_service.item_lineage(db, item_id, actor=actor)
