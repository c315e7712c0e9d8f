"""Label schemas: their shape, and validation of every label value written under them.

A schema is a JSON object ``{"kind": KIND, ...}``. Kinds and the value each takes:

===============  ===============================================  =========================================
kind             schema keys                                      annotation value
===============  ===============================================  =========================================
classification   labels                                           ``"a"``
multilabel       labels, min_choices?, max_choices?               ``["a", "b"]``
spans            labels, field? (default "text")                  ``[{"start": 0, "end": 5, "label": "a"}]``
boxes            labels                                           ``[{"x":, "y":, "w":, "h":, "label":}]``
polygons         labels                                           ``[{"points": [[x, y], ...], "label":}]``
keypoints        labels (point names)                             ``[{"x":, "y":, "label":}]``
text             max_length?                                      ``"free text"``
rating           min (1), max (5), step (1)                       a number
pairwise         (none)                                           ``"left"`` / ``"right"`` / ``"tie"``
ranking          n? (outputs to order)                            ``[2, 0, 1]`` (a permutation of 0..n-1)
===============  ===============================================  =========================================

Every schema may also carry ``instructions`` (Markdown), ``input`` (the item field that must be
present, e.g. ``"text"`` or ``"image"``), ``colors`` and ``hotkeys`` (label -> value) for the UI.
Errors are :class:`~veracity.errors.SchemaValidationError` whose message names the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from veracity.errors import SchemaValidationError

__all__ = ["KINDS", "label_key", "labels_of", "normalise_schema", "validate_value"]

KINDS = (
    "classification",
    "multilabel",
    "spans",
    "boxes",
    "polygons",
    "keypoints",
    "text",
    "rating",
    "pairwise",
    "ranking",
)
_LABELLED = {"classification", "multilabel", "spans", "boxes", "polygons", "keypoints"}
#: Most values a rating scale may have ((max - min) / step + 1): each is a label of the screens and of votes.
MAX_RATING_STEPS = 101
_ALIASES = {"multi-label": "multilabel", "multi_label": "multilabel", "ner": "spans", "bbox": "boxes"}


def normalise_schema(schema: Any) -> dict[str, Any]:
    """Check a schema and return it in canonical form (kind aliases resolved, defaults filled)."""
    if not isinstance(schema, Mapping):
        raise SchemaValidationError(f"schema: expected an object with a 'kind', got {type(schema).__name__}")
    out = dict(schema)
    kind = _ALIASES.get(str(out.get("kind", "")), out.get("kind"))
    if kind not in KINDS:
        raise SchemaValidationError(f"schema.kind: expected one of {', '.join(KINDS)}, got {out.get('kind')!r}")
    out["kind"] = kind
    if kind in _LABELLED:
        labels = out.get("labels")
        if not isinstance(labels, list) or not labels:
            raise SchemaValidationError("schema.labels: expected a non-empty list of label names")
        if not all(isinstance(x, str) and x for x in labels):
            raise SchemaValidationError("schema.labels: every label must be a non-empty string")
        if len(set(labels)) != len(labels):
            dupes = sorted({x for x in labels if labels.count(x) > 1})
            raise SchemaValidationError(f"schema.labels: duplicate labels {dupes}")
    if kind == "rating":
        out.setdefault("min", 1)
        out.setdefault("max", 5)
        out.setdefault("step", 1)
        lo, hi, step = (out[k] for k in ("min", "max", "step"))
        if not all(type(v) in (int, float) and math.isfinite(v) for v in (lo, hi, step)) or lo >= hi or step <= 0:
            raise SchemaValidationError("schema.min/max/step: expected finite numbers with min < max and step > 0")
        if (hi - lo) / step + 1 > MAX_RATING_STEPS:
            raise SchemaValidationError(
                f"schema.min/max/step: expected at most {MAX_RATING_STEPS} rating values, got {lo} to {hi} by {step}"
            )
    if kind == "spans":
        out.setdefault("field", "text")
    if "instructions" in out and not isinstance(out["instructions"], str):
        raise SchemaValidationError("schema.instructions: expected Markdown text")
    if "input" in out and not isinstance(out["input"], str):
        raise SchemaValidationError("schema.input: expected the name of an item field")
    return out


def labels_of(schema: Mapping[str, Any]) -> list[str]:
    """The label names of a schema, or the fixed answers of kinds without labels."""
    kind = schema["kind"]
    if kind in _LABELLED:
        return list(schema["labels"])
    if kind == "pairwise":
        return ["left", "right", "tie"]
    if kind == "rating":
        lo, hi, step = schema["min"], schema["max"], schema["step"]
        n = round((hi - lo) / step) + 1
        return [_num_text(lo + i * step) for i in range(n)]
    return []


def _num_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def label_key(schema: Mapping[str, Any], value: Any) -> str | None:
    """A categorical key for a value, used for voting and filters (None where none exists)."""
    kind = schema["kind"]
    if value is None:
        return None
    if kind in ("classification", "pairwise"):
        return str(value)
    if kind == "rating":
        return _num_text(value)
    if kind == "multilabel":
        return "|".join(sorted(value))
    return None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaValidationError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _label(value: Any, labels: Sequence[str], where: str) -> str:
    if not isinstance(value, str) or value not in labels:
        raise SchemaValidationError(f"{where}: unknown label {value!r}; expected one of {list(labels)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SchemaValidationError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _obj(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaValidationError(f"{where}: expected an object with {', '.join(keys)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise SchemaValidationError(f"{where}: missing field {missing[0]!r}")
    return value


def validate_value(
    schema: Mapping[str, Any], value: Any, *, item: Mapping[str, Any] | None = None, where: str = "value"
) -> Any:
    """Check ``value`` against ``schema`` (and the item, for span offsets); return it unchanged.

    Raises
    ------
    SchemaValidationError
        With a message that names the offending field, e.g. ``value[1].label: unknown label 'x'``.
    """
    kind = schema["kind"]
    labels = schema.get("labels") or []
    if kind == "classification":
        return _label(value, labels, where)
    if kind == "multilabel":
        chosen = _list(value, where)
        for i, v in enumerate(chosen):
            _label(v, labels, f"{where}[{i}]")
        if len(set(chosen)) != len(chosen):
            raise SchemaValidationError(f"{where}: a label is chosen twice")
        lo, hi = schema.get("min_choices", 0), schema.get("max_choices", len(labels))
        if not lo <= len(chosen) <= hi:
            raise SchemaValidationError(f"{where}: expected {lo} to {hi} labels, got {len(chosen)}")
        return value
    if kind == "spans":
        text = None
        if item is not None:
            text = item.get(schema.get("field", "text"))
        for i, span in enumerate(_list(value, where)):
            w = f"{where}[{i}]"
            span = _obj(span, w, ("start", "end", "label"))
            start, end = span["start"], span["end"]
            if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
                raise SchemaValidationError(f"{w}.start/end: expected integer character offsets")
            if not 0 <= start < end:
                raise SchemaValidationError(f"{w}: expected 0 <= start < end, got start={start} end={end}")
            if isinstance(text, str) and end > len(text):
                raise SchemaValidationError(f"{w}.end: {end} is past the end of the text ({len(text)} characters)")
            _label(span["label"], labels, f"{w}.label")
        return value
    if kind == "boxes":
        for i, box in enumerate(_list(value, where)):
            w = f"{where}[{i}]"
            box = _obj(box, w, ("x", "y", "w", "h", "label"))
            for k in ("x", "y", "w", "h"):
                _number(box[k], f"{w}.{k}")
            if box["w"] <= 0 or box["h"] <= 0:
                raise SchemaValidationError(f"{w}.w/h: width and height must be positive")
            _label(box["label"], labels, f"{w}.label")
        return value
    if kind == "polygons":
        for i, poly in enumerate(_list(value, where)):
            w = f"{where}[{i}]"
            poly = _obj(poly, w, ("points", "label"))
            points = _list(poly["points"], f"{w}.points")
            if len(points) < 3:
                raise SchemaValidationError(f"{w}.points: a polygon needs at least 3 points, got {len(points)}")
            for j, p in enumerate(points):
                if not isinstance(p, list | tuple) or len(p) != 2:
                    raise SchemaValidationError(f"{w}.points[{j}]: expected [x, y]")
                _number(p[0], f"{w}.points[{j}][0]")
                _number(p[1], f"{w}.points[{j}][1]")
            _label(poly["label"], labels, f"{w}.label")
        return value
    if kind == "keypoints":
        for i, kp in enumerate(_list(value, where)):
            w = f"{where}[{i}]"
            kp = _obj(kp, w, ("x", "y", "label"))
            _number(kp["x"], f"{w}.x")
            _number(kp["y"], f"{w}.y")
            _label(kp["label"], labels, f"{w}.label")
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise SchemaValidationError(f"{where}: expected text, got {type(value).__name__}")
        limit = schema.get("max_length")
        if limit is not None and len(value) > limit:
            raise SchemaValidationError(f"{where}: text longer than {limit} characters")
        return value
    if kind == "rating":
        x = _number(value, where)
        lo, hi, step = schema["min"], schema["max"], schema["step"]
        if not lo <= x <= hi or abs((x - lo) / step - round((x - lo) / step)) > 1e-9:
            raise SchemaValidationError(f"{where}: expected a rating from {lo} to {hi} in steps of {step}, got {x}")
        return value
    if kind == "pairwise":
        if value not in ("left", "right", "tie"):
            raise SchemaValidationError(f"{where}: expected 'left', 'right' or 'tie', got {value!r}")
        return value
    if kind == "ranking":
        order = _list(value, where)
        n = schema.get("n", len(order))
        if sorted(order) != list(range(n)) or not all(isinstance(v, int) for v in order):
            raise SchemaValidationError(f"{where}: expected a permutation of 0..{n - 1}, got {order!r}")
        return value
    raise SchemaValidationError(f"schema.kind: unsupported kind {kind!r}")  # pragma: no cover
