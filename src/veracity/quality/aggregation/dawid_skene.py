"""Dawid-Skene with full confusion matrices, and its one-coin special case."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import gammaln

from veracity.errors import InvalidInputError
from veracity.quality._optimize import golden_minimize
from veracity.quality._validation import check_positive
from veracity.quality.aggregation._community import CommunityPrior, select_communities
from veracity.quality.aggregation._confusion import Calibrate, ConfusionEMAggregator
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, RandomState

__all__ = ["DawidSkene", "OneCoinDawidSkene"]

# M-steps at which the prior (mean and strength) is re-estimated; it is then frozen so that EM
# converges on a fixed objective.
_STRENGTH_UPDATES = frozenset({1, 4, 10})
_MAX_STRENGTH = 100.0
_DM_WORKERS = 800
_COMMUNITY_CANDIDATES = (1, 2, 4, 8, 16, 24, 32, 48)
_COMMUNITY_START = 2  # M-step at which the communities are fitted
_FEW_PER_ROW = 20  # answers per class below which a worker's confusion rows lean on the prior
_FEW_SHARE = 0.05  # share of answers from such workers above which communities are fitted
# Smallest crowd on which communities are fitted (see _needs_communities): workers, and answers
# on tasks with two or more answers per confusion cell (K * K).
_MIN_COMMUNITY_WORKERS = 10
_MIN_COMMUNITY_ANSWERS = 10
# "Better than chance" hyperprior on the crowd's accuracy a_pop: _CHANCE_PSEUDO pseudo-answers
# per class, right with probability halfway between chance (1/K) and 1.
_CHANCE_PSEUDO = 1.0
_MIN_ACC_STRENGTH = 1.0  # lower bound of the accuracy prior's strength (pseudo-answers per row)


def _log_normalize(x: FloatArray) -> FloatArray:
    """``log(x / x.sum(-1))``; the row sums are a BLAS product (fast for short rows)."""
    return np.log(x) - np.log(x @ np.ones(x.shape[-1]))[..., None]


def _bb_neg_log_marginal(log_s: float, correct: FloatArray, n: FloatArray, m: FloatArray) -> float:
    """Negative beta-binomial log marginal of every confusion row's (correct, total) counts under
    ``Beta(s * m_w, s * (1 - m_w))``; rows without answers contribute nothing."""
    s = math.exp(log_s)
    a = (s * m)[:, None]
    b = s - a
    val = gammaln(correct + a) + gammaln(n - correct + b) - gammaln(n + s) - gammaln(a) - gammaln(b) + gammaln(s)
    return -float(val.sum())


def _dm_neg_log_marginal(log_s: float, errors: FloatArray, q: FloatArray, off: FloatArray) -> float:
    """Negative Dirichlet-multinomial log marginal of every row's wrong answers ``errors``
    (W, K, K, zero diagonal) under ``Dir(s * q_k)`` over the classes ``l != k``."""
    s = math.exp(log_s)
    alpha = s * q + (1.0 - off)  # the diagonal (no errors there) contributes gammaln(1) - gammaln(1)
    row_n = errors.sum(axis=2)
    val = (
        gammaln(s) * np.count_nonzero(row_n)
        - gammaln(row_n[row_n > 0] + s).sum()
        + (gammaln(errors + alpha) - gammaln(alpha)).sum()
    )
    return -float(val)


class _FullConfusion:
    """M-step of Dawid-Skene with a nested hierarchical prior on each confusion row.

    Row ``k`` of worker ``w`` is split into the probability of a correct answer
    ``a_wk = pi_wkk`` and the distribution of the wrong answers ``e_wk = pi_wk. / (1 - a_wk)``
    (over ``l != k``), with independent priors

    * ``a_wk ~ Beta(s_acc * m_w, s_acc * (1 - m_w))``: ``m_w`` is the worker's overall accuracy
      (pooled over all of its answers, itself shrunk toward the crowd's), so a row with few
      answers borrows the worker's *error rate*;
    * ``e_wk ~ Dir(s_err * q_k)``: ``q_k`` is the crowd's pooled distribution of errors on class
      ``k``, so a row borrows the crowd's *error pattern* (which classes get confused with ``k``).

    Keeping the two strengths apart matters: error patterns are shared across a crowd much more
    than error rates are, and a single Dirichlet ``Dir(s * m)`` ties them together. With
    ``prior_strength="auto"`` both strengths are empirical-Bayes (type-II maximum likelihood)
    estimates: ``s_acc`` maximises the beta-binomial and ``s_err`` the Dirichlet-multinomial
    marginal likelihood of the workers' soft counts (Kim & Ghahramani 2012; Venanzi et al. 2014
    share strength across workers in the same spirit). The M-step returns the posterior means.

    Two guards keep tiny inputs away from the degenerate solutions of the DS likelihood (every
    worker "always answers l", which explains unanimous answers as well as correct workers do):
    the crowd's accuracy ``a_pop`` has a Beta hyperprior of K pseudo-answers with mean halfway
    between chance and 1 (workers are assumed better than chance until the answers say
    otherwise; with no task answered twice it is all there is), and ``s_acc`` is at least one
    pseudo-answer. Without the bound, rows that are all right or all
    wrong (the typical row of a tiny crowd) drive the marginal likelihood's ``s_acc`` toward 0,
    and a row without answers of its own then follows whatever soft counts leak into it. Both
    are negligible next to a few hundred answers.
    """

    def __init__(self, n_classes: int, smoothing: float, prior_strength: float | str | tuple[float, float]) -> None:
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.prior_strength = prior_strength
        if prior_strength == "auto":
            self.strength: tuple[float, float] = (1.0, 1.0)
        elif isinstance(prior_strength, tuple):
            self.strength = (float(prior_strength[0]), float(prior_strength[1]))
        else:
            self.strength = (float(prior_strength), float(prior_strength))  # type: ignore[arg-type]
        self.calls = 0
        self.means: tuple[FloatArray, FloatArray] | None = None
        self.extras: dict[str, Any] = {}

    def prior_means(self, counts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``m_w`` (W,) and ``q`` (K, K, zero diagonal) from soft counts (W, K, K)."""
        k = self.n_classes
        eps = max(self.smoothing, 1e-12)
        off = 1.0 - np.eye(k)
        pooled = counts.sum(axis=0)
        errors = (pooled + eps) * off
        q = errors / errors.sum(axis=1, keepdims=True)
        correct = np.einsum("wkk->w", counts)
        total = counts.sum(axis=(1, 2))
        n0 = _CHANCE_PSEUDO * k
        a_pop = (correct.sum() + n0 * (1.0 + 1.0 / k) / 2.0) / (total.sum() + n0)
        m = (correct + 2.0 * a_pop) / (total + 2.0)
        return np.clip(m, 1e-3, 1 - 1e-3), q

    def _fit_strengths(self, counts: FloatArray, m: FloatArray, q: FloatArray) -> tuple[float, float]:
        # the strengths are two numbers: an evenly spaced subset of workers pins them down
        n_w = counts.shape[0]
        sub = np.unique(np.linspace(0, n_w - 1, min(n_w, _DM_WORKERS)).astype(int))
        c = counts[sub]
        k = self.n_classes
        off = 1.0 - np.eye(k)
        correct = np.einsum("wkk->wk", c)
        n = c.sum(axis=2)
        errors = c * off
        bounds = (math.log(1e-2), math.log(_MAX_STRENGTH))
        s_acc = golden_minimize(
            lambda x: _bb_neg_log_marginal(x, correct, n, m[sub]), math.log(_MIN_ACC_STRENGTH), bounds[1], xatol=0.25
        )
        s_err = golden_minimize(lambda x: _dm_neg_log_marginal(x, errors, q, off), *bounds, xatol=0.25)
        return math.exp(s_acc), math.exp(s_err)

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = self.n_classes
        log_prior = _log_normalize(class_totals + 1.0)
        if k == 1:
            return np.zeros_like(counts), log_prior
        self.calls += 1
        if self.means is None or self.calls in _STRENGTH_UPDATES:
            self.means = self.prior_means(counts)
            if self.prior_strength == "auto" and counts.shape[0] > 1:
                self.strength = self._fit_strengths(counts, *self.means)
        m, q = self.means
        s_acc, s_err = self.strength
        eps = max(self.smoothing, 1e-12)
        eye = np.eye(k)
        correct = np.einsum("wkk->wk", counts)
        n = counts.sum(axis=2)
        acc = (correct + s_acc * m[:, None] + eps) / (n + s_acc + 2 * eps)
        errors = counts * (1.0 - eye) + s_err * q + eps * (1.0 - eye)
        err = errors / (errors @ np.ones(k))[..., None]
        conf = err * (1.0 - acc)[..., None]
        conf += acc[..., None] * eye
        self.extras = {"prior_strength": {"accuracy": s_acc, "errors": s_err}}
        return np.log(conf), log_prior


