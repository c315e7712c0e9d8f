"""The dataset catalogue screens: datasets, one dataset (versions, diff, batches, items), its
near-duplicate clusters, an item's lineage, item images and the ``/media`` files screens show.
Read-only; the rules (who may read, which items, which image files) live in
:mod:`veracity.services.catalogue` and ``services.ingest``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from veracity.errors import InvalidInputError
from veracity.services import catalogue as catalogue_service
from veracity.services import ingest as ingest_service
from veracity.web.deps import DB, MAX_ID, AppSettings, CurrentActor, Id
from veracity.web.routers.ui import render

router = APIRouter(include_in_schema=False)

ITEMS_PER_PAGE = 50
DIFF_LIMIT = 100


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, db: DB, actor: CurrentActor) -> Response:
    datasets = catalogue_service.list_datasets(db, actor, batches_per_dataset=5)
    return render(request, "datasets.html", {"actor": actor, "datasets": datasets})


@router.get("/datasets/{name:path}/duplicates", response_class=HTMLResponse)
def duplicates_page(
    request: Request,
    name: str,
    db: DB,
    actor: CurrentActor,
    settings: AppSettings,
    threshold: float = Query(0.8, gt=0.0, le=1.0),
    max_distance: int = Query(6, ge=0, le=32),
) -> Response:
    dataset = catalogue_service.dataset_detail(db, actor, name, max_batches=0)
    report = catalogue_service.duplicate_report(db, actor, name, threshold=threshold, max_distance=max_distance,
                                                media_root=settings.data_dir / "media")
    return render(request, "duplicates.html", {"actor": actor, "dataset": dataset, "report": report})


@router.get("/datasets/{name:path}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    name: str,
    db: DB,
    actor: CurrentActor,
    cursor: int = Query(0, ge=0, le=MAX_ID),
    v1: int | None = Query(None, ge=1, le=MAX_ID),
    v2: int | None = Query(None, ge=1, le=MAX_ID),
) -> Response:
    dataset = catalogue_service.dataset_detail(db, actor, name)
    items, nxt = catalogue_service.list_dataset_items(db, actor, name, after=cursor, limit=ITEMS_PER_PAGE)
    diff: Any = None
    if v1 is not None and v2 is not None:
        if v1 == v2:
            raise InvalidInputError("pick two different versions to compare")
        diff = ingest_service.diff_versions(db, name, v1, v2, limit=DIFF_LIMIT, actor=actor)
    return render(request, "dataset.html", {"actor": actor, "dataset": dataset, "items": items, "next_cursor": nxt,
                                            "cursor": cursor, "diff": diff, "diff_limit": DIFF_LIMIT})


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: Id, db: DB, actor: CurrentActor) -> Response:
    lineage = ingest_service.item_lineage(db, item_id, actor=actor)
    image = lineage["data"].get("image") if isinstance(lineage["data"], dict) else None
    return render(request, "item.html", {"actor": actor, "lineage": lineage, "has_image": isinstance(image, str)})


@router.get("/media/{path:path}")
def media_file(path: str, db: DB, actor: CurrentActor, settings: AppSettings) -> Response:
    """Files of ``data_dir/media`` (item images the screens show), for signed-in users within clearance."""
    found = catalogue_service.media_file(db, actor, path, media_root=settings.data_dir / "media")
    return FileResponse(found, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300",
                                        "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.get("/items/{item_id}/image")
def item_image(item_id: Id, db: DB, actor: CurrentActor, settings: AppSettings) -> Response:
    path = catalogue_service.item_image_path(db, actor, item_id, media_root=settings.data_dir / "media")
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"})
