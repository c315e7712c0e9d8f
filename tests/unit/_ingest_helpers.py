"""Shared builders for the ingest unit tests (image folders, COCO files, record comparison)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from veracity.ingest import SourceRecord, read_source


def read_all(path: Path, fmt: str | None = None, **kwargs: Any) -> list[SourceRecord]:
    return [r for chunk in read_source(path, fmt, **kwargs) for r in chunk]


def annotations_key(rec: SourceRecord) -> list[tuple[Any, ...]]:
    return sorted((a["kind"], json.dumps(a["value"], sort_keys=True), a["annotator"] or "") for a in rec.annotations)


def text_key(rec: SourceRecord) -> tuple[Any, ...]:
    return (rec.external_id, rec.data, rec.content_hash, annotations_key(rec))


def image_key(rec: SourceRecord) -> tuple[Any, ...]:
    return (rec.content_hash, annotations_key(rec))


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A small PNG with random blocks (distinct per seed)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST).save(path)
    return path


def make_coco(folder: Path, n_images: int = 3) -> Path:
    """A COCO file with boxes and polygons over ``n_images`` generated images."""
    images, annotations = [], []
    for i in range(1, n_images + 1):
        make_image(folder / "images" / f"img{i}.png", seed=i)
        images.append({"id": i, "file_name": f"images/img{i}.png", "width": 64, "height": 48})
        annotations.append(
            {"id": 10 * i, "image_id": i, "category_id": 1 + i % 2, "bbox": [2, 3, 20, 10], "iscrowd": 0}
        )
        annotations.append(
            {
                "id": 10 * i + 1,
                "image_id": i,
                "category_id": 1,
                "bbox": [5, 5, 10, 10],
                "segmentation": [[5, 5, 15, 5, 15, 15, 5.5, 15]],
                "iscrowd": 0,
            }
        )
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    path = folder / "coco.json"
    path.write_text(json.dumps(doc))
    return path
