"""COCO detection and segmentation JSON: boxes ``[x, y, w, h]`` and polygon segmentations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from veracity.errors import InvalidInputError
from veracity.ingest._common import ReadOptions, fail, shape_problem, spill_database
from veracity.ingest._images import ImageExporter, image_size
from veracity.ingest._jsonstream import iter_json_object_file
from veracity.ingest._safety import read_image, resolve_inside
from veracity.ingest.records import SourceRecord, make_annotation
from veracity.types import Record

__all__ = ["read_coco", "shape_annotations", "write_coco"]


def _num(v: Any) -> float | int:
    if type(v) not in (int, float):  # float() would take "12" or True as a coordinate
        raise ValueError(f"coordinate {v!r} is not a number")
    v = round(float(v), 6)
    return int(v) if v.is_integer() else v


def _locate(root: Path, file_name: str, where: str) -> Path:
    first = resolve_inside(root, file_name, where=where)
    if first.is_file():
        return first
    second = resolve_inside(root, Path("images") / file_name, where=where)
    return second if second.is_file() else first


_STREAMED = frozenset({"images", "annotations"})
_NOT_COCO = "not a COCO file: expected an object with an 'images' list"


def read_coco(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """One record per COCO image, its boxes and polygons as ``boxes`` / ``polygons`` annotations.

    Image ``file_name`` paths resolve against ``image_root`` (default: the JSON file's folder, then
    its ``images/`` subfolder) and may not leave it. Annotations whose segmentation is a polygon
    list become polygons; the others (no segmentation, or RLE masks) become boxes.

    Memory stays bounded whatever the file size: the file is read twice, element by element
    (``ingest._jsonstream``). The first pass keeps the categories and the image ids and writes the
    annotations to a temporary SQLite file indexed by image id (they may come before or after
    the images); every annotation is checked before any record is yielded. The second pass
    yields the images with their annotations looked up there.
    """
    source = str(path)
    categories_doc: Any = None
    image_keys: set[str] = set()
    seen_images = False
    ann_table = "CREATE TABLE ann (idx INTEGER PRIMARY KEY, image_key TEXT, body TEXT)"
    with spill_database("veracity-coco-", ann_table) as spill:
        pending: list[tuple[int, str | None, str]] = []
        members = iter_json_object_file(path, opts.max_bytes, streamed=_STREAMED, not_object=_NOT_COCO)
        for key, index, value in members:
            if key == "images":
                if index is None:
                    if not isinstance(value, list):
                        fail(source, None, _NOT_COCO)
                    for img in value:
                        if isinstance(img, dict):
                            _add_image_key(image_keys, img, source)
                elif index and isinstance(value, dict):
                    _add_image_key(image_keys, value, source)
                seen_images = True
            elif key == "annotations":
                if index is None and value is not None and not isinstance(value, list):
                    fail(source, None, f"field 'annotations' must be a list, got {type(value).__name__}")
                elements = enumerate(value or [], start=1) if index is None else [(index, value)] if index else []
                for i, ann in elements:
                    image = _key(ann["image_id"]) if isinstance(ann, dict) and "image_id" in ann else None
                    pending.append((i, image, json.dumps(ann)))
                if len(pending) >= 10_000:
                    spill.executemany("INSERT INTO ann VALUES (?, ?, ?)", pending)
                    pending.clear()
            elif key == "categories" and index is None:
                categories_doc = value
        spill.executemany("INSERT INTO ann VALUES (?, ?, ?)", pending)
        del pending
        if not seen_images:
            fail(source, None, _NOT_COCO)
        categories = _categories(categories_doc, source)
        _check_annotations(spill, image_keys, categories, source)
        spill.execute("CREATE INDEX ann_image ON ann (image_key, idx)")
        del image_keys
        yield from _coco_records(path, opts, spill, categories)


def _key(image_id: Any) -> str:
    return json.dumps(image_id)


def _valid_id(value: Any) -> bool:
    return type(value) in (int, str)


def _add_image_key(image_keys: set[str], img: Record, source: str) -> None:
    """Note an image id; two images with one id would share (and duplicate) their annotations."""
    if not _valid_id(img.get("id")):
        return  # the second pass reports the image as a bad row
    key = _key(img["id"])
    if key in image_keys:
        fail(source, None, f"duplicate image id {img['id']!r}")
    image_keys.add(key)


def _categories(doc: Any, source: str) -> dict[Any, str]:
    if doc is not None and not isinstance(doc, list):
        fail(source, None, f"field 'categories' must be a list, got {type(doc).__name__}")
    categories: dict[Any, str] = {}
    for i, cat in enumerate(doc or [], start=1):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            fail(source, None, f"category {i}: missing field 'id' or 'name'")
        if not _valid_id(cat["id"]):
            fail(source, None, f"category {i}: field 'id' must be an integer or string, got {cat['id']!r}")
        if cat["id"] in categories:
            fail(source, None, f"category {i}: duplicate category id {cat['id']!r}")
        categories[cat["id"]] = cat["name"]
    return categories


def _check_annotations(
    spill: sqlite3.Connection, image_keys: set[str], categories: dict[Any, str], source: str
) -> None:
    """Every annotation is an object naming a known image and category (the first bad one is named)."""
    ann_ids: set[Any] = set()
    for i, image, body in spill.execute("SELECT idx, image_key, body FROM ann ORDER BY idx"):
        ann = json.loads(body)
        if not isinstance(ann, dict):
            fail(source, None, f"annotation {i}: expected an object")
        ann_id = ann.get("id")
        if _valid_id(ann_id):
            if ann_id in ann_ids:
                fail(source, None, f"annotation {i}: duplicate annotation id {ann_id!r}")
            ann_ids.add(ann_id)
        for key in ("image_id", "category_id"):
            if key not in ann:
                fail(source, None, f"annotation {i} (id {ann.get('id')}): missing field {key!r}")
        if image not in image_keys:
            fail(source, None, f"annotation {i} (id {ann.get('id')}): unknown image_id {ann['image_id']!r}")
        if not _valid_id(ann["category_id"]) or ann["category_id"] not in categories:
            fail(source, None, f"annotation {i} (id {ann.get('id')}): unknown category_id {ann['category_id']!r}")


def _coco_records(
    path: Path, opts: ReadOptions, spill: sqlite3.Connection, categories: dict[Any, str]
) -> Iterator[list[SourceRecord]]:
    source = str(path)
    root = opts.image_root or path.parent
    buf: list[SourceRecord] = []
    for key, row, img in iter_json_object_file(path, opts.max_bytes, streamed=_STREAMED, not_object=_NOT_COCO):
        if key != "images" or row == 0:
            continue
        if row is None:  # checked to be a list by the first pass
            images: Iterable[tuple[int, Any]] = enumerate(img, start=1)
        else:
            images = [(row, img)]
        for n, image_doc in images:
            rec = _coco_record(image_doc, n, source, root, opts, spill, categories)
            if rec is not None:
                buf.append(rec)
                if len(buf) >= opts.chunk_size:
                    yield buf
                    buf = []
    if buf:
        yield buf


def _coco_record(
    img: Any,
    row: int,
    source: str,
    root: Path,
    opts: ReadOptions,
    spill: sqlite3.Connection,
    categories: dict[Any, str],
) -> SourceRecord | None:
    if not isinstance(img, dict) or not isinstance(img.get("file_name"), str) or "id" not in img:
        opts.bad(source, row, "image entry needs 'id' and 'file_name'")
        return None
    if not _valid_id(img["id"]):
        opts.bad(source, row, f"image id must be an integer or string, got {img['id']!r}")
        return None
    where = f"{source}: image {row} (id {img['id']})"
    image = _locate(root, img["file_name"], where)
    try:
        info = read_image(image, opts.max_bytes, where=where)
    except InvalidInputError as exc:
        opts.bad(source, row, exc.message)
        return None
    declared = (img.get("width"), img.get("height"))
    if declared != (None, None) and declared != (info.width, info.height):
        opts.bad(
            source,
            row,
            f"image id {img['id']!r} declares size {declared[0]}x{declared[1]} "
            f"but {image.name} is {info.width}x{info.height}",
        )
        return None
    anns = [
        json.loads(body)
        for (body,) in spill.execute("SELECT body FROM ann WHERE image_key = ? ORDER BY idx", (_key(img["id"]),))
    ]
    try:
        annotations = _coco_annotations(anns, categories, info.width, info.height)
    except (KeyError, TypeError, ValueError) as exc:
        opts.bad(source, row, f"malformed annotation of image id {img['id']}: {exc}")
        return None
    return SourceRecord.from_data(
        {"image": str(image)},
        source=source,
        row=row,
        external_id=img["id"],
        annotations=annotations,
        meta={"width": info.width, "height": info.height, "file_name": img["file_name"]},
        digest=info.sha256,
    )


def _coco_annotations(anns: list[Record], categories: dict[Any, str], width: int, height: int) -> list[Record]:
    """The boxes and polygons of one image; a ValueError names the first annotation that is not a
    shape inside the ``width`` x ``height`` image."""
    boxes: list[Record] = []
    polygons: list[Record] = []
    box_ids: list[str] = []
    poly_ids: list[str] = []
    for ann in anns:
        label = categories[ann["category_id"]]
        seg = ann.get("segmentation")
        if isinstance(seg, list) and seg and all(isinstance(p, list) for p in seg):
            for ring in seg:
                if len(ring) < 6 or len(ring) % 2:
                    raise ValueError(f"polygon of annotation {ann.get('id')} has {len(ring)} coordinates")
                pts = [[_num(ring[j]), _num(ring[j + 1])] for j in range(0, len(ring), 2)]
                _check_shape({"points": pts}, ann, width, height)
                polygons.append({"points": pts, "label": label})
            poly_ids.append(str(ann.get("id")))
        else:
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise ValueError(f"annotation {ann.get('id')}: bbox must be a list [x, y, w, h], got {bbox!r}")
            box = {"x": _num(bbox[0]), "y": _num(bbox[1]), "w": _num(bbox[2]), "h": _num(bbox[3])}
            _check_shape(box, ann, width, height)
            boxes.append({**box, "label": label})
            box_ids.append(str(ann.get("id")))
    out = []
    if boxes:
        out.append(make_annotation(boxes, origin=f"coco:annotations {','.join(box_ids)}", kind="boxes"))
    if polygons:
        out.append(make_annotation(polygons, origin=f"coco:annotations {','.join(poly_ids)}", kind="polygons"))
    return out


def _check_shape(shape: Record, ann: Record, width: int, height: int) -> None:
    problem = shape_problem(shape, width, height)
    if problem is not None:
        raise ValueError(f"annotation {ann.get('id')}: {problem}")


def shape_annotations(rec: SourceRecord) -> tuple[list[Record], list[Record]]:
    """All boxes and all polygons of a record's annotations."""
    boxes: list[Record] = []
    polygons: list[Record] = []
    for ann in rec.annotations:
        if ann.get("kind") == "boxes":
            boxes.extend(ann["value"])
        elif ann.get("kind") == "polygons":
            polygons.extend(ann["value"])
    return boxes, polygons


