"""Find mislabelled items with confident learning (Northcutt, Jiang & Chuang 2021).

The pruning steps are vectorised: items are grouped by given label once, and for every cell of
the confident joint the items to prune are chosen by one sort over (cell, margin) keys, done in
chunks of classes so that memory stays linear in n_items x n_classes.

References
----------
C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", Journal of Artificial Intelligence Research 70 (2021) 1373-1411, doi:10.1613/jair.1.12125.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality.label_errors._checks import (
    ROW_SUM_TOL,
    check_int_option,
    check_n_jobs,
    check_real_option,
    validate_label_inputs,
)
from veracity.quality.label_errors.count import (
    RowStats,
    compute_confident_joint,
    estimate_noise_matrices,
    row_stats,
    stable_argsort,
)
from veracity.quality.label_errors.multilabel import check_multilabel_probs, is_multilabel, labels_to_indicator
from veracity.quality.label_errors.rank import RANKING_METHODS, RankBy, scores_from_stats

__all__ = ["FILTER_METHODS", "FilterMethod", "LabelIssues", "find_label_issues"]

FilterMethod = Literal[
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "prune_by_class_margin",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
]
FILTER_METHODS: tuple[str, ...] = (
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "prune_by_class_margin",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
#: What ``method="auto"`` runs.
AUTO_METHOD = "prune_by_class_margin"
_CHUNK_ENTRIES = 1 << 19  # (item, cell) candidates sorted at once in prune_by_noise_rate
_LARGE_CLASS = 4096  # classes with this many items are pruned cell by cell with argpartition
_TIE = 1e-6  # an item whose given label is within this of the top probability is never flagged


@dataclass(frozen=True)
class LabelIssues:
    """Result of :func:`find_label_issues`.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_items,)
        True = likely mislabelled.
    ranked : ndarray of int, shape (n_items,)
        All item indices, most likely mislabelled first (ascending ``scores``; ties keep index order).
    scores : ndarray of float, shape (n_items,)
        Label-quality score in [0, 1]; low = suspect.
    suggested : ndarray of int, shape (n_items,)
        Most likely true label (the predicted class; for a flagged item, never its given label).
    confident_joint : ndarray of int, shape (n_classes, n_classes)
        Calibrated counts ``C[given, true]``.
    noise_matrix : ndarray of float, shape (n_classes, n_classes)
        ``P(given = i | true = j)``; columns sum to 1.
    inverse_noise_matrix : ndarray of float, shape (n_classes, n_classes)
        ``P(true = j | given = i)`` stored as ``[j, i]``.
    class_error_rates : ndarray of float, shape (n_classes,)
        Estimated fraction of items given label i whose true label differs.
    thresholds : ndarray of float, shape (n_classes,)
        Per-class confident thresholds.
    method, rank_by : str
        Filter and ranking actually used.
    """

    mask: npt.NDArray[np.bool_]
    ranked: npt.NDArray[np.intp]
    scores: npt.NDArray[np.floating[Any]]
    suggested: npt.NDArray[np.intp]
    confident_joint: npt.NDArray[np.int64]
    noise_matrix: npt.NDArray[np.float64]
    inverse_noise_matrix: npt.NDArray[np.float64]
    class_error_rates: npt.NDArray[np.float64]
    thresholds: npt.NDArray[np.float64]
    method: str
    rank_by: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_issues(self) -> int:
        """Number of flagged items."""
        return int(self.mask.sum())

    @property
    def issue_indices(self) -> npt.NDArray[np.intp]:
        """Flagged items, most likely mislabelled first."""
        return self.ranked[self.mask[self.ranked]]


def _keep_at_least_n_per_class(prune: npt.NDArray[np.int64], n: int, frac_noise: float) -> npt.NDArray[np.int64]:
    """Prune counts ``M[true, given]`` adjusted so each class keeps ``n`` items, off-diagonals x frac_noise.

    The diagonal is raised to at least ``n``, the raise is taken evenly from the other non-zero
    cells of the column, off-diagonals are scaled by ``frac_noise`` (the column total kept on the
    diagonal) and the result is truncated to integers.
    """
    mat = prune.astype(np.float64)
    diag = np.diagonal(mat).copy()
    new_diag = np.maximum(diag, n)
    spread = np.maximum(np.count_nonzero(mat, axis=0) - 1.0, 1.0)
    mat = mat - (new_diag - diag) / spread
    mat[mat < 0] = 0
    np.fill_diagonal(mat, new_diag)
    reduced = mat * frac_noise
    np.fill_diagonal(reduced, new_diag)
    np.fill_diagonal(reduced, new_diag + (mat - reduced).sum(axis=0))
    return np.floor(reduced).astype(np.int64)


def _class_layout(labels: npt.NDArray[np.intp], k: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Items sorted by given label and the start offset of each class in that order."""
    small = np.int16 if k < 2**15 else np.int32
    order = np.argsort(labels.astype(small), kind="stable")  # radix sort for 16-bit labels
    counts = np.bincount(labels, minlength=k)
    starts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return order, starts


