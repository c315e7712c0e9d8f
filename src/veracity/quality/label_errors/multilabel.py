"""Label issues in multi-label data: one-vs-rest confident learning per class.

Each class c is a binary problem (item carries c or not, with probability ``pred_probs[:, c]``);
confident learning runs on each, and an item is flagged when any of its class memberships is.

References
----------
C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70 (2021), doi:10.1613/jair.1.12125. A. Thyagarajan, E. Snorrason, C. Northcutt,
J. Mueller, "Identifying Incorrect Annotations in Multi-Label Classification Data",
arXiv:2211.13895 (2022) (one-vs-rest reduction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality.label_errors._checks import ROW_SUM_TOL

__all__ = ["is_multilabel", "labels_to_indicator"]


_CLASS_LIST = (list, tuple, set, frozenset, np.ndarray)
_HINT = "multi-label labels are class lists such as [[0, 2], [1], []] or a 0/1 ndarray (n_items, n_classes)"


def is_multilabel(labels: Any, pred_probs: Any) -> bool:
    """True for a sequence (or 1-D object array) of class lists, or a 2-D array shaped like ``pred_probs``."""
    if isinstance(labels, np.ndarray):
        if labels.ndim == 1 and labels.dtype == object:
            return any(isinstance(x, _CLASS_LIST) for x in labels[:1000])
        return labels.ndim == 2 and np.shape(pred_probs) == labels.shape
    if isinstance(labels, Sequence) and not isinstance(labels, str | bytes):
        return any(isinstance(x, _CLASS_LIST) for x in labels[:1000])
    return False


def _class_index(value: Any) -> int | None:
    """``value`` as a class index if it is an integer (or an integral float), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return None


def labels_to_indicator(labels: Any, n_classes: int, *, name: str = "labels") -> npt.NDArray[np.bool_]:
    """``(n_items, n_classes)`` boolean membership matrix from class lists or a 0/1 ndarray.

    A 2-D ndarray is a 0/1 indicator matrix; a list (or 1-D object array) of lists holds class
    indices. A list of lists that could be either (every row has ``n_classes`` entries, all 0 or
    1) is rejected: pass ``np.asarray(labels)`` for an indicator matrix.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.shape[1] != n_classes:
            raise InvalidInputError(f"{name} must have {n_classes} columns, got shape {labels.shape}")
        if labels.dtype.kind not in "biuf":
            raise InvalidInputError(f"{name}: a label matrix holds only 0 and 1, got dtype {labels.dtype}")
        bad = np.flatnonzero(~np.isin(labels, (0, 1)).all(axis=1))
        if bad.size:
            raise InvalidInputError(f"{name} row {bad[0]}: a label matrix holds only 0 and 1")
        return labels.astype(bool)
    if isinstance(labels, np.ndarray) and labels.ndim != 1:
        raise InvalidInputError(f"{name}: {_HINT}, got an array of shape {labels.shape}")
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence | np.ndarray):
        raise InvalidInputError(f"{name}: {_HINT}, got {type(labels).__name__}")
    n = len(labels)
    rows_list: list[int] = []
    flat_list: list[int] = []
    for i, row in enumerate(labels):
        if not isinstance(row, _CLASS_LIST) or (isinstance(row, np.ndarray) and row.ndim != 1):
            raise InvalidInputError(f"{name} row {i}: expected a list of class indices, got {row!r} ({_HINT})")
        for c in row:
            idx = _class_index(c)
            if idx is None:
                raise InvalidInputError(f"{name} row {i}: class indices must be integers, got {c!r}")
            rows_list.append(i)
            flat_list.append(idx)
    flat = np.asarray(flat_list, dtype=np.int64)
    rows = np.asarray(rows_list, dtype=np.int64)
    bad = np.flatnonzero((flat < 0) | (flat >= n_classes))
    if bad.size:
        raise InvalidInputError(
            f"{name} row {rows[bad[0]]}: label {flat[bad[0]]} is outside 0..{n_classes - 1} "
            f"(pred_probs has {n_classes} columns)"
        )
    lengths = np.bincount(rows, minlength=n)
    if n and (lengths == n_classes).all() and np.isin(flat, (0, 1)).all():
        raise InvalidInputError(
            f"{name} is ambiguous: every row has {n_classes} entries of 0/1, like an indicator matrix, "
            "but lists are read as class indices; pass np.asarray(labels) for a 0/1 matrix"
        )
    out = np.zeros((n, n_classes), dtype=bool)
    out[rows, flat] = True
    return out


def check_multilabel_probs(pred_probs: Any, *, name: str = "pred_probs") -> npt.NDArray[np.floating[Any]]:
    """2-D array of independent per-class probabilities in [0, 1] (rows need not sum to 1)."""
    try:
        arr = np.asarray(pred_probs)
    except ValueError:  # ragged rows
        raise InvalidInputError(f"{name} must be a 2-D array (n_items, n_classes) of numbers") from None
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (n_items, n_classes), got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr >= -ROW_SUM_TOL) & (arr <= 1 + ROW_SUM_TOL)).all(axis=1))
    if bad.size:
        raise InvalidInputError(
            f"{name} row {bad[0]}: probabilities must be finite and in [0, 1], got {arr[bad[0]].tolist()[:8]}"
        )
    return arr
