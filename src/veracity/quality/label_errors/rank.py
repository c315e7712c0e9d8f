"""Label-quality scores: one number per item in [0, 1], low = the given label is suspect.

References
----------
C. G. Northcutt, L. Jiang, I. L. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70 (2021), doi:10.1613/jair.1.12125.
J. Kuan, J. Mueller, "Model-Agnostic Label Quality Scoring to Detect Real-World Label Errors",
ICML DataPerf workshop 2022, arXiv:2210.07228 (self-confidence, normalized margin,
confidence-weighted entropy).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality.label_errors._checks import validate_label_inputs
from veracity.quality.label_errors.count import RowStats, row_stats

__all__ = ["RANKING_METHODS", "RankBy", "get_label_quality_scores", "scores_from_stats"]

RankBy = Literal["normalized_margin", "self_confidence", "confidence_weighted_entropy"]
RANKING_METHODS: tuple[str, ...] = ("normalized_margin", "self_confidence", "confidence_weighted_entropy")
_CLIP = 1e-6
_SC_FLOOR = 1e-12  # floor of p[label] in the entropy ratio: a wrong one-hot row scores ~0, not 1


def scores_from_stats(stats: RowStats, method: str) -> npt.NDArray[np.floating[Any]]:
    """Scores of ``method`` from precomputed :class:`~veracity.quality.label_errors.count.RowStats`."""
    sc = stats.self_confidence
    if method == "self_confidence":
        return np.clip(sc, 0, 1)
    if method == "normalized_margin":
        other = np.maximum(stats.max_other, 0).astype(sc.dtype, copy=False)
        out = sc - other
        out += 1
        out *= 0.5
        # Rows may stray by row_sum_tol outside [0, 1]; scores may not.
        return np.clip(out, 0, 1, out=out)
    if method == "confidence_weighted_entropy":
        # r = H(p) / p[label], both clipped so the limit r -> 0 (a certain, correct row) scores 1
        # and r -> inf (no mass on the label) scores 0; log(1 + r) / r falls from 1 to 0.
        ratio = np.maximum(stats.entropy, _CLIP) / np.maximum(sc.astype(np.float64), _SC_FLOOR)
        out64 = np.log1p(ratio) / ratio
        return np.clip(out64, 0.0, 1.0).astype(sc.dtype)
    raise InvalidInputError(f"rank_by must be one of {', '.join(RANKING_METHODS)}, got {method!r}")


def get_label_quality_scores(
    labels: Any,
    pred_probs: Any,
    *,
    method: RankBy = "normalized_margin",
) -> npt.NDArray[np.floating[Any]]:
    """Score how likely each given label is correct.

    Parameters
    ----------
    labels : array-like of int, shape (n_items,)
        Given class of each item, in ``0 .. n_classes - 1``.
    pred_probs : array-like of float, shape (n_items, n_classes)
        Out-of-sample predicted probabilities (e.g. from :func:`cross_val_pred_probs`).
    method : {"normalized_margin", "self_confidence", "confidence_weighted_entropy"}
        ``self_confidence`` is ``p[label]``; ``normalized_margin`` is
        ``(p[label] - max_{j != label} p[j] + 1) / 2``; ``confidence_weighted_entropy`` is
        ``log(1 + r) / r`` with ``r = H(p) / (log(K) p[label])``, the entropy clipped below at 1e-6
        and ``p[label]`` at 1e-12 (Kuan & Mueller 2022): a certain, correct row scores ~1, a row
        with no mass on its label ~0.

    Returns
    -------
    ndarray, shape (n_items,)
        Scores in [0, 1] (dtype of ``pred_probs``); low = likely mislabelled.

    Examples
    --------
    >>> import numpy as np
    >>> get_label_quality_scores(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    array([0.9, 0.2])
    """
    if method not in RANKING_METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(RANKING_METHODS)}, got {method!r}")
    lab, probs = validate_label_inputs(labels, pred_probs)
    stats = row_stats(lab, probs, with_entropy=method == "confidence_weighted_entropy")
    return scores_from_stats(stats, method)