class _CommunityConfusion:
    """M-step of Dawid-Skene with the community prior of :mod:`._community`.

    The first M-step (on majority-vote or gold counts) uses the single population prior of
    :class:`_FullConfusion`; the communities are fitted on the counts of the first E-step, which
    are much cleaner than the vote shares (the number of communities by BIC when
    ``communities`` is None), refined at the M-steps in ``_STRENGTH_UPDATES`` and then frozen.
    The workers' community probabilities and posterior-mean confusion matrices are recomputed at
    every M-step.
    """

    def __init__(self, n_classes: int, smoothing: float, communities: int | None) -> None:
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.communities = communities  # None: choose by BIC
        self.population = _FullConfusion(n_classes, smoothing, "auto")
        self.prior: CommunityPrior | None = None
        self.frozen = False
        self.resp: FloatArray | None = None
        self.calls = 0
        self.extras: dict[str, Any] = {}

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = self.n_classes
        self.calls += 1
        if k == 1 or (self.prior is None and self.calls < _COMMUNITY_START):
            out = self.population.m_step(counts, class_totals)
            self.extras = dict(self.population.extras)
            return out
        eps = max(self.smoothing, 1e-12)
        if self.prior is None:
            if self.communities is None:
                self.prior = select_communities(counts, _COMMUNITY_CANDIDATES, eps)
            else:
                self.prior = CommunityPrior(self.communities, eps)
                self.prior.fit(counts, n_iter=10)
        elif not self.frozen and self.calls in _STRENGTH_UPDATES:
            self.prior.fit(counts, n_iter=3)
        if not (self.frozen and self.resp is not None):
            self.resp = self.prior.posterior(counts)
        conf = np.maximum(self.prior.predictive(counts, self.resp), 1e-300)
        assert self.prior.strengths is not None and self.prior.log_weights is not None
        self.extras = {
            "communities": len(self.prior.strengths),
            "community_strengths": self.prior.strengths.tolist(),
            "community_weights": np.exp(self.prior.log_weights).tolist(),
        }
        return np.log(conf), _log_normalize(class_totals + 1.0)

    def frozen_copy(self) -> _CommunityConfusion | _FullConfusion:
        """The same fitted prior and worker communities, held fixed (for calibration refits)."""
        if self.prior is None:  # EM stopped before the communities were fitted
            return _FullConfusion(self.n_classes, self.smoothing, self.population.strength)
        out = _CommunityConfusion(self.n_classes, self.smoothing, self.communities)
        out.prior, out.resp, out.frozen = self.prior, self.resp, True
        return out


