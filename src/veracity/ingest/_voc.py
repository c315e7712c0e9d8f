"""Pascal VOC XML: one ``<annotation>`` file per image with ``<object><name>``/``<bndbox>`` boxes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

from veracity.errors import InvalidInputError
from veracity.ingest._coco import shape_annotations
from veracity.ingest._common import ReadOptions, shape_problem
from veracity.ingest._images import ImageExporter, image_size
from veracity.ingest._safety import parse_xml, read_image, resolve_inside
from veracity.ingest.records import SourceRecord, make_annotation
from veracity.types import Record

__all__ = ["read_voc", "write_voc"]


def _xml_files(path: Path) -> tuple[Path, list[Path]]:
    if path.is_file():
        return path.parent, [path]
    folder = path / "Annotations" if (path / "Annotations").is_dir() else path
    return path, sorted(p for p in folder.rglob("*.xml") if not p.name.startswith("."))


def _num(text: str | None, field: str) -> float | int:
    if text is None:
        raise ValueError(f"missing field {field!r}")
    try:
        v = round(float(text), 6)
    except (ValueError, OverflowError):  # OverflowError: round() of infinity
        raise ValueError(f"field {field!r} is not a number: {text!r}") from None
    if v != v:  # NaN
        raise ValueError(f"field {field!r} is not a number: {text!r}")
    return int(v) if v.is_integer() else v


def _find_image(root: Path, xml: Path, filename: str, where: str) -> Path:
    candidates = [xml.parent / filename, root / "JPEGImages" / filename, root / "images" / filename, root / filename]
    resolved = [resolve_inside(root, c, where=where) for c in candidates]
    for c in resolved:
        if c.is_file():
            return c
    raise InvalidInputError(f"{where}: image {filename!r} not found beside the XML or in JPEGImages/")


def read_voc(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """A VOC folder (``Annotations/`` + ``JPEGImages/``), a folder of XML files, or one XML file.

    Boxes become ``{"x": xmin, "y": ymin, "w": xmax - xmin, "h": ymax - ymin}``. XML with a DTD or
    entity declarations is refused.
    """
    root, files = _xml_files(path)
    root = opts.image_root or root
    buf: list[SourceRecord] = []
    for row, xml in enumerate(files, start=1):
        source = str(xml)
        doc = parse_xml(xml, opts.max_bytes)
        if doc.tag != "annotation":
            opts.bad(source, 1, f"expected an <annotation> root element, got <{doc.tag}>")
            continue
        filename = doc.findtext("filename")
        if not filename:
            opts.bad(source, 1, "missing field 'filename'")
            continue
        try:
            image = _find_image(root, xml, filename.strip(), source)
            info = read_image(image, opts.max_bytes, where=source)
        except InvalidInputError as exc:
            opts.bad(source, 1, exc.message.removeprefix(f"{source}: "))
            continue
        w, h = ((doc.findtext(f"size/{k}") or "").strip() for k in ("width", "height"))
        if w not in ("", "0") and (w, h) != (str(info.width), str(info.height)):  # 0: size left unknown
            opts.bad(source, 1, f"<size> says {w}x{h} but {image.name} is {info.width}x{info.height}")
            continue
        boxes: list[Record] = []
        try:
            for i, obj in enumerate(doc.iter("object"), start=1):
                name = obj.findtext("name")
                if not name:
                    raise ValueError(f"object {i}: missing field 'name'")
                bb = obj.find("bndbox")
                if bb is None:
                    raise ValueError(f"object {i}: missing field 'bndbox'")
                try:
                    x0, y0 = _num(bb.findtext("xmin"), "xmin"), _num(bb.findtext("ymin"), "ymin")
                    x1, y1 = _num(bb.findtext("xmax"), "xmax"), _num(bb.findtext("ymax"), "ymax")
                except ValueError as exc:
                    raise ValueError(f"object {i}: {exc}") from None
                box = {"x": x0, "y": y0, "w": _sub(x1, x0), "h": _sub(y1, y0)}
                problem = shape_problem(box, info.width, info.height)
                if problem is not None:
                    raise ValueError(f"object {i}: {problem}")
                boxes.append({**box, "label": name.strip()})
        except ValueError as exc:
            opts.bad(source, 1, str(exc))
            continue
        annotations = [make_annotation(boxes, origin=f"voc:{xml.name}", kind="boxes")] if boxes else []
        buf.append(
            SourceRecord.from_data(
                {"image": str(image)},
                source=source,
                row=row,
                external_id=xml.stem,
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


def _sub(a: float, b: float) -> float | int:
    v = round(a - b, 6)
    return int(v) if float(v).is_integer() else v


def write_voc(chunks: Iterable[list[SourceRecord]], folder: Path, *, copy_images: bool = True) -> int:
    """Write ``Annotations/NAME.xml`` and ``JPEGImages/NAME`` per record; polygons go as their bounding box."""
    if not copy_images:
        raise InvalidInputError("VOC export copies the images into JPEGImages/")
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    exporter = ImageExporter(folder / "JPEGImages", folder, copy=True)
    n = 0
    for chunk in chunks:
        for rec in chunk:
            n += 1
            dest, _ = exporter.place(rec)
            width, height = image_size(rec)
            boxes, polygons = shape_annotations(rec)
            for p in polygons:
                xs = [pt[0] for pt in p["points"]]
                ys = [pt[1] for pt in p["points"]]
                boxes.append(
                    {"x": min(xs), "y": min(ys), "w": max(xs) - min(xs), "h": max(ys) - min(ys), "label": p["label"]}
                )
            ann = ET.Element("annotation")
            ET.SubElement(ann, "folder").text = "JPEGImages"
            ET.SubElement(ann, "filename").text = dest.name
            size = ET.SubElement(ann, "size")
            ET.SubElement(size, "width").text = str(width)
            ET.SubElement(size, "height").text = str(height)
            ET.SubElement(size, "depth").text = "3"
            for b in boxes:
                obj = ET.SubElement(ann, "object")
                ET.SubElement(obj, "name").text = b["label"]
                ET.SubElement(obj, "difficult").text = "0"
                bb = ET.SubElement(obj, "bndbox")
                for key, value in (
                    ("xmin", b["x"]),
                    ("ymin", b["y"]),
                    ("xmax", b["x"] + b["w"]),
                    ("ymax", b["y"] + b["h"]),
                ):
                    ET.SubElement(bb, key).text = str(_sub(value, 0))
            ET.indent(ann)
            ET.ElementTree(ann).write(
                folder / "Annotations" / f"{dest.stem}.xml", encoding="utf-8", xml_declaration=True
            )
    return n
