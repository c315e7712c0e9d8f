"""A folder of images (with optional sidecar JSON or ``metadata.jsonl``), and image copying for writers."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from veracity.errors import InvalidInputError
from veracity.ingest._common import ReadOptions, record_from_object
from veracity.ingest._safety import IMAGE_SUFFIXES, check_size, read_image, resolve_inside
from veracity.ingest.records import SourceRecord
from veracity.types import Record

__all__ = ["ImageExporter", "iter_image_files", "read_image_folder"]

METADATA_FILE = "metadata.jsonl"


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under ``root`` in sorted order, hidden files and folders skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(dirpath) / name


def _sidecar(image: Path) -> Path | None:
    for candidate in (image.with_suffix(".json"), image.with_name(image.name + ".json")):
        if candidate.is_file():
            return candidate
    return None


def _image_record(
    image: Path, fields: Record, *, source: str, row: int, where: str, opts: ReadOptions
) -> SourceRecord | None:
    try:
        info = read_image(image, opts.max_bytes, where=where)
    except InvalidInputError as exc:
        opts.bad(source, row, exc.message.removeprefix(f"{where}: "))
        return None
    obj = {k: v for k, v in fields.items() if k not in ("image", "file_name")}
    obj["image"] = str(image)
    rec = record_from_object(obj, source=source, row=row, opts=opts, fmt="images")
    if rec is None:
        return None
    rec.content_hash = info.sha256
    rec.meta.update(width=info.width, height=info.height)
    return rec


def read_image_folder(root: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """Every image under ``root``; fields of a sidecar ``NAME.json`` join the image's data.

    When ``root/metadata.jsonl`` exists it lists the images instead, one object per line with a
    ``file_name`` relative to ``root`` (the Hugging Face ``imagefolder`` convention); paths that
    resolve outside ``root`` are refused.
    """
    buf: list[SourceRecord] = []
    metadata = root / METADATA_FILE
    if metadata.is_file():
        check_size(metadata, opts.max_bytes)
        source = str(metadata)
        with metadata.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    opts.bad(source, lineno, f"malformed JSON ({exc.msg} at column {exc.colno})")
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("file_name"), str):
                    opts.bad(source, lineno, "missing field 'file_name'")
                    continue
                where = f"{source}: row {lineno}"
                image = resolve_inside(root, obj["file_name"], where=where)
                rec = _image_record(image, obj, source=source, row=lineno, where=where, opts=opts)
                if rec is not None:
                    buf.append(rec)
                if len(buf) >= opts.chunk_size:
                    yield buf
                    buf = []
    else:
        source = str(root)
        for row, image in enumerate(iter_image_files(root), start=1):
            where = f"{source}: row {row} ({image.name})"
            image = resolve_inside(root, image, where=where)
            fields: Record = {}
            sidecar = _sidecar(image)
            if sidecar is not None:
                try:
                    check_size(sidecar, opts.max_bytes)
                    fields = json.loads(sidecar.read_bytes())
                except json.JSONDecodeError as exc:
                    opts.bad(source, row, f"sidecar {sidecar.name}: malformed JSON at line {exc.lineno}: {exc.msg}")
                    continue
                except UnicodeDecodeError as exc:
                    opts.bad(source, row, f"sidecar {sidecar.name}: not UTF-8 text ({exc.reason} at byte {exc.start})")
                    continue
                if not isinstance(fields, dict):
                    opts.bad(source, row, f"sidecar {sidecar.name}: expected a JSON object")
                    continue
                for key in ("image", "file_name"):
                    if isinstance(fields.get(key), str):
                        resolve_inside(root, fields[key], where=f"{sidecar}: field {key!r}")
            rec = _image_record(image, fields, source=source, row=row, where=where, opts=opts)
            if rec is not None:
                buf.append(rec)
            if len(buf) >= opts.chunk_size:
                yield buf
                buf = []
    if buf:
        yield buf


class ImageExporter:
    """Places the images of exported records under ``folder`` (copied) and names them uniquely.

    With ``copy=False`` images stay where they are and are referred to by a path relative to
    ``base`` (or an absolute path when they are outside it).
    """

    def __init__(self, folder: Path, base: Path, *, copy: bool = True) -> None:
        self.folder = folder
        self.base = base
        self.copy = copy
        self._names: set[str] = set()
        if copy:
            folder.mkdir(parents=True, exist_ok=True)

    def place(self, rec: SourceRecord) -> tuple[Path, str]:
        """(path of the image now, path written into the export) for one record."""
        src = image_path(rec)
        if not self.copy:
            try:
                return src, src.resolve().relative_to(self.base.resolve()).as_posix()
            except ValueError:
                return src, str(src.resolve())
        name = src.name
        if name in self._names:
            name = f"{rec.row}_{rec.content_hash[:8]}_{src.name}"
        self._names.add(name)
        dest = self.folder / name
        shutil.copyfile(src, dest)
        return dest, dest.relative_to(self.base).as_posix()


def image_path(rec: SourceRecord) -> Path:
    """The local image file of a record (``data["image"]``)."""
    value = rec.data.get("image")
    if not isinstance(value, str):
        raise InvalidInputError(f"{rec.source}: row {rec.row}: record has no 'image' field to export")
    path = Path(value)
    if not path.is_file():
        raise InvalidInputError(f"{rec.source}: row {rec.row}: image {value} not found")
    return path


def image_size(rec: SourceRecord, path: Path | None = None) -> tuple[int, int]:
    """(width, height) from the record's meta, or read from the image header (of ``path`` if given).

    Only the header is read: the image was checked to decode when it was imported, and an export
    needs its size, not its pixels or hash.
    """
    w, h = rec.meta.get("width"), rec.meta.get("height")
    if isinstance(w, int) and isinstance(h, int):
        return w, h
    where = f"{rec.source}: row {rec.row}"
    src = path or image_path(rec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInputError(f"{where}: image {src.name} cannot be read ({exc})") from None
    rec.meta.update(width=width, height=height)
    return width, height