def _needs_communities(responses: Responses) -> bool:
    """Whether the community prior is worth fitting: at least ``_FEW_SHARE`` of the answers come
    from workers with fewer than ``_FEW_PER_ROW`` answers per class (their confusion rows are
    mostly prior). Otherwise every worker's own counts dominate and the single population prior
    does as well, without the mixture's fixed cost.

    Never on a crowd of fewer than ``_MIN_COMMUNITY_WORKERS`` (10) workers or with fewer than
    ``_MIN_COMMUNITY_ANSWERS * K**2`` (10 per confusion cell) answers on tasks answered more than
    once: a community's mean is a whole K x K matrix, which so few answers cannot pin down. Its
    rows for classes that (almost) nobody answered are then near uniform, i.e. at chance, and EM
    slides to "every worker always gives the same label". The population prior keeps each
    worker's accuracy on such rows (a worker right elsewhere is assumed right there too)."""
    k = max(responses.n_classes, 1)
    if responses.n_workers < _MIN_COMMUNITY_WORKERS:
        return False
    per_task = np.bincount(responses.task_idx, minlength=responses.n_tasks)
    if np.count_nonzero(per_task[responses.task_idx] >= 2) < _MIN_COMMUNITY_ANSWERS * k * k:
        return False
    per_worker = np.bincount(responses.worker_idx, minlength=responses.n_workers)
    few = per_worker < _FEW_PER_ROW * k
    return bool(per_worker[few].sum() >= _FEW_SHARE * max(responses.n_responses, 1))


