"""Dawid-Skene with full confusion matrices, and its one-coin special case."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from veracity.quality._validation import check_positive
from veracity.quality.aggregation._confusion import ConfusionEMAggregator
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, RandomState

__all__ = ["DawidSkene", "OneCoinDawidSkene"]

# M-steps at which the prior (mean and strength) is re-estimated; it is then frozen so that EM
# converges on a fixed objective.
_STRENGTH_UPDATES = frozenset({1, 4, 10})
_MAX_STRENGTH = 100.0
_DM_WORKERS = 800


def _log_normalize(x: FloatArray) -> FloatArray:
    """``log(x / x.sum(-1))``; the row sums are a BLAS product (fast for short rows)."""
    return np.log(x) - np.log(x @ np.ones(x.shape[-1]))[..., None]


def _dm_neg_log_marginal(log_s: float, counts: FloatArray, pop: FloatArray, row_n: FloatArray) -> float:
    """Negative Dirichlet-multinomial log marginal of every worker row under ``Dir(s * pop)``."""
    s = math.exp(log_s)
    alpha = s * pop  # (K, K) broadcast over workers
    val = (
        gammaln(s) * np.count_nonzero(row_n)
        - gammaln(row_n[row_n > 0] + s).sum()
        + (gammaln(counts + alpha) - gammaln(alpha)).sum()
    )
    return -float(val)


class _FullConfusion:
    """M-step of Dawid-Skene with a hierarchical Dirichlet prior on each confusion row.

    Row ``k`` of worker ``w`` has prior ``Dir(s * m_wk)`` with mean
    ``m_wk = a_w e_k + (1 - a_w) q_k``: ``a_w`` is the worker's overall accuracy (pooled over all
    its answers and itself shrunk toward the crowd's), ``q_k`` the crowd's distribution of errors
    on class ``k``. So a worker with few answers borrows its error *pattern* from the crowd and its
    error *rate* from all of its own answers.
    """

    def __init__(self, n_classes: int, smoothing: float, prior_strength: float | str) -> None:
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.prior_strength = prior_strength
        self.strength = 1.0 if prior_strength == "auto" else float(prior_strength)
        self.calls = 0
        self.mean: FloatArray | None = None
        self.extras: dict[str, Any] = {}

    def prior_mean(self, counts: FloatArray) -> FloatArray:
        k = self.n_classes
        eps = max(self.smoothing, 1e-12)
        eye = np.eye(k)
        pooled = counts.sum(axis=0)
        errors = pooled * (1 - eye) + eps
        q = errors / errors.sum(axis=1, keepdims=True)  # crowd's error distribution per true class
        correct = np.einsum("wkk->w", counts)
        total = counts.sum(axis=(1, 2))
        a_pop = (correct.sum() + eps) / (total.sum() + 2 * eps)
        a_w = (correct + 2.0 * a_pop) / (total + 2.0)
        if k == 1:
            return np.ones_like(counts)
        mean = a_w[:, None, None] * eye + (1 - a_w)[:, None, None] * q[None] * (1 - eye)
        return mean + eps

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        eps = max(self.smoothing, 1e-12)
        self.calls += 1
        if self.mean is None or self.calls in _STRENGTH_UPDATES:
            mean = self.prior_mean(counts)
            mean /= mean.sum(axis=2, keepdims=True)
            self.mean = mean
        mean = self.mean
        if self.prior_strength == "auto" and counts.shape[0] > 1 and self.calls in _STRENGTH_UPDATES:
            # the strength is a single number: an evenly spaced subset of workers pins it down
            sub = np.unique(np.linspace(0, counts.shape[0] - 1, min(counts.shape[0], _DM_WORKERS)).astype(int))
            row_n = counts[sub].sum(axis=2)
            res = minimize_scalar(
                _dm_neg_log_marginal,
                bounds=(math.log(1e-2), math.log(_MAX_STRENGTH)),
                args=(counts[sub], mean[sub], row_n),
                method="bounded",
                options={"xatol": 0.25},
            )
            self.strength = math.exp(float(res.x))
        post = counts + self.strength * mean + eps
        log_conf = _log_normalize(post)
        log_prior = _log_normalize(class_totals + 1.0)
        self.extras = {"prior_strength": self.strength}
        return log_conf, log_prior


class DawidSkene(ConfusionEMAggregator):
    r"""Dawid-Skene truth inference with a full confusion matrix per worker.

    Each worker :math:`w` answers :math:`l` on a task of true class :math:`k` with probability
    :math:`\pi^{(w)}_{kl}`; answers are independent given the true class, which has prior
    :math:`\rho_k`. EM alternates posteriors over true classes (E-step, in log space) with
    maximum a posteriori estimates of :math:`\pi` and :math:`\rho` (M-step).

    To keep workers with few answers from over-fitting, every row :math:`\pi^{(w)}_{k\cdot}`
    has a Dirichlet prior centred on the *population* confusion row (the pooled counts of all
    workers) with strength ``prior_strength`` pseudo-answers, so a worker's matrix is shrunk
    toward the crowd's until its own evidence outweighs it. With ``prior_strength="auto"`` the
    strength is chosen at every M-step by maximising the Dirichlet-multinomial marginal
    likelihood of the workers' soft counts (type-II maximum likelihood, an empirical-Bayes
    hierarchical prior). ``prior_strength=0`` gives the classical model.

    Parameters
    ----------
    n_iter : int, default 100
        Maximum EM iterations; hitting it emits :class:`~veracity.errors.ConvergenceWarning`.
    tol : float, default 1e-5
        Stop when the mean log-likelihood per answer changes by less than this.
    smoothing : float, default 0.01
        Dirichlet pseudo-count added to every confusion cell and class-prior entry.
    prior_strength : float or "auto", default "auto"
        Pseudo-answers per confusion row pulling it toward the population row.
    calibrate : bool, default True
        Temper the posteriors so that they predict held-out answers best (no gold used); this
        changes ``probas``/``confidence`` but never the chosen labels.
    random_state : int, numpy Generator or None
        Only used to subsample answers for calibration.
    executor : Executor or None
        Runs the per-shard E-step / statistics (see :mod:`veracity.compute`); ``None`` = local.
    n_shards : int or None
        Task shards; default 1 locally or ``executor.n_shards``.

    Attributes
    ----------
    labels_ : ndarray, shape (n_tasks,)
    probas_ : ndarray, shape (n_tasks, n_classes)
    confusions_ : ndarray, shape (n_workers, n_classes, n_classes)
        ``confusions_[w, k, l]`` = P(answer ``l`` | true class ``k``, worker ``w``).
    priors_ : ndarray, shape (n_classes,)
    n_iter_, converged_, log_likelihood_history_, result_

    References
    ----------
    A. P. Dawid and A. M. Skene. Maximum likelihood estimation of observer error-rates using the
    EM algorithm. Journal of the Royal Statistical Society C 28(1):20-28, 1979.
    doi:10.2307/2346806

    Examples
    --------
    >>> from veracity.quality.aggregation import DawidSkene
    >>> ds = DawidSkene(random_state=0).fit(
    ...     {"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": ["x", "x", "y", "y", "y", "y"]}
    ... )
    >>> ds.labels_.tolist()
    ['x', 'y']
    """

    method = "ds"

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        smoothing: float = 0.01,
        prior_strength: float | str = "auto",
        calibrate: bool = True,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        super().__init__(
            n_iter=n_iter,
            tol=tol,
            smoothing=smoothing,
            calibrate=calibrate,
            random_state=random_state,
            executor=executor,
            n_shards=n_shards,
        )
        self.prior_strength = prior_strength

    def _refit_model(self, responses: Responses, fitted: Any) -> _FullConfusion:
        # calibration refits keep the prior strength chosen on all the data
        return _FullConfusion(responses.n_classes, float(self.smoothing), float(fitted.strength))

    def _model(self, responses: Responses) -> _FullConfusion:
        if self.prior_strength != "auto":
            check_positive("prior_strength", float(self.prior_strength), allow_zero=True)
        return _FullConfusion(responses.n_classes, float(self.smoothing), self.prior_strength)


class _OneCoin:
    """M-step of the one-coin model: one accuracy per worker, errors spread evenly."""

    def __init__(self, n_classes: int, smoothing: float, prior_strength: float) -> None:
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.prior_strength = prior_strength
        self.extras: dict[str, Any] = {}

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = self.n_classes
        eps = max(self.smoothing, 1e-12)
        correct = np.einsum("wkk->w", counts)
        total = counts.sum(axis=(1, 2))
        pop = (correct.sum() + eps) / (total.sum() + 2 * eps)
        s = self.prior_strength
        acc = (correct + s * pop + eps) / (total + s + 2 * eps)
        acc = np.clip(acc, 1e-9, 1 - 1e-9)
        off = np.log((1.0 - acc) / max(k - 1, 1))
        log_conf = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
        idx = np.arange(k)
        log_conf[:, idx, idx] = np.log(acc)[:, None]
        if k == 1:
            log_conf[:] = 0.0
        log_prior = _log_normalize(class_totals + 1.0)
        self.extras = {"prior_strength": s, "population_accuracy": float(pop)}
        return log_conf, log_prior


class OneCoinDawidSkene(ConfusionEMAggregator):
    r"""One-coin Dawid-Skene: each worker is right with probability :math:`p_w`, and wrong
    answers are spread evenly over the other classes.

    :math:`p_w` has a Beta prior centred on the crowd's pooled accuracy with ``prior_strength``
    pseudo-answers. Parameters are those of :class:`DawidSkene`.

    References
    ----------
    A. P. Dawid and A. M. Skene (1979), doi:10.2307/2346806; the one-coin special case as in
    Y. Zhang, X. Chen, D. Zhou, M. I. Jordan. Spectral Methods meet EM. JMLR 17(102), 2016.

    Examples
    --------
    >>> from veracity.quality.aggregation import OneCoinDawidSkene
    >>> m = OneCoinDawidSkene().fit({"task": [1, 1, 2, 2], "worker": [1, 2, 1, 2], "label": [0, 0, 1, 1]})
    >>> m.labels_.tolist()
    [0, 1]
    """

    method = "onecoin"

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        smoothing: float = 0.01,
        prior_strength: float = 2.0,
        calibrate: bool = True,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        super().__init__(
            n_iter=n_iter,
            tol=tol,
            smoothing=smoothing,
            calibrate=calibrate,
            random_state=random_state,
            executor=executor,
            n_shards=n_shards,
        )
        self.prior_strength = prior_strength

    def _model(self, responses: Responses) -> _OneCoin:
        return _OneCoin(responses.n_classes, float(self.smoothing), float(self.prior_strength))
