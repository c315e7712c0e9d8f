"""Input checks shared by the quality engines; they raise :class:`InvalidInputError` with sizes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from veracity._checks import check_random_state
from veracity.errors import InvalidInputError
from veracity.quality.responses import Responses
from veracity.types import IntArray

__all__ = ["as_responses", "check_choice", "check_codes", "check_positive", "check_random_state"]


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else an error that lists them."""
    options = list(choices)
    if value not in options:
        raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` as float if it is positive (or zero when allowed)."""
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be {bound}, got {value!r}")
    return v


def check_codes(values: Any, size: int, *, name: str) -> IntArray:
    """``values`` as int64 codes in ``[0, size)``, shape ``(n,)``.

    Integer arrays and integral floats (``2.0``) are accepted. A fractional, non-finite or
    out-of-int64 float, a non-numeric dtype or a code outside the range is an error that names
    ``name``, the row and the value as given (checked before any cast, so ``1e20`` is reported as
    ``1e+20``, not as a wrapped integer).
    """
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise InvalidInputError(f"{name} must be a one-dimensional array of integer codes, got {values!r:.60}")
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= 2.0**63)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f"{name} row {row}: expected an integer code, got {arr[row].item()!r}")
    elif arr.size and kind not in "iu":
        raise InvalidInputError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    if kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        row = int(np.argmax(arr))
        raise InvalidInputError(f"{name} row {row}: code {arr[row].item()} is outside [0, {size})")
    out = arr.astype(np.int64)
    bad = (out < 0) | (out >= size)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f"{name} row {row}: code {arr[row].item()!r} is outside [0, {size})")
    return out


def _columns(obj: Any, names: tuple[str, str, str]) -> tuple[Any, Any, Any] | None:
    """Column arrays of a DataFrame-, Arrow- or dict-like ``obj``; ``None`` if it is none of those."""
    if isinstance(obj, Mapping):
        cols = obj
        keys = set(cols)
    elif hasattr(obj, "column_names") and hasattr(obj, "column"):  # pyarrow.Table (duck-typed)
        keys = set(obj.column_names)
        cols = {k: obj.column(k).to_numpy(zero_copy_only=False) for k in names if k in keys}
    elif hasattr(obj, "columns") and hasattr(obj, "to_numpy"):  # pandas / polars DataFrame
        keys = {str(c) for c in obj.columns}
        cols = {k: np.asarray(obj[k].to_numpy()) for k in names if k in keys}
    else:
        return None
    missing = [k for k in names if k not in keys]
    if missing:
        raise InvalidInputError(
            f"answers must have columns {', '.join(names)}; missing {', '.join(missing)} "
            f"(got {', '.join(sorted(map(str, keys))) or 'no columns'})"
        )
    return cols[names[0]], cols[names[1]], cols[names[2]]


def _factorize(obj: Any, names: tuple[str, str, str]) -> list[tuple[Any, Any]] | None:
    """(codes, uniques) per column for Arrow tables and pandas frames, without importing either.

    Arrow's ``dictionary_encode`` and pandas' ``factorize`` code a column in C, which is much
    faster than sorting Python objects. Returns ``None`` for other inputs.
    """
    if hasattr(obj, "column_names") and hasattr(obj, "column"):  # pyarrow.Table
        if not set(names) <= set(obj.column_names):
            return None  # let _columns produce the error message
        out = []
        for name in names:
            col = obj.column(name)
            if col.null_count:
                row = int(np.flatnonzero(np.asarray(col.is_null().to_numpy(zero_copy_only=False)))[0])
                raise InvalidInputError(f"{name} is missing at row {row}")
            enc = col.combine_chunks().dictionary_encode()
            out.append((enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_numpy(zero_copy_only=False)))
        return out
    if hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "iloc"):  # pandas DataFrame
        if not set(names) <= {str(c) for c in obj.columns}:
            return None
        out = []
        for name in names:
            codes, uniques = obj[name].factorize()
            out.append((np.asarray(codes), np.asarray(uniques)))
        return out
    return None


def as_responses(
    answers: Any,
    *,
    task: str = "task",
    worker: str = "worker",
    label: str = "label",
    classes: Any = None,
) -> Responses:
    """Turn ``answers`` into :class:`Responses`.

    Accepts a :class:`Responses`, a pandas DataFrame, a pyarrow Table, a mapping of columns, or an
    iterable of records (mappings) with ``worker``, ``task`` and ``label`` fields.
    """
    if isinstance(answers, Responses):
        return answers if classes is None else answers.with_classes(classes)
    if answers is None:
        raise InvalidInputError("answers must not be None")
    factorized = _factorize(answers, (task, worker, label))
    if factorized is not None:
        return Responses.from_factorized(*factorized, classes=classes)
    cols = _columns(answers, (task, worker, label))
    if cols is not None:
        return Responses.from_arrays(cols[0], cols[1], cols[2], classes=classes)
    if isinstance(answers, (str, bytes)):
        raise InvalidInputError("answers must be a table or records, got a string (read the file first)")
    return Responses.from_records(answers, task=task, worker=worker, label=label, classes=classes)