def _polygon_area(points: Sequence[Sequence[float]]) -> float:
    s = 0.0
    for i in range(len(points)):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % len(points)]
        s += x1 * y2 - x2 * y1
    return abs(s) / 2


def write_coco(
    chunks: Iterable[list[SourceRecord]],
    path: Path,
    *,
    labels: Sequence[str] | None = None,
    copy_images: bool = True,
    info: Record | None = None,
) -> int:
    """Write one COCO JSON file; images are copied to ``images/`` next to it unless ``copy_images=False``.

    The document is built in memory (COCO is one JSON object): about 200 bytes per box.
    """
    exporter = ImageExporter(path.parent / "images", path.parent, copy=copy_images)
    cat_ids: dict[str, int] = {name: i for i, name in enumerate(labels or [], start=1)}
    images: list[Record] = []
    annotations: list[Record] = []
    used_ids: set[int] = set()
    next_id = 1
    n = 0
    for chunk in chunks:
        for rec in chunk:
            n += 1
            placed, file_name = exporter.place(rec)
            width, height = image_size(rec, placed)
            ext = rec.external_id
            image_id = int(ext) if ext is not None and ext.isdigit() and int(ext) not in used_ids else None
            if image_id is None:
                while next_id in used_ids:
                    next_id += 1
                image_id = next_id
            used_ids.add(image_id)
            images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
            boxes, polygons = shape_annotations(rec)
            for box in boxes:
                cid = cat_ids.setdefault(box["label"], len(cat_ids) + 1)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": cid,
                        "bbox": [box["x"], box["y"], box["w"], box["h"]],
                        "area": box["w"] * box["h"],
                        "segmentation": [],
                        "iscrowd": 0,
                    }
                )
            for poly in polygons:
                cid = cat_ids.setdefault(poly["label"], len(cat_ids) + 1)
                xs = [p[0] for p in poly["points"]]
                ys = [p[1] for p in poly["points"]]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": cid,
                        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                        "area": _polygon_area(poly["points"]),
                        "segmentation": [[c for p in poly["points"] for c in p]],
                        "iscrowd": 0,
                    }
                )
    doc = {
        "info": info or {},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for name, i in cat_ids.items()],
    }
    with path.open("w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False)
    return n