class DawidSkene(ConfusionEMAggregator):
    r"""Dawid-Skene truth inference with a full confusion matrix per worker.

    Each worker :math:`w` answers :math:`l` on a task of true class :math:`k` with probability
    :math:`\pi^{(w)}_{kl}`; answers are independent given the true class, which has prior
    :math:`\rho_k`. EM alternates posteriors over true classes (E-step, in log space) with
    maximum a posteriori estimates of :math:`\pi` and :math:`\rho` (M-step).

    To keep workers with few answers from over-fitting, the confusion matrices have a prior that
    shares strength across workers (empirical Bayes: its parameters are fitted to the crowd by
    marginal likelihood, never to gold):

    * *population prior* (:class:`_FullConfusion`): each row's accuracy has a Beta prior centred
      on the worker's overall accuracy and its errors a Dirichlet prior centred on the crowd's
      pooled error pattern for that class, with two strengths fitted by type-II maximum
      likelihood (Kim & Ghahramani 2012 share priors across workers in the same way);
    * *communities* (:mod:`._community`): a mixture of Dirichlet populations, one mean matrix per
      kind of worker (careful, biased toward a favourite label, spammer, ...), the number of
      communities chosen by BIC, after Venanzi et al. (2014). A worker with few answers then
      borrows the whole shape of its community's matrix.

    ``communities="auto"`` fits the communities when at least 5% of the answers come from
    workers with fewer than 20 answers per class (their matrices are mostly prior); otherwise the
    workers' own counts dominate and the population prior alone is used, which also skips the
    mixture's fixed cost on large crowds. On tiny crowds (fewer than 10 workers or 10 answers
    per confusion cell on tasks answered more than once) the communities are never fitted, and
    the population prior assumes workers better than chance (see :class:`_FullConfusion`): the
    DS likelihood of a few answers is also maximised by degenerate solutions (every worker
    always answers the same label), which EM otherwise reaches, labelling unanimous tasks with a
    class nobody gave. With no task answered by two workers nothing can be learnt about the
    workers, and a skewed class prior may outweigh a single answer. ``prior_strength=0,
    communities=0`` gives the classical model, without these guards. Tasks answered by a single
    worker (and without gold) get posteriors but are left out
    of the worker statistics: they carry no information about that worker's reliability and
    would only reinforce its current matrix (see :class:`~._em.Shard`).

    Parameters
    ----------
    n_iter : int, default 100
        Maximum EM iterations; hitting it emits :class:`~veracity.errors.ConvergenceWarning`.
    tol : float, default 1e-5
        Stop when the mean log-likelihood per answer changes by less than this.
    smoothing : float, default 0.01
        Dirichlet pseudo-count added to every confusion cell and class-prior entry.
    prior_strength : "auto", float or (float, float), default "auto"
        Pseudo-answers of the population prior: one number for both, or (accuracy, errors).
        A number other than "auto" also turns the communities off unless ``communities`` is a
        positive integer.
    communities : "auto" or int, default "auto"
        Number of worker communities; 0 for the population prior only.
    calibrate : bool or "gold", default True
        Temper the posteriors so that they predict held-out answers best, or, given at least
        ``GOLD_CALIBRATION_MIN`` answered gold tasks, their gold labels (cross-fitted either way;
        see ``ConfusionEMAggregator._cross_fit_temperature``); this changes
        ``probas``/``confidence`` but never the chosen labels. ``"gold"`` tempers only from gold:
        for answers collected adaptively (more labels where the first ones disagreed), held-out
        answers are not like the kept ones, and the answer-fitted temperature is wrong.
    random_state : int, numpy Generator or None
        Only used to subsample answers for calibration.
    executor : Executor or None
        Runs the per-shard E-step / statistics (see :mod:`veracity.compute`); ``None`` = local.
    n_shards : int or None
        Task shards; default ``executor.n_shards``, or locally 1, and from 100,000 answers blocks
        of at most 50,000 tasks (at least 4) on a thread pool of this process's CPUs.

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

    H.-C. Kim and Z. Ghahramani. Bayesian classifier combination. AISTATS 2012.

    M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-based Bayesian aggregation
    models for crowdsourcing. WWW 2014. doi:10.1145/2566486.2567989

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
        prior_strength: float | str | tuple[float, float] = "auto",
        communities: int | str = "auto",
        calibrate: Calibrate = True,
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
        self.communities = communities

    def _refit_model(self, responses: Responses, fitted: Any) -> _FullConfusion | _CommunityConfusion:
        # calibration refits keep the prior chosen on all the data
        if isinstance(fitted, _CommunityConfusion):
            return fitted.frozen_copy()
        return _FullConfusion(responses.n_classes, float(self.smoothing), fitted.strength)

    def _model(self, responses: Responses) -> _FullConfusion | _CommunityConfusion:
        communities = self.communities
        if communities != "auto":
            if isinstance(communities, bool) or not isinstance(communities, (int, np.integer)) or communities < 0:
                raise InvalidInputError(f"communities must be 'auto' or an integer >= 0, got {communities!r}")
            if communities > 0:
                return _CommunityConfusion(responses.n_classes, float(self.smoothing), int(communities))
        elif self.prior_strength == "auto" and _needs_communities(responses):
            return _CommunityConfusion(responses.n_classes, float(self.smoothing), None)
        strength = self.prior_strength
        if strength != "auto":
            pair = tuple(strength) if isinstance(strength, (tuple, list)) else (strength, strength)
            if len(pair) != 2:
                raise InvalidInputError(f"prior_strength must be 'auto', a number or a pair, got {strength!r}")
            for v in pair:
                check_positive("prior_strength", float(v), allow_zero=True)
            strength = (float(pair[0]), float(pair[1]))
        return _FullConfusion(responses.n_classes, float(self.smoothing), strength)


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
        calibrate: Calibrate = True,
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
