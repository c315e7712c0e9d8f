"""Percent agreement, Fleiss' kappa and Cohen's kappa on integer-coded answers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from veracity.errors import InvalidInputError
from veracity.quality.responses import Responses
from veracity.types import FloatArray

__all__ = ["cohen_kappa", "fleiss_kappa", "percent_agreement", "unit_counts"]


def unit_counts(responses: Responses) -> sp.csr_matrix:
    """Answers per task and class as a sparse ``(n_tasks, n_classes)`` matrix."""
    n = responses.n_responses
    return sp.csr_matrix(
        (np.ones(n), (responses.task_idx, responses.label)), shape=(responses.n_tasks, responses.n_classes)
    )


def _pair_stats(counts: sp.csr_matrix) -> tuple[FloatArray, FloatArray]:
    m = np.asarray(counts.sum(axis=1)).ravel()
    sq = np.asarray(counts.multiply(counts).sum(axis=1)).ravel()
    agree_pairs = sq - m  # sum_k n_k (n_k - 1)
    return m, agree_pairs


def percent_agreement(responses: Responses) -> float:
    """Mean, over tasks with two or more answers, of the share of answer pairs that agree.

    Examples
    --------
    >>> r = Responses.from_arrays(task=[1, 1, 2, 2], worker=[1, 2, 1, 2], label=["a", "a", "a", "b"])
    >>> percent_agreement(r)
    0.5
    """
    m, agree = _pair_stats(unit_counts(responses))
    ok = m >= 2
    if not ok.any():
        raise InvalidInputError("percent agreement needs at least one task with two or more answers")
    return float((agree[ok] / (m[ok] * (m[ok] - 1))).mean())


def fleiss_kappa(responses: Responses) -> float:
    r"""Fleiss' kappa for any number of raters per task.

    :math:`\kappa = (\bar P - P_e) / (1 - P_e)`, with :math:`\bar P` the mean pairwise agreement
    over tasks with two or more answers and :math:`P_e = \sum_k p_k^2` from the pooled label
    shares of those tasks. With a constant number of raters per task this is Fleiss (1971);
    otherwise it is its usual generalisation.

    References
    ----------
    J. L. Fleiss. Measuring nominal scale agreement among many raters. Psychological Bulletin
    76(5):378-382, 1971. doi:10.1037/h0031619
    """
    counts = unit_counts(responses)
    m, agree = _pair_stats(counts)
    ok = m >= 2
    if not ok.any():
        raise InvalidInputError("Fleiss' kappa needs at least one task with two or more answers")
    p_bar = float((agree[ok] / (m[ok] * (m[ok] - 1))).mean())
    shares = np.asarray(counts[ok].sum(axis=0)).ravel()
    shares /= shares.sum()
    p_e = float((shares**2).sum())
    if p_e >= 1.0:
        return 1.0 if p_bar >= 1.0 else 0.0
    return (p_bar - p_e) / (1.0 - p_e)


def cohen_kappa(
    responses: Responses, *, weights: str | None = None, raters: tuple[object, object] | None = None
) -> float:
    r"""Cohen's kappa between two raters on the tasks both answered.

    Parameters
    ----------
    responses : Responses
        Exactly two workers, or name them with ``raters``.
    weights : None, "linear" or "quadratic"
        Weighted kappa for ordered classes (class code order); ``None`` is Cohen (1960).
    raters : pair of worker ids, optional

    Notes
    -----
    :math:`\kappa = 1 - \sum w_{ij} o_{ij} / \sum w_{ij} e_{ij}` with observed joint shares
    :math:`o` and the product of the marginals :math:`e`. A worker's repeated answer on a task:
    its last answer counts.

    References
    ----------
    J. Cohen. A coefficient of agreement for nominal scales. Educational and Psychological
    Measurement 20(1):37-46, 1960. doi:10.1177/001316446002000104
    """
    if raters is None:
        if responses.n_workers != 2:
            raise InvalidInputError(
                f"Cohen's kappa needs exactly two raters, got {responses.n_workers}; "
                "pass raters=(a, b) or use metric='fleiss' or 'krippendorff'"
            )
        a, b = 0, 1
    else:
        codes = [np.flatnonzero(responses.worker_ids.astype(object) == r) for r in raters]
        if any(c.size == 0 for c in codes):
            raise InvalidInputError(f"raters {raters!r} are not both among the workers")
        a, b = int(codes[0][0]), int(codes[1][0])
    r = responses.deduplicate("last")
    n_t, k = r.n_tasks, r.n_classes
    la = np.full(n_t, -1)
    lb = np.full(n_t, -1)
    sel_a = r.worker_idx == a
    sel_b = r.worker_idx == b
    la[r.task_idx[sel_a]] = r.label[sel_a]
    lb[r.task_idx[sel_b]] = r.label[sel_b]
    both = (la >= 0) & (lb >= 0)
    if not both.any():
        raise InvalidInputError("Cohen's kappa needs tasks answered by both raters; they share none")
    obs = np.bincount(la[both] * k + lb[both], minlength=k * k).reshape(k, k).astype(np.float64)
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    idx = np.arange(k)
    if weights is None:
        w = (idx[:, None] != idx[None, :]).astype(np.float64)
    elif weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    elif weights == "quadratic":
        w = ((idx[:, None] - idx[None, :]) ** 2).astype(np.float64)
    else:
        raise InvalidInputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    denom = float((w * exp).sum())
    if denom == 0.0:
        return 1.0
    return 1.0 - float((w * obs).sum()) / denom
