"""Input checks for the label-issue functions: messages name the argument, the row and the sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality.label_errors.count import map_blocks

__all__ = [
    "ROW_SUM_TOL",
    "check_int_option",
    "check_labels",
    "check_n_jobs",
    "check_pred_probs",
    "check_real_option",
    "validate_label_inputs",
]

#: How far a row of ``pred_probs`` may sum from 1 (float16 sources and smoothed probabilities drift).
ROW_SUM_TOL = 1e-3

_BLOCK_ELEMENTS = 1 << 18  # cells of pred_probs per block in the blockwise checks


def _first_bad_row(bad: npt.NDArray[np.bool_], offset: int = 0) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) + offset if hits.size else None


def check_real_option(name: str, value: Any, low: float, high: float = np.inf) -> float:
    """``value`` as a float if it is a real number in ``[low, high]`` (no bools, strings or NaN)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not low <= v <= high:  # also rejects NaN
        upper = "" if high == np.inf else f", {high:g}"
        bounds = f"[{low:g}{upper}]" if upper else f">= {low:g}"
        raise InvalidInputError(f"{name} must be {'in ' if upper else ''}{bounds}, got {value!r}")
    return v


def check_int_option(name: str, value: Any, low: int) -> int:
    """``value`` as an int if it is an integer ``>= low`` (no bools, floats or strings)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise InvalidInputError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise InvalidInputError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def check_n_jobs(n_jobs: Any) -> int | None:
    """``n_jobs``: None or -1 (every core) or a positive thread count."""
    if n_jobs is None or (isinstance(n_jobs, int | np.integer) and not isinstance(n_jobs, bool) and n_jobs == -1):
        return None
    return check_int_option("n_jobs", n_jobs, 1)


def check_pred_probs(
    pred_probs: Any, *, name: str = "pred_probs", row_sum_tol: float = ROW_SUM_TOL, n_jobs: int | None = 1
) -> npt.NDArray[np.floating[Any]]:
    """Return ``pred_probs`` as a 2-D float array (float16/32/64 kept, others to float64).

    Raises :class:`~veracity.errors.InvalidInputError` naming the first bad row: not finite, outside
    ``[0, 1]`` or a row sum further than ``row_sum_tol`` from 1.
    """
    arr = np.asarray(pred_probs)
    if arr.dtype.kind not in "f":
        if arr.dtype.kind not in "iub":
            raise InvalidInputError(f"{name} must hold numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (n_items, n_classes), got shape {arr.shape}")
    n, k = arr.shape
    if k < 1:
        raise InvalidInputError(f"{name} must have at least one column, got shape {arr.shape}")
    block = max(1, _BLOCK_ELEMENTS // max(k, 1))
    first_bad: dict[int, str] = {}

    def check_block(start: int, stop: int) -> None:
        part = arr[start:stop]
        finite = np.isfinite(part).all(axis=1)
        row = _first_bad_row(~finite, start)
        if row is not None:
            first_bad[row] = f"{name} row {row}: values must be finite, got {arr[row].tolist()[:8]}"
            return
        in_range = ((part >= -row_sum_tol) & (part <= 1 + row_sum_tol)).all(axis=1)
        row = _first_bad_row(~in_range, start)
        if row is not None:
            first_bad[row] = f"{name} row {row}: probabilities must lie in [0, 1], got {arr[row].tolist()[:8]}"
            return
        sums = part.sum(axis=1, dtype=np.float64)
        row = _first_bad_row(np.abs(sums - 1.0) > row_sum_tol, start)
        if row is not None:
            first_bad[row] = (
                f"{name} row {row}: probabilities must sum to 1 (+-{row_sum_tol:g}), got {sums[row - start]:.6g}"
            )

    map_blocks(check_block, n, block, n_jobs)
    if first_bad:
        raise InvalidInputError(first_bad[min(first_bad)])
    return arr


def check_labels(labels: Any, n_classes: int, *, name: str = "labels") -> npt.NDArray[np.intp]:
    """Return ``labels`` as a 1-D integer array with every value in ``0 .. n_classes - 1``."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D (n_items,), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        row = _first_bad_row(bad)
        if row is not None:
            raise InvalidInputError(f"{name} row {row}: expected an integer class index, got {arr[row]!r}")
        row = _first_bad_row((arr < 0) | (arr >= n_classes))  # before the cast: 1e20 does not fit in intp
        if row is not None:
            raise InvalidInputError(
                f"{name} row {row}: label {arr[row]:g} is outside 0..{n_classes - 1} "
                f"(pred_probs has {n_classes} columns)"
            )
    elif arr.dtype.kind not in "iub":
        raise InvalidInputError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    out = arr.astype(np.intp, copy=False)
    row = _first_bad_row((out < 0) | (out >= n_classes))
    if row is not None:
        raise InvalidInputError(
            f"{name} row {row}: label {out[row]} is outside 0..{n_classes - 1} (pred_probs has {n_classes} columns)"
        )
    return out


def validate_label_inputs(
    labels: Any,
    pred_probs: Any,
    *,
    labels_name: str = "labels",
    pred_probs_name: str = "pred_probs",
    row_sum_tol: float = ROW_SUM_TOL,
    n_jobs: int | None = 1,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.floating[Any]]]:
    """Check a single-label problem and return ``(labels, pred_probs)`` as arrays.

    Parameters
    ----------
    labels : array-like of int, shape (n_items,)
        Given class of each item, in ``0 .. n_classes - 1``.
    pred_probs : array-like of float, shape (n_items, n_classes)
        Out-of-sample predicted probabilities; each row sums to 1.
    labels_name, pred_probs_name : str
        Names used in error messages (the CLI passes file names).
    row_sum_tol : float
        Allowed distance of a row sum from 1.
    n_jobs : int or None, default 1
        Threads for the blockwise checks (None: every core).

    Raises
    ------
    veracity.errors.InvalidInputError
        On shape mismatch, non-finite values, rows that do not sum to 1 or labels out of range;
        the message names the argument and the first bad row.
    """
    probs = check_pred_probs(pred_probs, name=pred_probs_name, row_sum_tol=row_sum_tol, n_jobs=n_jobs)
    lab = np.asarray(labels)
    if lab.ndim == 1 and lab.shape[0] != probs.shape[0]:
        raise InvalidInputError(
            f"{labels_name} and {pred_probs_name} must have the same number of rows, "
            f"got {lab.shape[0]} and {probs.shape[0]}"
        )
    return check_labels(lab, probs.shape[1], name=labels_name), probs
