"""Confident learning counts: per-class thresholds, the confident joint, its calibration, noise rates.

All functions take the given ``labels`` (n_items,) and out-of-sample ``pred_probs`` (n_items,
n_classes) and work through ``pred_probs`` in row blocks, so extra memory stays at a few
vectors of length n_items plus one block; float32 input is never copied to float64.

References
----------
C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", Journal of Artificial Intelligence Research 70 (2021) 1373-1411, doi:10.1613/jair.1.12125.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "RowStats",
    "calibrate_confident_joint",
    "compute_confident_joint",
    "confident_thresholds",
    "estimate_noise_matrices",
    "map_blocks",
    "n_threads",
    "row_stats",
]

#: Slack in the "probability reaches the class threshold" comparison (as in the reference code).
THRESHOLD_SLACK = 1e-6
#: Lower bound of a class threshold (a class whose items all get probability 0 stays usable).
THRESHOLD_FLOOR = 2e-6
#: Threshold of a class nobody carries as given label: no probability reaches it.
MISSING_CLASS_THRESHOLD = 2.0
_BLOCK_ELEMENTS = 1 << 18  # cells of pred_probs handled at once (1 MB of float32)

FloatVec = npt.NDArray[np.floating[Any]]
IntVec = npt.NDArray[np.integer[Any]]


def _block_rows(n_classes: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(n_classes, 1))


def confident_thresholds(labels: IntVec, pred_probs: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Per-class threshold ``t_j``: mean predicted probability of class j over items labelled j.

    Parameters
    ----------
    labels : ndarray of int, shape (n_items,)
    pred_probs : ndarray of float, shape (n_items, n_classes)

    Returns
    -------
    ndarray of float64, shape (n_classes,)
        ``t_j`` (eq. 2 of Northcutt et al. 2021); classes with no item get 2.0, so no
        probability reaches them.
    """
    n, k = pred_probs.shape
    self_conf = pred_probs[np.arange(n), labels]
    sums = np.bincount(labels, weights=self_conf, minlength=k)
    counts = np.bincount(labels, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), MISSING_CLASS_THRESHOLD)
    return np.maximum(thresholds, THRESHOLD_FLOOR)


