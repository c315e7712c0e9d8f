"""Options shared by the readers, chunking, and the mapping from flat objects to records."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from veracity.errors import InvalidInputError
from veracity.ingest._safety import DEFAULT_MAX_BYTES
from veracity.ingest.records import BadRow, SourceRecord, canonical_json, infer_kind, make_annotation
from veracity.types import Record

__all__ = [
    "EXPORT_KEYS",
    "NOT_UTF8",
    "ReadOptions",
    "chunked",
    "record_from_object",
    "record_to_export",
    "shape_problem",
    "valid_utf8",
]

T = TypeVar("T")
_PAIRWISE = frozenset({"left", "right", "tie"})
_canonical = canonical_json
_sha256 = hashlib.sha256

#: Keys of Veracity's own export layout (JSONL/CSV/Parquet); a source with an ``annotations`` key or
#: column is read in that layout, anything else is a flat object whose fields become ``data``.
EXPORT_KEYS = frozenset({"id", "item_id", "data", "label", "confidence", "annotations"})
#: The reason given for a row whose text is not valid UTF-8.
NOT_UTF8 = "not valid UTF-8"


@dataclass(slots=True)
class ReadOptions:
    """Settings every reader shares (see :func:`veracity.ingest.read_source`)."""

    chunk_size: int = 10_000
    max_bytes: int | None = DEFAULT_MAX_BYTES
    label_field: str | None = "label"
    gold_field: str | None = None
    required: tuple[str, ...] = ()
    on_bad_row: Callable[[BadRow], None] | None = None
    image_root: Path | None = None
    extract_dir: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def bad(self, source: str, row: int, reason: str, raw: str | None = None) -> None:
        """Report a bad row: raise, or hand it to ``on_bad_row`` and let the reader go on."""
        if self.on_bad_row is None:
            fail(source, row, reason)
        self.on_bad_row(BadRow(source, row, reason, raw))


def valid_utf8(value: Any) -> bool:
    """Whether ``value`` (a string, or a JSON value holding strings) can be stored as UTF-8 text.

    Text files are decoded with ``surrogateescape``, so an invalid byte becomes a lone surrogate
    (as does a JSON escape such as ``"\\udce9"``); such a string cannot be encoded, hashed or
    stored. ASCII strings, the usual case, are answered without encoding.
    """
    try:
        if type(value) is str:
            if not value.isascii():
                value.encode("utf-8")
        elif value is not None and type(value) not in (int, float, bool):
            _canonical(value).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except (TypeError, ValueError):  # not JSON (NaN, an odd type): not this check's concern
        return True
    return True


def fail(source: str, row: int | None, reason: str) -> NoReturn:
    where = f"{source}: row {row}" if row is not None else source
    raise InvalidInputError(f"{where}: {reason}", details={"source": source, "row": row, "reason": reason})


#: How far (in pixels) a box or polygon may reach past the image edge before it is refused; export
#: tools round coordinates, so a box ending at 640.4 on a 640-pixel image is still inside.
EDGE_TOLERANCE = 1.0


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def shape_problem(shape: Record, width: int, height: int) -> str | None:
    """Why a pixel box (``x``, ``y``, ``w``, ``h``) or polygon (``points``) is not a shape inside a
    ``width`` x ``height`` image, or None when it is one."""
    if "points" in shape:
        for x, y in shape["points"]:
            if not (_finite(x) and _finite(y)):
                return f"polygon point ({x!r}, {y!r}) is not a finite number"
            if not (-EDGE_TOLERANCE <= x <= width + EDGE_TOLERANCE and -EDGE_TOLERANCE <= y <= height + EDGE_TOLERANCE):
                return f"polygon point ({x}, {y}) lies outside the {width}x{height} image"
        return None
    x, y, w, h = (shape[k] for k in ("x", "y", "w", "h"))
    if not all(_finite(v) for v in (x, y, w, h)):
        return f"box [{x!r}, {y!r}, {w!r}, {h!r}] has a value that is not a finite number"
    if w < 0 or h < 0:
        return f"box has a negative size: width {w}, height {h}"
    tol = EDGE_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return f"box x={x} y={y} w={w} h={h} lies outside the {width}x{height} image"
    return None


@contextmanager
def spill_database(prefix: str, *schema: str) -> Iterator[sqlite3.Connection]:
    """A throwaway SQLite file (in a temporary folder named ``prefix...``, removed afterwards) for a
    reader that must spill a large input to disk to regroup it; no journal and no syncs, since it
    never outlives the read. ``schema``: the statements that create its tables."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        spill = sqlite3.connect(Path(tmp) / "spill.db")
        try:
            spill.execute("PRAGMA journal_mode=OFF")
            spill.execute("PRAGMA synchronous=OFF")
            for statement in schema:
                spill.execute(statement)
            yield spill
        finally:
            spill.close()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, in order."""
    buf: list[T] = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _annotations_from(value: Any, where: str) -> list[Record]:
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"field 'annotations' is not valid JSON ({exc.msg})") from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, dict) and "value" in a for a in value):
        raise ValueError("field 'annotations' must be a list of objects with a 'value'")
    out = []
    for a in value:
        ann = make_annotation(
            a["value"], origin=a.get("origin") or where, annotator=a.get("annotator"), kind=a.get("kind")
        )
        out.append(ann)
    return out


def record_from_object(obj: Any, *, source: str, row: int, opts: ReadOptions, fmt: str) -> SourceRecord | None:
    """A record from one freshly parsed object of a JSONL/JSON/CSV/Parquet source (None when bad).

    The object is taken over (its ``id`` and label field are popped), not copied.
    """
    if type(obj) is not dict:
        opts.bad(source, row, f"expected an object, got {type(obj).__name__}")
        return None
    meta: Record = {}
    annotations: list[Record] = []
    if "annotations" not in obj:  # a flat object: its fields are the data
        data = obj
        field = opts.label_field
        if field is not None and field in data:
            value = data.pop(field)
            if value is not None and value != "":
                if not valid_utf8(value):
                    opts.bad(source, row, NOT_UTF8)
                    return None
                kind = "classification" if type(value) is str and value not in _PAIRWISE else infer_kind(value)
                annotations.append(
                    {"kind": kind, "value": value, "annotator": None, "origin": f"{fmt}:row {row} field {field}"}
                )
        gold_field = opts.gold_field
        if gold_field is not None and gold_field in data:  # a known answer, not part of the data
            gold = data.pop(gold_field)
            if gold is not None and gold != "":
                if not valid_utf8(gold):
                    opts.bad(source, row, NOT_UTF8)
                    return None
                meta["gold"] = gold
        ext = data.pop("id", None)
        if "sensitivity" in data:  # a marking 0-9, as the REST import takes it; not part of the data
            marking = data.pop("sensitivity")
            if type(marking) is str and marking.isdigit():
                marking = int(marking)
            if type(marking) is not int or not 0 <= marking <= 9:
                opts.bad(source, row, f"field 'sensitivity' must be an integer marking from 0 to 9, got {marking!r}")
                return None
            meta["sensitivity"] = marking
    else:  # Veracity's export layout
        try:
            annotations = _annotations_from(obj["annotations"], f"{fmt}:row {row}")
        except ValueError as exc:
            opts.bad(source, row, str(exc))
            return None
        if not valid_utf8(annotations):
            opts.bad(source, row, NOT_UTF8)
            return None
        nested = obj.get("data")
        if isinstance(nested, dict) and obj.keys() <= EXPORT_KEYS:
            data = dict(nested)
        else:
            data = {k: v for k, v in obj.items() if k not in EXPORT_KEYS}
        for key in ("label", "confidence", "item_id"):
            if obj.get(key) not in (None, ""):
                meta[key] = obj[key]
        ext = obj.get("id")
    if ext == "":
        ext = None
    for name in opts.required:
        if name not in data or data[name] in (None, ""):
            opts.bad(source, row, f"missing field {name!r}")
            return None
    if not data:
        opts.bad(source, row, "record has no data fields")
        return None
    if ext is not None and not isinstance(ext, str | int):
        opts.bad(source, row, f"field 'id' must be a string or integer, got {type(ext).__name__}")
        return None
    try:
        if type(ext) is str and not ext.isascii():
            ext.encode("utf-8")
        text = _canonical(data)
        digest = _sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        opts.bad(source, row, NOT_UTF8)
        return None
    except ValueError as exc:  # NaN or infinity cannot be hashed as JSON
        opts.bad(source, row, f"value cannot be stored as JSON ({exc})")
        return None
    return SourceRecord(data, None if ext is None else str(ext), source, row, digest, annotations, meta, text)


def record_to_export(rec: SourceRecord) -> Record:
    """The export layout of one record (nested ``data``, as JSONL writes it)."""
    out: Record = {"id": rec.external_id}
    if rec.meta.get("item_id") is not None:
        out["item_id"] = rec.meta["item_id"]
    out["data"] = rec.data
    out["label"] = rec.meta.get("label")
    out["confidence"] = rec.meta.get("confidence")
    out["annotations"] = [{k: a.get(k) for k in ("kind", "value", "annotator", "origin")} for a in rec.annotations]
    return out


def cell(value: Any) -> Any:
    """A scalar for a CSV or Parquet cell: strings and numbers as they are, the rest as JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return canonical_json(value)
