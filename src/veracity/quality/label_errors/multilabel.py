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


def is_multilabel(labels: Any, pred_probs: Any) -> bool:
    """True when ``labels`` is a sequence of class lists or a 0/1 matrix shaped like ``pred_probs``."""
    if isinstance(labels, np.ndarray):
        return labels.ndim == 2 and np.shape(pred_probs) == labels.shape
    if isinstance(labels, Sequence) and not isinstance(labels, str | bytes):
        return any(isinstance(x, list | tuple | set | frozenset | np.ndarray) for x in labels[:1000])
    return False


def labels_to_indicator(labels: Any, n_classes: int, *, name: str = "labels") -> npt.NDArray[np.bool_]:
    """``(n_items, n_classes)`` boolean membership matrix from class lists or a 0/1 matrix."""
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.shape[1] != n_classes:
            raise InvalidInputError(f"{name} must have {n_classes} columns, got shape {labels.shape}")
        bad = np.flatnonzero(~np.isin(labels, (0, 1)).all(axis=1))
        if bad.size:
            raise InvalidInputError(f"{name} row {bad[0]}: a label matrix holds only 0 and 1")
        return labels.astype(bool)
    lengths = np.fromiter((len(x) for x in labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter((int(c) for x in labels for c in x), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(len(labels)), lengths)
    bad = np.flatnonzero((flat < 0) | (flat >= n_classes))
    if bad.size:
        raise InvalidInputError(
            f"{name} row {rows[bad[0]]}: label {flat[bad[0]]} is outside 0..{n_classes - 1} "
            f"(pred_probs has {n_classes} columns)"
        )
    out = np.zeros((len(labels), n_classes), dtype=bool)
    out[rows, flat] = True
    return out


def check_multilabel_probs(pred_probs: Any, *, name: str = "pred_probs") -> npt.NDArray[np.floating[Any]]:
    """2-D array of independent per-class probabilities in [0, 1] (rows need not sum to 1)."""
    arr = np.asarray(pred_probs)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (n_items, n_classes), got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr >= -ROW_SUM_TOL) & (arr <= 1 + ROW_SUM_TOL)).all(axis=1))
    if bad.size:
        raise InvalidInputError(f"{name} row {bad[0]}: probabilities must be finite and in [0, 1]")
    return arr
