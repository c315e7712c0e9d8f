"""YOLO txt labels (boxes ``class cx cy w h`` and segments ``class x1 y1 x2 y2 ...``, normalised)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from veracity._text import not_utf8
from veracity.errors import InvalidInputError
from veracity.ingest._coco import shape_annotations
from veracity.ingest._common import ReadOptions, fail, shape_problem
from veracity.ingest._images import ImageExporter, image_size, iter_image_files
from veracity.ingest._safety import check_size, read_image, resolve_inside
from veracity.ingest.records import SourceRecord, make_annotation
from veracity.types import Record

__all__ = ["class_names", "read_yolo", "write_yolo"]


def _parse_names_yaml(text: str, where: str) -> list[str]:
    """The ``names`` of a YOLO ``data.yaml``: an inline list, a block list or an index mapping."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:\s*(.*)$", line)
        if not m:
            continue
        inline = m.group(1).split("#")[0].strip()
        if inline.startswith("["):
            return [_unquote(v) for v in inline.strip("[]").split(",") if v.strip()]
        if inline:
            break
        block: dict[int, str] = {}
        items: list[str] = []
        for sub in lines[i + 1 :]:
            if not sub.strip() or sub.lstrip().startswith("#"):
                continue
            if not sub[:1].isspace():
                break
            s = sub.strip()
            if s.startswith("- "):
                items.append(_unquote(s[2:]))
            elif ":" in s:
                key, _, value = s.partition(":")
                if not key.strip().isdigit():
                    raise InvalidInputError(f"{where}: 'names' key {key.strip()!r} is not a class index")
                block[int(key.strip())] = _unquote(value)
        if items:
            return items
        if block:
            return [block[k] for k in sorted(block)]
    raise InvalidInputError(f"{where}: no 'names' list found")


def _unquote(value: str) -> str:
    return value.split(" #")[0].strip().strip("'\"")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(not_utf8(path, exc)) from None


def class_names(root: Path) -> list[str]:
    """Class names from ``classes.txt``, ``obj.names`` or ``data.yaml`` in ``root``."""
    for name in ("classes.txt", "obj.names"):
        f = root / name
        if f.is_file():
            return [line.strip() for line in _read_text(f).splitlines() if line.strip()]
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        f = root / name
        if f.is_file():
            return _parse_names_yaml(_read_text(f), str(f))
    raise InvalidInputError(f"{root}: no class names: expected classes.txt, obj.names or data.yaml")


def _label_file(root: Path, image: Path) -> Path | None:
    rel = image.relative_to(root)
    parts = list(rel.parts)
    candidates = []
    if "images" in parts:
        idx = len(parts) - 1 - parts[::-1].index("images")
        candidates.append(root.joinpath(*parts[:idx], "labels", *parts[idx + 1 :]).with_suffix(".txt"))
    candidates.append(image.with_suffix(".txt"))
    for c in candidates:
        if c.is_file():
            return resolve_inside(root, c, where=str(image))
    return None


#: Normalised coordinates may stray this far past 0..1 (rounding in the tool that wrote them).
_SLACK = 1e-3


def _r(v: float) -> float | int:
    v = round(v, 6)
    return int(v) if v.is_integer() else v


