"""The record that every reader yields and every writer takes, plus hashing and label helpers.

A :class:`SourceRecord` is one item as found in a source: its payload (which becomes ``item.data``),
where it came from (``source`` and 1-based ``row``), a content hash, and any labels the source
carried, as annotation dicts::

    {"kind": "boxes", "value": [{"x": 1, "y": 2, "w": 3, "h": 4, "label": "cat"}],
     "annotator": None, "origin": "coco:annotations 17"}

``value`` follows the value shapes of ARCHITECTURE.md ("An annotation's value is, by kind").
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from veracity.types import Record

__all__ = [
    "ANNOTATION_KINDS",
    "BadRow",
    "SourceRecord",
    "canonical_json",
    "content_hash",
    "hash_key",
    "hash_keys",
    "infer_kind",
    "label_names",
    "make_annotation",
    "map_value_labels",
]

#: Kinds whose values carry label names (the ones ontology mapping rewrites).
LABELLED_KINDS = frozenset({"classification", "multilabel", "spans", "boxes", "polygons"})
ANNOTATION_KINDS = LABELLED_KINDS | {"rating", "text", "pairwise"}


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_canonical() -> Callable[[Any], str]:
    """``json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``.

    Calls the C encoder directly when there is one: ``JSONEncoder.encode`` builds a new encoder
    object on every call, which is half the cost for the small objects of an import. No circular
    check (values come from JSON, which cannot be circular).
    """
    slow = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return slow
    encode = make(None, _not_json, basestring, None, ":", ",", True, False, False)
    join = "".join

    def canonical(value: Any) -> str:
        if type(value) is str:
            return basestring(value)  # type: ignore[no-any-return]
        return join(encode(value, 0))

    return canonical


_CANONICAL = _make_canonical()
_sha256 = hashlib.sha256


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no spaces, so equal values give equal text."""
    return _CANONICAL(value)


def content_hash(data: Record) -> str:
    """sha256 (hex) of the canonical JSON of ``data``."""
    return _sha256(_CANONICAL(data).encode("utf-8")).hexdigest()


def hash_key(digest: str) -> int:
    """The indexed dedupe key of a content hash: its first 8 bytes as a signed 64-bit integer.

    Equal hashes have equal keys; a key match is only a candidate, confirmed on the full hash.
    """
    return int.from_bytes(bytes.fromhex(digest[:16].ljust(16, "0")), "big", signed=True)


def hash_keys(digests: Sequence[str]) -> list[int]:
    """:func:`hash_key` of many hashes at once (one ``bytes.fromhex`` and one ``struct.unpack``)."""
    if not digests:
        return []
    raw = bytes.fromhex("".join([d[:16] if len(d) >= 16 else d.ljust(16, "0") for d in digests]))
    return list(struct.unpack(f">{len(digests)}q", raw))


@dataclass(slots=True)
class SourceRecord:
    """One item read from a source.

    Attributes
    ----------
    data : dict
        The payload that becomes ``item.data``: ``{"text": ...}``, ``{"image": path}`` or any record.
    external_id : str or None
        The source's own id of the item (the ``id`` field or column, a COCO image id, ...).
    source : str
        Path or URI of the file the record came from.
    row : int
        1-based line, row or index of the record in ``source``.
    content_hash : str
        sha256 hex of the canonical JSON of ``data``, or of the image bytes for images.
    annotations : list of dict
        Labels carried by the source: ``kind``, ``value``, ``annotator`` (name or None) and
        ``origin`` (for example ``"coco:annotations 17,18"`` or ``"csv:row 4 column label"``).
    meta : dict
        Everything else worth keeping: image ``width``/``height``, an exported consensus ``label``
        and ``confidence``, ``parked_annotations`` set aside by ontology mapping, ...
    data_json : str or None
        The canonical JSON of ``data`` when it was computed for the hash (saves a second
        serialisation when storing); None otherwise. Not compared.
    """

    data: Record
    external_id: str | None
    source: str
    row: int
    content_hash: str
    annotations: list[Record] = field(default_factory=list)
    meta: Record = field(default_factory=dict)
    data_json: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_data(
        cls,
        data: Record,
        *,
        source: str,
        row: int,
        external_id: Any = None,
        annotations: list[Record] | None = None,
        meta: Record | None = None,
        digest: str | None = None,
    ) -> SourceRecord:
        """Build a record, hashing ``data`` unless ``digest`` (for example of image bytes) is given."""
        text = None
        if digest is None:
            text = _CANONICAL(data)
            digest = _sha256(text.encode("utf-8")).hexdigest()
        return cls(
            data,
            None if external_id is None else str(external_id),
            source,
            row,
            digest,
            annotations if annotations is not None else [],
            meta if meta is not None else {},
            text,
        )


@dataclass(slots=True, frozen=True)
class BadRow:
    """A row a reader rejected: where it is, why, and its raw text when there is one."""

    source: str
    row: int
    reason: str
    raw: str | None = None

    def message(self) -> str:
        return f"{self.source}: row {self.row}: {self.reason}"


def infer_kind(value: Any) -> str:
    """Guess the annotation kind of ``value`` from its shape (see ARCHITECTURE.md value shapes)."""
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int | float):
        return "rating"
    if isinstance(value, str):
        return "pairwise" if value in ("left", "right", "tie") else "classification"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "multilabel"
        if all(isinstance(v, dict) for v in value) and value:
            first = value[0]
            if "points" in first:
                return "polygons"
            if "start" in first and "end" in first:
                return "spans"
            if {"x", "y", "w", "h"} <= first.keys():
                return "boxes"
    return "text"


def make_annotation(value: Any, *, origin: str, annotator: str | None = None, kind: str | None = None) -> Record:
    """An annotation dict with its kind (inferred when not given)."""
    return {
        "kind": kind or infer_kind(value),
        "value": value,
        "annotator": annotator,
        "origin": origin,
    }


def label_names(annotation: Record) -> list[str]:
    """The label names an annotation mentions (empty for ratings, free text and pairwise)."""
    kind = annotation.get("kind") or infer_kind(annotation.get("value"))
    value = annotation.get("value")
    if kind == "classification" and isinstance(value, str):
        return [value]
    if kind == "multilabel" and isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if kind in ("spans", "boxes", "polygons") and isinstance(value, list):
        return [v["label"] for v in value if isinstance(v, dict) and isinstance(v.get("label"), str)]
    return []


def map_value_labels(annotation: Record, mapping: dict[str, str]) -> Any:
    """A copy of ``annotation["value"]`` with every label name replaced through ``mapping``."""
    kind = annotation.get("kind") or infer_kind(annotation.get("value"))
    value = annotation.get("value")
    if kind == "classification" and isinstance(value, str):
        return mapping[value]
    if kind == "multilabel" and isinstance(value, list):
        return [mapping[v] for v in value]
    if kind in ("spans", "boxes", "polygons") and isinstance(value, list):
        return [{**v, "label": mapping[v["label"]]} if "label" in v else dict(v) for v in value]
    return value