def _prune_by_noise_rate(
    labels: npt.NDArray[np.intp],
    pred_probs: npt.NDArray[Any],
    stats: RowStats,
    to_prune: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """For each cell (given i, true j) flag the ``to_prune[i, j]`` items of label i with largest p_j - p_i.

    Ties go to the lower index. Large classes take one partial sort (``argpartition``) per cell;
    the cells of small classes are expanded into (item, cell) candidates and sorted together in
    chunks, so neither the number of cells nor of items becomes a Python loop of unbounded length.
    """
    n, k = pred_probs.shape
    mask = np.zeros(n, dtype=bool)
    off = to_prune.copy()
    np.fill_diagonal(off, 0)
    off[off < 0] = 0
    rows, cols = np.nonzero(off)
    if rows.size == 0:
        return mask
    order, starts = _class_layout(labels, k)
    counts = np.diff(starts)
    large = counts >= _LARGE_CLASS
    sc = stats.self_confidence
    # Large classes: gather the class's rows once, then one partial sort per non-zero cell
    # (at most n / _LARGE_CLASS x k cells; transient memory n_i x k).
    for i in np.flatnonzero(large).tolist():
        targets = np.flatnonzero(off[i])
        if targets.size == 0:
            continue
        members = order[starts[i] : starts[i + 1]]
        margins = np.ascontiguousarray(pred_probs[members][:, targets].T)  # (n_targets, n_i)
        margins -= sc[members]
        for row, j in enumerate(targets.tolist()):
            margin = margins[row]
            take = int(min(off[i, j], members.size))
            if take >= members.size:
                mask[members] = True
                continue
            cutoff = -np.partition(-margin, take - 1)[take - 1]
            chosen = margin > cutoff
            ties = np.flatnonzero(margin == cutoff)[: take - int(chosen.sum())]
            chosen[ties] = True
            mask[members[chosen]] = True
    # Small classes: (item, cell) candidates sorted by (cell, -margin), in chunks of classes.
    small_rows = ~large[rows]
    rows, cols = rows[small_rows], cols[small_rows]
    if rows.size == 0:
        return mask
    nnz = np.bincount(rows, minlength=k)
    indptr = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(nnz, out=indptr[1:])
    work = np.cumsum(counts * nnz)
    flat = pred_probs.reshape(-1)
    c0 = 0
    while c0 < k:
        base = work[c0 - 1] if c0 else 0
        c1 = int(np.searchsorted(work, base + _CHUNK_ENTRIES, side="right"))
        c1 = max(c1, c0 + 1)
        items = order[starts[c0] : starts[c1]]
        c0_next = c1
        lab = labels[items]
        reps = nnz[lab]
        total = int(reps.sum())
        if total:
            item_rep = np.repeat(items, reps)
            lab_rep = np.repeat(lab, reps)
            first = np.cumsum(reps) - reps
            within = np.arange(total, dtype=np.int64) - np.repeat(first, reps)
            col = cols[np.repeat(indptr[lab], reps) + within]
            margin = flat[item_rep * k + col] - sc[item_rep]
            cell = lab_rep * k + col
            srt = np.lexsort((-margin, cell))
            cell_sorted = cell[srt]
            rank = np.arange(total) - np.searchsorted(cell_sorted, cell_sorted, side="left")
            keep = rank < off.reshape(-1)[cell_sorted]
            mask[item_rep[srt[keep]]] = True
        c0 = c0_next
    return mask


def _prune_by_class(
    labels: npt.NDArray[np.intp], order: npt.NDArray[np.intp], n_remove: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Flag, in each class i, the first ``n_remove[i]`` of its items in ``order`` (ascending key).

    A stable sort of the labels taken in ``order`` groups the items by class and keeps the key
    order inside each class (radix sort on small integer labels).
    """
    n = labels.shape[0]
    k = n_remove.shape[0]
    small = np.int16 if k < 2**15 else np.int32
    lab_sorted = labels[order].astype(small)
    grouped = np.argsort(lab_sorted, kind="stable")
    lab_grouped = lab_sorted[grouped].astype(np.intp)
    starts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(lab_grouped, minlength=k), out=starts[1:])
    rank = np.arange(n)
    rank -= starts[lab_grouped]
    mask = np.zeros(n, dtype=bool)
    mask[order[grouped[rank < n_remove[lab_grouped]]]] = True
    return mask


def find_label_issues(
    labels: Any,
    pred_probs: Any,
    *,
    method: FilterMethod = "auto",
    rank_by: RankBy = "normalized_margin",
    frac_noise: float = 1.0,
    min_examples_per_class: int = 1,
    row_sum_tol: float = ROW_SUM_TOL,
    multi_label: bool | None = None,
    check_input: bool = True,
    n_jobs: int | None = None,
) -> LabelIssues:
    """Flag and rank items whose given label is likely wrong, by confident learning.

    Confident learning (Northcutt, Jiang & Chuang 2021) counts each item into the confident joint
    ``C[given, true]`` using per-class thresholds ``t_j`` (the mean probability of class j over
    items labelled j), calibrates ``C`` to the label counts, and prunes that many items.

    Parameters
    ----------
    labels : array-like of int, shape (n_items,)
        Given class of each item in ``0 .. n_classes - 1``; for multi-label data, class lists
        (see ``multi_label``).
    pred_probs : array-like of float, shape (n_items, n_classes)
        Out-of-sample predicted probabilities (rows sum to 1), e.g. from
        :func:`cross_val_pred_probs`. float32 input stays float32.
    method : str, default "auto"
        ``prune_by_noise_rate``: for every off-diagonal cell (i, j) of the calibrated joint, flag
        that many items labelled i with the largest margin ``p_j - p_i``. ``prune_by_class``: flag
        in each class i the ``n_i - C[i, i]`` items of lowest ``p_i``. ``prune_by_class_margin``
        (ours): the same counts, taking the items of lowest normalized margin
        ``p_i - max_{j != i} p_j`` instead. ``both``: items flagged by ``prune_by_noise_rate`` and
        by ``prune_by_class``. ``confident_learning``: the off-diagonal items of the confident joint.
        ``predicted_neq_given``: argmax differs from the label. ``low_normalized_margin`` /
        ``low_self_confidence``: the lowest-scoring items, as many as the off-diagonals of the
        calibrated joint. ``auto`` runs ``prune_by_class_margin``.
        Except for the two ``low_*`` methods, an item whose label has the top probability is
        never flagged.
    rank_by : {"normalized_margin", "self_confidence", "confidence_weighted_entropy"}
        Score behind ``scores`` and ``ranked``.
    frac_noise : float, default 1.0
        Flag only this fraction of the estimated errors (pruning methods).
    min_examples_per_class : int, default 1
        Never prune a class below this many items.
    row_sum_tol : float
        Allowed distance of a row sum from 1.
    multi_label : bool, optional
        Treat ``labels`` as multi-label: a sequence of class lists (``[[0, 2], [1], []]``) or a
        0/1 ndarray of shape (n_items, n_classes), with ``pred_probs`` independent per-class
        probabilities. Lists always hold class indices (integers); a list of lists that looks
        like an indicator matrix (every row n_classes entries of 0/1) is rejected as ambiguous:
        pass ``np.asarray(labels)`` for a 0/1 matrix. Default: detected from ``labels``. Each
        class is then a one-vs-rest binary problem; an item is flagged if any membership is;
        ``scores`` is the lowest per-class score, ``suggested`` the 0/1 matrix
        ``pred_probs >= 0.5``, ``confident_joint`` has shape (n_classes, 2, 2).
    n_jobs : int or None, default None
        Threads for the blockwise passes over ``pred_probs`` (None or -1: every core, at most 8).
        Results do not depend on it.
    check_input : bool, default True
        Validate the inputs. Pass False only for arrays already checked by
        :func:`validate_label_inputs` (saves one pass over ``pred_probs``).

    Returns
    -------
    LabelIssues
        ``mask``, ``ranked``, ``scores``, ``suggested``, ``confident_joint``,
        ``noise_matrix``, ``inverse_noise_matrix``, ``class_error_rates``.

    Raises
    ------
    veracity.errors.InvalidInputError
        Bad shapes, non-finite probabilities, rows not summing to 1, labels out of range,
        unknown method.

    References
    ----------
    C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in
    Dataset Labels", JAIR 70 (2021), doi:10.1613/jair.1.12125.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([0, 0, 0, 1, 1, 1])
    >>> probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.1, .9], [.3, .7]])
    >>> res = find_label_issues(labels, probs)
    >>> np.flatnonzero(res.mask)
    array([2])
    >>> int(res.ranked[0]), int(res.suggested[2])
    (2, 1)
    """
    if method not in FILTER_METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(FILTER_METHODS)}, got {method!r}")
    if rank_by not in RANKING_METHODS:
        raise InvalidInputError(f"rank_by must be one of {', '.join(RANKING_METHODS)}, got {rank_by!r}")
    frac_noise = check_real_option("frac_noise", frac_noise, 0.0, 1.0)
    min_examples_per_class = check_int_option("min_examples_per_class", min_examples_per_class, 0)
    row_sum_tol = check_real_option("row_sum_tol", row_sum_tol, 0.0)
    n_jobs = check_n_jobs(n_jobs)
    used = AUTO_METHOD if method == "auto" else method
    if multi_label is None:
        multi_label = is_multilabel(labels, pred_probs)
    if multi_label:
        return _find_multilabel_issues(labels, pred_probs, used, rank_by, frac_noise, min_examples_per_class)
    if check_input:
        lab, probs = validate_label_inputs(labels, pred_probs, row_sum_tol=row_sum_tol, n_jobs=n_jobs)
    else:
        lab, probs = labels, pred_probs
    k = probs.shape[1]
    stats = row_stats(lab, probs, with_entropy=rank_by == "confidence_weighted_entropy", n_jobs=n_jobs)
    scores = scores_from_stats(stats, rank_by)
    label_counts = np.bincount(lab, minlength=k)
    cj = compute_confident_joint(lab, probs, calibrate=True, stats=stats)
    noise, inverse, _ = estimate_noise_matrices(cj)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(label_counts > 0, 1.0 - np.diagonal(cj) / np.maximum(cj.sum(axis=1), 1), 0.0)
    ranked = stable_argsort(scores)
    margin_order = ranked if rank_by == "normalized_margin" else None
    mask = _filter(used, lab, probs, stats, cj, label_counts, frac_noise, min_examples_per_class, margin_order)
    if k < 2:
        mask[:] = False
    suggested = stats.argmax.astype(np.intp)
    same = mask & (suggested == lab)
    suggested[same] = stats.argmax_other[same]
    return LabelIssues(
        mask=mask,
        ranked=ranked,
        scores=scores,
        suggested=suggested,
        confident_joint=cj,
        noise_matrix=noise,
        inverse_noise_matrix=inverse,
        class_error_rates=rates,
        thresholds=stats.thresholds,
        method=used,
        rank_by=rank_by,
    )


def _filter(
    method: str,
    labels: npt.NDArray[np.intp],
    pred_probs: npt.NDArray[Any],
    stats: RowStats,
    cj: npt.NDArray[np.int64],
    label_counts: npt.NDArray[np.int64],
    frac_noise: float,
    min_examples_per_class: int,
    margin_order: npt.NDArray[np.intp] | None = None,
) -> npt.NDArray[np.bool_]:
    n = pred_probs.shape[0]
    if method == "predicted_neq_given":
        mask = stats.argmax != labels
    elif method == "confident_learning":
        mask = (stats.true_guess >= 0) & (stats.true_guess != labels)
    elif method in ("low_normalized_margin", "low_self_confidence"):
        count = int(cj.sum() - np.trace(cj))
        score = scores_from_stats(stats, method[4:])
        mask = np.zeros(n, dtype=bool)
        mask[stable_argsort(score)[:count]] = True
        return mask
    else:
        prune = _keep_at_least_n_per_class(cj.T, min_examples_per_class, frac_noise)  # [true, given]
        small = label_counts <= min_examples_per_class
        mask = np.ones(n, dtype=bool)
        if method in ("prune_by_class", "both", "prune_by_class_margin"):
            n_remove = label_counts - np.diagonal(prune)
            n_remove[small] = 0
            if method == "prune_by_class_margin":
                if margin_order is None:
                    margin_order = stable_argsort(scores_from_stats(stats, "normalized_margin"))
                order = margin_order
            else:
                order = stable_argsort(stats.self_confidence)
            mask &= _prune_by_class(labels, order, n_remove)
        if method in ("prune_by_noise_rate", "both"):
            to_prune = prune.T.copy()  # [given, true]
            to_prune[small] = 0
            mask &= _prune_by_noise_rate(labels, pred_probs, stats, to_prune)
    # The given label (near) tops the prediction: never flag it (argmax of p + 1e-6 at the label).
    sc = stats.self_confidence
    lifted = sc + np.asarray(_TIE, dtype=sc.dtype)
    top = (lifted > stats.max_other) | ((lifted == stats.max_other) & (labels < stats.argmax_other))
    mask &= ~top
    return mask


def _find_multilabel_issues(
    labels: Any,
    pred_probs: Any,
    method: str,
    rank_by: str,
    frac_noise: float,
    min_examples_per_class: int,
) -> LabelIssues:
    """One-vs-rest confident learning over the classes (a loop over classes, vectorised over items)."""
    probs = check_multilabel_probs(pred_probs)
    n, k = probs.shape
    member = labels_to_indicator(labels, k)
    if member.shape[0] != n:
        raise InvalidInputError(
            f"labels and pred_probs must have the same number of rows, got {member.shape[0]} and {n}"
        )
    mask = np.zeros(n, dtype=bool)
    scores = np.ones(n, dtype=probs.dtype)
    cjs = np.zeros((k, 2, 2), dtype=np.int64)
    noise = np.zeros((k, 2, 2))
    inverse = np.zeros((k, 2, 2))
    rates = np.zeros(k)
    thresholds = np.zeros((k, 2))
    pair = np.empty((n, 2), dtype=probs.dtype)
    for c in range(k):
        lab = member[:, c].astype(np.intp)
        pair[:, 1] = np.clip(probs[:, c], 0, 1)
        pair[:, 0] = 1 - pair[:, 1]
        stats = row_stats(lab, pair, with_entropy=rank_by == "confidence_weighted_entropy")
        cj = compute_confident_joint(lab, pair, calibrate=True, stats=stats)
        counts = np.bincount(lab, minlength=2)
        mask |= _filter(method, lab, pair, stats, cj, counts, frac_noise, min_examples_per_class)
        np.minimum(scores, scores_from_stats(stats, rank_by), out=scores)
        cjs[c] = cj
        noise[c], inverse[c], _ = estimate_noise_matrices(cj)
        rates[c] = (cj[0, 1] + cj[1, 0]) / max(n, 1)
        thresholds[c] = stats.thresholds
    return LabelIssues(
        mask=mask,
        ranked=stable_argsort(scores),
        scores=scores,
        suggested=(probs >= 0.5).astype(np.intp),
        confident_joint=cjs,
        noise_matrix=noise,
        inverse_noise_matrix=inverse,
        class_error_rates=rates,
        thresholds=thresholds,
        method=method,
        rank_by=rank_by,
        extras={"multi_label": True},
    )