def _cutoffs(thresholds: npt.NDArray[np.float64], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Smallest values ``c`` of ``dtype`` with ``float64(c) >= t - slack``: exact compares in float32."""
    want = thresholds - THRESHOLD_SLACK
    cut = want.astype(dtype)
    low = cut.astype(np.float64) < want
    cut[low] = np.nextafter(cut[low], np.asarray(np.inf, dtype=dtype))
    return cut


@dataclass(frozen=True)
class RowStats:
    """What the filters and scores need from each row, gathered in one blockwise pass.

    Attributes
    ----------
    self_confidence : ndarray, shape (n_items,)
        ``pred_probs[i, labels[i]]``, in the dtype of ``pred_probs``.
    max_other : ndarray, shape (n_items,)
        Largest probability of a class other than the given one.
    argmax_other : ndarray of int32, shape (n_items,)
        That class: the most likely alternative label.
    argmax : ndarray of int, shape (n_items,)
        ``pred_probs.argmax(axis=1)``.
    true_guess : ndarray of int, shape (n_items,)
        Class the item is confidently counted in (largest probability among classes whose
        threshold it reaches); ``-1`` where it reaches none.
    entropy : ndarray of float64, shape (n_items,) or (0,)
        Entropy of the row divided by ``log(n_classes)`` (in [0, 1]); empty unless asked for.
    thresholds : ndarray of float64, shape (n_classes,)
    """

    self_confidence: FloatVec
    max_other: FloatVec
    argmax_other: IntVec
    argmax: IntVec
    true_guess: IntVec
    entropy: npt.NDArray[np.float64]
    thresholds: npt.NDArray[np.float64]


def n_threads(n_jobs: int | None) -> int:
    """Threads to use: ``n_jobs``, or every core (at most 8) when None."""
    if n_jobs is None:
        return max(1, min(os.cpu_count() or 1, 8))
    return max(1, int(n_jobs))


def map_blocks(fn: Callable[[int, int], None], n: int, step: int, n_jobs: int | None) -> None:
    """Call ``fn(start, stop)`` on consecutive row blocks, on threads when that helps.

    numpy releases the GIL inside the vectorised operations, so blocks run in parallel; each call
    writes a disjoint slice of its outputs.
    """
    starts = range(0, n, step)
    threads = min(n_threads(n_jobs), len(starts))
    if threads <= 1:
        for start in starts:
            fn(start, min(start + step, n))
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for fut in [pool.submit(fn, start, min(start + step, n)) for start in starts]:
            fut.result()


def row_stats(
    labels: IntVec, pred_probs: npt.NDArray[Any], *, with_entropy: bool = False, n_jobs: int | None = 1
) -> RowStats:
    """Compute :class:`RowStats` in row blocks (memory: O(n_items + threads x block x n_classes))."""
    n, k = pred_probs.shape
    thresholds = confident_thresholds(labels, pred_probs)
    cut = _cutoffs(thresholds, pred_probs.dtype)
    self_conf = np.empty(n, dtype=pred_probs.dtype)
    max_other = np.empty(n, dtype=pred_probs.dtype)
    idx = np.int32 if k < 2**31 - 1 else np.intp
    arg_other = np.empty(n, dtype=idx)
    argmax = np.empty(n, dtype=idx)
    guess = np.empty(n, dtype=idx)
    entropy = np.zeros(n if with_entropy else 0, dtype=np.float64)

    def block_stats(start: int, stop: int) -> None:
        block = pred_probs[start:stop]
        lab = labels[start:stop]
        rows = np.arange(stop - start)
        self_conf[start:stop] = block[rows, lab]
        am = block.argmax(axis=1)
        argmax[start:stop] = am
        # Largest probability among the other classes.
        w = block.copy()
        w[rows, lab] = -np.inf
        ao = w.argmax(axis=1)
        arg_other[start:stop] = ao
        max_other[start:stop] = w[rows, ao]
        # Confident counting: classes whose threshold the row reaches.
        conf = block >= cut
        n_conf = conf.sum(axis=1)
        first = conf.argmax(axis=1)
        g = np.where(n_conf > 1, am, first)
        g[n_conf == 0] = -1
        guess[start:stop] = g
        if with_entropy and k > 1:
            np.clip(block, np.finfo(block.dtype).tiny, None, out=w)
            np.log(w, out=w)
            w *= block
            entropy[start:stop] = -w.sum(axis=1, dtype=np.float64) / np.log(k)

    map_blocks(block_stats, n, _block_rows(k), n_jobs)
    return RowStats(self_conf, max_other, arg_other, argmax, guess, entropy, thresholds)


def _round_preserving_row_totals(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Round each row to integers keeping its (rounded) total: largest remainders go up."""
    floor = np.floor(matrix)
    short = (np.round(matrix.sum(axis=1)) - floor.sum(axis=1)).astype(np.int64)
    frac = matrix - floor
    order = np.argsort(-frac, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(matrix.shape[1])[None, :].repeat(matrix.shape[0], 0), axis=1)
    return (floor + (rank < short[:, None])).astype(np.int64)


def calibrate_confident_joint(
    confident_joint: npt.NDArray[Any], label_counts: npt.NDArray[Any]
) -> npt.NDArray[np.int64]:
    """Calibrate the confident joint so row i sums to the count of label i (eq. 3 of the paper).

    Parameters
    ----------
    confident_joint : ndarray, shape (n_classes, n_classes)
        Counts ``C[given, true]``.
    label_counts : ndarray of int, shape (n_classes,)
        Number of items carrying each given label.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Integer counts; rows sum to ``label_counts`` and the total is ``n_items``.
    """
    cj = np.asarray(confident_joint, dtype=np.float64)
    row = np.maximum(cj.sum(axis=1, keepdims=True), 1e-100)
    calibrated = cj / row * np.asarray(label_counts, dtype=np.float64)[:, None]
    total = calibrated.sum()
    if total > 0:
        calibrated = calibrated / total * float(np.sum(label_counts))
    return _round_preserving_row_totals(calibrated)


def compute_confident_joint(
    labels: IntVec,
    pred_probs: npt.NDArray[Any],
    *,
    calibrate: bool = True,
    stats: RowStats | None = None,
) -> npt.NDArray[np.int64]:
    """The confident joint ``C[given, true]`` of Northcutt et al. (2021), eq. 1, optionally calibrated.

    An item with given label i is counted in ``C[i, j]`` when ``pred_probs[x, j]`` reaches the
    threshold of class j (the largest such j if several do). Every diagonal cell is at least 1.

    Parameters
    ----------
    labels : ndarray of int, shape (n_items,)
    pred_probs : ndarray of float, shape (n_items, n_classes)
    calibrate : bool, default True
        Rescale rows to the label counts and round (eq. 3).
    stats : RowStats, optional
        Precomputed :func:`row_stats` (saves a pass).

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
    """
    k = pred_probs.shape[1]
    st = stats if stats is not None else row_stats(labels, pred_probs)
    ok = st.true_guess >= 0
    cj = np.bincount(labels[ok] * k + st.true_guess[ok], minlength=k * k).reshape(k, k).astype(np.int64)
    np.fill_diagonal(cj, np.maximum(np.diagonal(cj), 1))
    if calibrate:
        cj = calibrate_confident_joint(cj, np.bincount(labels, minlength=k))
    return cj


def estimate_noise_matrices(
    confident_joint: npt.NDArray[Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Noise matrix, inverse noise matrix and true-class prior from a (calibrated) confident joint.

    Parameters
    ----------
    confident_joint : ndarray, shape (n_classes, n_classes)
        Counts ``C[given, true]``.

    Returns
    -------
    noise_matrix : ndarray, shape (n_classes, n_classes)
        ``P(given = i | true = j)``; columns sum to 1.
    inverse_noise_matrix : ndarray, shape (n_classes, n_classes)
        ``P(true = j | given = i)`` stored as ``[j, i]``; columns sum to 1.
    prior_true : ndarray, shape (n_classes,)
        ``P(true = j)``.
    """
    cj = np.asarray(confident_joint, dtype=np.float64)
    total = max(cj.sum(), 1e-100)
    joint = cj / total
    p_true = joint.sum(axis=0)
    p_given = joint.sum(axis=1)
    noise = joint / np.maximum(p_true, 1e-100)[None, :]
    inverse = joint.T / np.maximum(p_given, 1e-100)[None, :]
    return noise, inverse, p_true


def stable_argsort(values: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """``np.argsort(values, kind="stable")``, several times faster for float16/float32 input.

    A float32 value and its index are packed into one unsigned 64-bit key (the float's bits,
    remapped so that integer order equals float order, then the index), and the keys are sorted
    as plain integers: equal values keep index order, as a stable sort does. NaN is not expected.
    """
    n = values.shape[0]
    if values.dtype not in (np.float16, np.float32) or n >= 2**32:
        return np.argsort(values, kind="stable")
    bits = (values.astype(np.float32, copy=False) + np.float32(0.0)).view(np.uint32)  # -0.0 -> 0.0
    # Non-negative floats: set the sign bit; negative floats: flip all bits (IEEE-754 total order).
    flip = np.where(bits >> 31, np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    key = (bits ^ flip).astype(np.uint64)
    key <<= np.uint64(32)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    key &= np.uint64(0xFFFFFFFF)
    return key.astype(np.intp)