def read_yolo(root: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """Every image under ``root`` with its label file (``labels/`` mirroring ``images/``, or beside it).

    Normalised coordinates are turned into pixels with the image size read by Pillow. An image
    without a label file has no annotations (YOLO's background images).
    """
    names = class_names(root)
    source = str(root)
    buf: list[SourceRecord] = []
    for row, image in enumerate(iter_image_files(root), start=1):
        where = f"{source}: row {row} ({image.name})"
        image = resolve_inside(root, image, where=where)
        try:
            info = read_image(image, opts.max_bytes, where=where)
        except InvalidInputError as exc:
            opts.bad(source, row, exc.message)
            continue
        label_file = _label_file(root, image)
        annotations: list[Record] = []
        if label_file is not None:
            check_size(label_file, opts.max_bytes)
            boxes, polygons, ok = _read_label_file(label_file, names, info.width, info.height, opts)
            if not ok:
                continue
            origin = f"yolo:{label_file.relative_to(root).as_posix()}"
            if boxes:
                annotations.append(make_annotation(boxes, origin=origin, kind="boxes"))
            if polygons:
                annotations.append(make_annotation(polygons, origin=origin, kind="polygons"))
        buf.append(
            SourceRecord.from_data(
                {"image": str(image)},
                source=source,
                row=row,
                external_id=image.relative_to(root.resolve()).with_suffix("").as_posix(),
                annotations=annotations,
                meta={"width": info.width, "height": info.height},
                digest=info.sha256,
            )
        )
        if len(buf) >= opts.chunk_size:
            yield buf
            buf = []
    if buf:
        yield buf


def _read_label_file(
    path: Path, names: list[str], width: int, height: int, opts: ReadOptions
) -> tuple[list[Record], list[Record], bool]:
    boxes: list[Record] = []
    polygons: list[Record] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        lineno = exc.object[: exc.start].count(b"\n") + 1
        opts.bad(str(path), lineno, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return [], [], False
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(parts[0])
            coords = [float(p) for p in parts[1:]]
        except ValueError:
            opts.bad(str(path), lineno, f"expected 'class x y ...' numbers, got {line.strip()!r}", line)
            return [], [], False
        if not 0 <= cls < len(names):
            opts.bad(str(path), lineno, f"class {cls} out of range: {len(names)} class names known", line)
            return [], [], False
        outside = next((v for v in coords if not -_SLACK <= v <= 1 + _SLACK), None)
        if outside is not None:  # also NaN and infinity
            opts.bad(str(path), lineno, f"coordinate {outside} is outside the normalised range 0..1", line)
            return [], [], False
        if len(coords) == 4:
            cx, cy, w, h = coords
            x, y = _r((cx - w / 2) * width), _r((cy - h / 2) * height)
            box = {"x": x, "y": y, "w": _r(w * width), "h": _r(h * height)}
            problem = shape_problem(box, width, height)
            if problem is not None:  # a centre inside the image with a size that reaches past it
                opts.bad(str(path), lineno, problem, line)
                return [], [], False
            boxes.append({**box, "label": names[cls]})
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            pts = [[_r(coords[i] * width), _r(coords[i + 1] * height)] for i in range(0, len(coords), 2)]
            polygons.append({"points": pts, "label": names[cls]})
        else:
            opts.bad(str(path), lineno, f"expected 4 box or >= 6 polygon coordinates, got {len(coords)}", line)
            return [], [], False
    return boxes, polygons, True


def _f(v: float) -> str:
    return format(v, ".12g")


def write_yolo(
    chunks: Iterable[list[SourceRecord]],
    folder: Path,
    *,
    labels: Sequence[str] | None = None,
    copy_images: bool = True,
) -> int:
    """Write ``images/``, ``labels/`` (one txt per image), ``classes.txt`` and ``data.yaml``."""
    if folder.exists() and not folder.is_dir():
        fail(str(folder), None, "YOLO export needs a folder")
    if not copy_images:
        raise InvalidInputError("YOLO export copies the images: its label files must sit beside them")
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    exporter = ImageExporter(folder / "images", folder, copy=True)
    names: dict[str, int] = {name: i for i, name in enumerate(labels or [])}
    n = 0
    for chunk in chunks:
        for rec in chunk:
            n += 1
            dest, _ = exporter.place(rec)
            width, height = image_size(rec)
            boxes, polygons = shape_annotations(rec)
            lines = []
            for b in boxes:
                cls = names.setdefault(b["label"], len(names))
                cx, cy = (b["x"] + b["w"] / 2) / width, (b["y"] + b["h"] / 2) / height
                lines.append(f"{cls} {_f(cx)} {_f(cy)} {_f(b['w'] / width)} {_f(b['h'] / height)}")
            for p in polygons:
                cls = names.setdefault(p["label"], len(names))
                coords = " ".join(f"{_f(x / width)} {_f(y / height)}" for x, y in p["points"])
                lines.append(f"{cls} {coords}")
            (folder / "labels" / dest.with_suffix(".txt").name).write_text(
                "".join(line + "\n" for line in lines), encoding="utf-8"
            )
    ordered = sorted(names, key=names.__getitem__)
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in ordered), encoding="utf-8")
    yaml_names = "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(ordered))
    (folder / "data.yaml").write_text(
        f"path: .\ntrain: images\nval: images\nnc: {len(ordered)}\nnames:\n{yaml_names}", encoding="utf-8"
    )
    return n
