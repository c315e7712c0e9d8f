"""Label Studio JSON export (a list of tasks with ``data``, ``annotations[].result`` and ``predictions``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from veracity.ingest._common import ReadOptions, fail, shape_problem
from veracity.ingest._images import image_size
from veracity.ingest._jsonstream import iter_json_array_file
from veracity.ingest.records import SourceRecord, make_annotation
from veracity.types import Record

__all__ = ["read_labelstudio", "write_labelstudio"]


def _r(v: float) -> float | int:
    v = round(float(v), 6)
    return int(v) if v.is_integer() else v


def _field(v: Record, key: str, rtype: Any) -> Any:
    if key not in v:
        raise ValueError(f"{rtype} result: field 'value.{key}' is missing")
    return v[key]


def _number(v: Record, key: str, rtype: Any) -> float:
    x = _field(v, key, rtype)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"{rtype} result: field 'value.{key}' must be a number, got {x!r}")
    return float(x)


def _texts(v: Record, key: str, rtype: Any) -> list[str]:
    """``v[key]`` as a list of strings (missing or null: empty)."""
    x = v.get(key) or []
    if not isinstance(x, list) or not all(isinstance(t, str) for t in x):
        raise ValueError(f"{rtype} result: field 'value.{key}' must be a list of strings, got {x!r}")
    return x


def _points(v: Record, key: str, rtype: Any) -> list[tuple[float, float]]:
    pts = _field(v, key, rtype)
    ok = isinstance(pts, list) and all(
        isinstance(p, (list, tuple))
        and len(p) == 2
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)
        for p in pts
    )
    if not ok:
        raise ValueError(f"{rtype} result: field 'value.{key}' must be a list of [x, y] number pairs, got {pts!r}")
    return [(float(x), float(y)) for x, y in pts]


def _result_values(result: Record) -> list[tuple[str, Any]]:
    """(kind, part of a value) pairs for one Label Studio result."""
    if not isinstance(result, dict):
        raise ValueError(f"result must be an object, got {type(result).__name__}")
    rtype = result.get("type")
    v = result.get("value") or {}
    if not isinstance(v, dict):
        raise ValueError(f"{rtype} result: field 'value' must be an object, got {type(v).__name__}")
    if rtype == "choices":
        choices = _texts(v, "choices", rtype)
        return [("classification", choices[0])] if len(choices) == 1 else [("multilabel", list(choices))]
    if rtype == "taxonomy":
        paths = v.get("taxonomy") or []
        if not isinstance(paths, list) or not all(
            isinstance(path, list) and all(isinstance(t, str) for t in path) for path in paths
        ):
            raise ValueError(
                f"taxonomy result: field 'value.taxonomy' must be a list of lists of strings, got {paths!r}"
            )
        return [("multilabel", ["/".join(path) for path in paths])]
    if rtype == "labels":
        start, end = _field(v, "start", rtype), _field(v, "end", rtype)
        return [("spans", {"start": start, "end": end, "label": lab}) for lab in _texts(v, "labels", rtype)]
    if rtype in ("rectanglelabels", "polygonlabels"):
        width, height = result.get("original_width"), result.get("original_height")
        if not width or not height:
            raise ValueError(f"{rtype} result without original_width/original_height")
        if type(width) is not int or type(height) is not int or width < 0 or height < 0:
            raise ValueError(f"{rtype} result: original_width/original_height must be positive integers")
        key = rtype
        if rtype == "rectanglelabels":
            box = {
                "x": _r(_number(v, "x", rtype) * width / 100),
                "y": _r(_number(v, "y", rtype) * height / 100),
                "w": _r(_number(v, "width", rtype) * width / 100),
                "h": _r(_number(v, "height", rtype) * height / 100),
            }
            _check_shape(box, width, height)
            return [("boxes", {**box, "label": lab}) for lab in _texts(v, key, rtype)]
        pts = [[_r(x * width / 100), _r(y * height / 100)] for x, y in _points(v, "points", rtype)]
        _check_shape({"points": pts}, width, height)
        return [("polygons", {"points": pts, "label": lab}) for lab in _texts(v, key, rtype)]
    if rtype == "textarea":
        return [("text", "\n".join(_texts(v, "text", rtype)))]
    if rtype == "rating":
        return [("rating", _field(v, "rating", rtype))]
    if rtype == "pairwise":
        return [("pairwise", v.get("selected"))]
    raise ValueError(f"unsupported result type {rtype!r}")


def _check_shape(shape: Record, width: int, height: int) -> None:
    problem = shape_problem(shape, width, height)
    if problem is not None:
        raise ValueError(problem)


def _annotator(ann: Record) -> str | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("username") or who.get("id")
    return None if who is None else str(who)


def _convert(ann: Record, origin: str, annotator: str | None) -> tuple[list[Record], Record]:
    grouped: dict[str, Any] = {}
    sizes: Record = {}
    results = ann.get("result") or []
    if not isinstance(results, list):
        raise ValueError(f"field 'result' must be a list, got {type(results).__name__}")
    for result in results:
        if isinstance(result, dict) and result.get("original_width"):
            sizes = {"width": result["original_width"], "height": result["original_height"]}
        for kind, part in _result_values(result):
            if kind in ("spans", "boxes", "polygons"):
                grouped.setdefault(kind, []).append(part)
            else:
                grouped[kind] = part
    anns = [make_annotation(value, origin=origin, annotator=annotator, kind=kind) for kind, value in grouped.items()]
    return anns, sizes


def read_labelstudio(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """One record per task; each completed annotation becomes one annotation per kind.

    Percent coordinates of rectangles and polygons are turned into pixels with ``original_width``
    and ``original_height``. Predictions are kept in ``meta["predictions"]`` as they were.
    """
    source = str(path)

    def one_task(doc: Any) -> list[Any]:
        if not isinstance(doc, dict):
            fail(source, None, "not a Label Studio export: expected a list of tasks")
        return [doc]

    # Streamed task by task (the export is one JSON array): memory holds a chunk, not the file.
    doc = iter_json_array_file(path, opts.max_bytes, not_array=one_task)
    buf: list[SourceRecord] = []
    first_row: dict[str, int] = {}  # task id -> row where it first appeared
    for row, task in enumerate(doc, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict) or not task["data"]:
            opts.bad(source, row, "missing field 'data'")
            continue
        annotations: list[Record] = []
        meta: Record = {}
        anns = task.get("annotations") or []
        if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
            opts.bad(source, row, f"task {task.get('id')}: field 'annotations' must be a list of objects")
            continue
        try:
            for ann in anns:
                if ann.get("was_cancelled"):
                    continue
                converted, sizes = _convert(ann, f"labelstudio:annotation {ann.get('id')}", _annotator(ann))
                annotations.extend(converted)
                meta.update(sizes)
        except (KeyError, TypeError, ValueError) as exc:
            opts.bad(source, row, f"annotation of task {task.get('id')}: {exc}")
            continue
        if task.get("predictions"):
            meta["predictions"] = task["predictions"]
        task_id = task.get("id")
        if task_id is not None and type(task_id) not in (int, str):
            opts.bad(source, row, f"task id must be an integer or string, got {task_id!r}")
            continue
        if task_id is not None:
            # one export lists each task once: a repeat (e.g. two exports pasted together) would
            # make two items answer to one id, and predictions for it would reach only one of them
            if str(task_id) in first_row:
                opts.bad(source, row, f"task id {task_id!r} repeats the task of row {first_row[str(task_id)]}")
                continue
            first_row[str(task_id)] = row
        try:
            rec = SourceRecord.from_data(
                dict(task["data"]),
                source=source,
                row=row,
                external_id=task.get("id"),
                annotations=annotations,
                meta=meta,
            )
        except ValueError as exc:  # NaN or infinity cannot be hashed as JSON
            opts.bad(source, row, f"task {task.get('id')}: data cannot be stored as JSON ({exc})")
            continue
        buf.append(rec)
        if len(buf) >= opts.chunk_size:
            yield buf
            buf = []
    if buf:
        yield buf


def _to_results(ann: Record, rec: SourceRecord, to_name: str) -> list[Record]:
    kind, value = ann.get("kind"), ann.get("value")
    base = {"from_name": "label", "to_name": to_name}
    if kind == "classification":
        return [{**base, "type": "choices", "value": {"choices": [value]}}]
    if kind == "multilabel":
        return [{**base, "type": "choices", "value": {"choices": list(value)}}]
    if kind == "spans":
        return [
            {**base, "type": "labels", "value": {"start": s["start"], "end": s["end"], "labels": [s["label"]]}}
            for s in value
        ]
    if kind in ("boxes", "polygons"):
        width, height = _size(rec)
        out = []
        for shape in value:
            size = {"original_width": width, "original_height": height}
            if kind == "boxes":
                v = {
                    "x": shape["x"] * 100 / width,
                    "y": shape["y"] * 100 / height,
                    "width": shape["w"] * 100 / width,
                    "height": shape["h"] * 100 / height,
                    "rectanglelabels": [shape["label"]],
                }
                out.append({**base, **size, "type": "rectanglelabels", "value": v})
            else:
                pts = [[x * 100 / width, y * 100 / height] for x, y in shape["points"]]
                v = {"points": pts, "polygonlabels": [shape["label"]]}
                out.append({**base, **size, "type": "polygonlabels", "value": v})
        return out
    if kind == "text":
        return [{**base, "type": "textarea", "value": {"text": [value]}}]
    if kind == "rating":
        return [{**base, "type": "rating", "value": {"rating": value}}]
    if kind == "pairwise":
        return [{**base, "type": "pairwise", "value": {"selected": value}}]
    return []


def _size(rec: SourceRecord) -> tuple[int, int]:
    if isinstance(rec.meta.get("width"), int) and isinstance(rec.meta.get("height"), int):
        return rec.meta["width"], rec.meta["height"]
    return image_size(rec)


def write_labelstudio(chunks: Iterable[list[SourceRecord]], path: Path) -> int:
    """Write a Label Studio import/export file: tasks with ``data`` and ``annotations``.

    Annotations that share an annotator and origin become one Label Studio annotation.
    """
    tasks: list[Record] = []
    n = 0
    for chunk in chunks:
        for rec in chunk:
            n += 1
            to_name = "image" if "image" in rec.data else next(iter(rec.data), "text")
            groups: dict[tuple[Any, Any], list[Record]] = {}
            for ann in rec.annotations:
                groups.setdefault((ann.get("annotator"), ann.get("origin")), []).extend(_to_results(ann, rec, to_name))
            ext = rec.external_id
            task: Record = {"id": int(ext) if ext is not None and ext.isdigit() else ext, "data": rec.data}
            task["annotations"] = [
                {"id": i, "completed_by": who, "result": results}
                for i, ((who, _origin), results) in enumerate(groups.items(), start=1)
            ]
            tasks.append(task)
    with path.open("w", encoding="utf-8") as fh:
        json.dump(tasks, fh, ensure_ascii=False)
    return n
