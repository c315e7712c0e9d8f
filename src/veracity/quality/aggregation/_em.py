"""Shared machinery of the confusion-matrix EM family (Dawid-Skene, one-coin, MACE).

The answers are held as a sparse count matrix ``A`` of shape ``(n_workers * n_classes, n_tasks)``
with ``A[w * K + l, t]`` = number of times worker ``w`` answered ``l`` on task ``t``. Then

* E-step: the task log-posteriors are ``A.T @ L + log(prior)``, where
  ``L[w * K + l, k] = log P(answer l | true class k, worker w)``;
* M-step sufficient statistics: ``A @ T`` gives, for every worker and observed label, the
  expected count of each true class; reshaped it is the soft confusion count tensor.

Both are sparse-dense products, so an EM step costs O(n_responses * n_classes) with no Python loop
over tasks or workers. Tasks are split into contiguous shards: the E-step of a shard needs only
its own columns, and the M-step statistics are a sum over shards, so the same loop runs through
any executor (``map`` over shards, reduce by summing) and gives the local result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

from veracity.errors import ConvergenceWarning
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray

__all__ = [
    "ConfusionModel",
    "EMFit",
    "Shard",
    "build_shards",
    "fit_confusion_em",
    "local_map",
    "softmax_rows",
]


def local_map(fn: Callable[[Any], Any], shards: Sequence[Any]) -> list[Any]:
    """Run ``fn`` over ``shards`` in this process, in order."""
    return [fn(s) for s in shards]


def softmax_rows(logits: FloatArray) -> FloatArray:
    """Row-wise softmax of ``logits`` (n, K), computed stably."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class Shard:
    """One contiguous block of tasks ``[task_lo, task_hi)`` with its answers as sparse counts."""

    __slots__ = ("a", "at", "gold_label", "gold_pos", "n_classes", "task_hi", "task_lo")

    def __init__(
        self,
        a: sp.csr_matrix,
        at: sp.csr_matrix,
        task_lo: int,
        task_hi: int,
        n_classes: int,
        gold_pos: IntArray,
        gold_label: IntArray,
    ) -> None:
        self.a = a  # (W*K, T_s)
        self.at = at  # (T_s, W*K)
        self.task_lo = task_lo
        self.task_hi = task_hi
        self.n_classes = n_classes
        self.gold_pos = gold_pos  # positions (within the shard) of gold tasks
        self.gold_label = gold_label

    def vote_probas(self) -> FloatArray:
        """Majority-vote class shares of the shard's tasks, shape (T_s, K)."""
        k = self.n_classes
        selector = sp.csr_matrix(
            (np.ones(self.a.shape[0]), (np.arange(self.a.shape[0]), np.arange(self.a.shape[0]) % k)),
            shape=(self.a.shape[0], k),
        )
        counts = np.asarray((self.at @ selector).todense(), dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        empty = totals[:, 0] == 0
        totals[empty] = 1.0
        probas = counts / totals
        probas[empty] = 1.0 / k
        return self._clamp(probas)

    def _clamp(self, probas: FloatArray) -> FloatArray:
        if self.gold_pos.size:
            probas[self.gold_pos] = 0.0
            probas[self.gold_pos, self.gold_label] = 1.0
        return probas

    def logits(self, log_conf_flat: FloatArray, log_prior: FloatArray) -> FloatArray:
        """Unnormalised log-posteriors of the shard's tasks, shape (T_s, K)."""
        out = np.asarray(self.at @ log_conf_flat)
        out += log_prior
        return out


def _stats(shard: Shard, probas: FloatArray) -> FloatArray:
    return np.asarray(shard.a @ probas)


def shard_init_step(shard: Shard, gold_only: bool = False) -> tuple[FloatArray, FloatArray, float]:
    """M-step statistics of the shard under the initialisation: majority vote, or gold only."""
    probas = shard.vote_probas()
    if gold_only:
        keep = np.zeros(probas.shape[0], dtype=bool)
        keep[shard.gold_pos] = True
        probas[~keep] = 0.0
    return _stats(shard, probas), probas.sum(axis=0), 0.0


def shard_em_step(shard: Shard, params: tuple[FloatArray, FloatArray]) -> tuple[FloatArray, FloatArray, float]:
    """E-step on a shard followed by its M-step statistics and log-likelihood contribution."""
    log_conf_flat, log_prior = params
    logits = shard.logits(log_conf_flat, log_prior)
    norm = logsumexp(logits, axis=1)
    loglik = float(norm.sum())
    if shard.gold_pos.size:
        loglik += float((logits[shard.gold_pos, shard.gold_label] - norm[shard.gold_pos]).sum())
    probas = shard._clamp(np.exp(logits - norm[:, None]))
    return _stats(shard, probas), probas.sum(axis=0), loglik


def shard_logits(shard: Shard, params: tuple[FloatArray, FloatArray]) -> FloatArray:
    """Final log-posteriors (unnormalised) of the shard's tasks."""
    return shard.logits(*params)


def build_shards(
    responses: Responses,
    *,
    n_shards: int = 1,
    gold_idx: IntArray | None = None,
    gold_label: IntArray | None = None,
) -> list[Shard]:
    """Split ``responses`` by task into ``n_shards`` contiguous shards of sparse counts."""
    k = responses.n_classes
    n_rows = responses.n_workers * k
    n_tasks = responses.n_tasks
    n_shards = max(1, min(int(n_shards), max(n_tasks, 1)))
    bounds = np.linspace(0, n_tasks, n_shards + 1).round().astype(np.int64)
    row = responses.worker_idx * k + responses.label
    order = np.argsort(responses.task_idx, kind="stable")
    t_sorted = responses.task_idx[order]
    r_sorted = row[order]
    cut = np.searchsorted(t_sorted, bounds)
    if gold_idx is None:
        gold_idx = np.zeros(0, dtype=np.int64)
        gold_label = np.zeros(0, dtype=np.int64)
    assert gold_label is not None
    shards = []
    for s in range(n_shards):
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        t_s = t_sorted[cut[s] : cut[s + 1]] - lo
        r_s = r_sorted[cut[s] : cut[s + 1]]
        a = sp.csr_matrix(
            (np.ones(t_s.shape[0], dtype=np.float64), (r_s, t_s)), shape=(n_rows, hi - lo)
        )  # duplicates are summed: every answer is a vote
        a.sum_duplicates()
        at = a.T.tocsr()
        in_shard = (gold_idx >= lo) & (gold_idx < hi)
        shards.append(Shard(a, at, lo, hi, k, gold_idx[in_shard] - lo, gold_label[in_shard]))
    return shards


class ConfusionModel(Protocol):
    """A member of the confusion-matrix family: turns soft counts into log-parameters."""

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        """From soft counts ``(W, K_true, K_obs)`` and class totals ``(K,)`` return
        ``log_conf`` ``(W, K_true, K_obs)`` and ``log_prior`` ``(K,)``."""
        ...


@dataclass
class EMFit:
    """Outcome of :func:`fit_confusion_em`."""

    logits: FloatArray  # (n_tasks, K) unnormalised log-posteriors
    log_conf: FloatArray  # (W, K, K)
    log_prior: FloatArray  # (K,)
    n_iter: int
    converged: bool
    log_likelihood_history: list[float] = field(default_factory=list)


def _flat(log_conf: FloatArray) -> FloatArray:
    w, k, _ = log_conf.shape
    return np.ascontiguousarray(log_conf.transpose(0, 2, 1).reshape(w * k, k))


def _reduce(
    results: list[tuple[FloatArray, FloatArray, float]], n_workers: int, k: int
) -> tuple[FloatArray, FloatArray, float]:
    stats = results[0][0].copy()
    totals = results[0][1].copy()
    loglik = results[0][2]
    for s, tot, ll in results[1:]:
        stats += s
        totals += tot
        loglik += ll
    counts = stats.reshape(n_workers, k, k).transpose(0, 2, 1)  # (W, K_true, K_obs)
    return np.ascontiguousarray(counts), totals, loglik


def fit_confusion_em(
    model: ConfusionModel,
    shards: list[Shard],
    *,
    n_workers: int,
    n_classes: int,
    n_responses: int,
    n_iter: int,
    tol: float,
    executor: Executor | None = None,
    name: str = "EM",
    min_gold_init: int = 10,
) -> EMFit:
    """Run EM for ``model`` over ``shards``; the map/reduce goes through ``executor``.

    Initialisation: the first M-step uses majority-vote posteriors, or, when at least
    ``min_gold_init`` gold tasks are given, the gold tasks alone (semi-supervised EM: gold decides
    which way the workers lean, and workers without gold answers start at the crowd's prior).
    Convergence: the change of the mean log-likelihood per answer is below ``tol``. Stopping at
    ``n_iter`` without it emits :class:`~veracity.errors.ConvergenceWarning`.
    """
    run = executor.map if executor is not None else local_map
    k = n_classes
    n_gold = sum(int(s.gold_pos.size) for s in shards)
    init = partial(shard_init_step, gold_only=n_gold >= min_gold_init)
    counts, totals, _ = _reduce(run(init, shards), n_workers, k)
    log_conf, log_prior = model.m_step(counts, totals)
    history: list[float] = []
    converged = False
    it = 0
    scale = 1.0 / max(n_responses, 1)
    for it in range(1, n_iter + 1):  # noqa: B007 - it is the number of iterations run
        params = (_flat(log_conf), log_prior)
        counts, totals, loglik = _reduce(run(partial(shard_em_step, params=params), shards), n_workers, k)
        history.append(loglik)
        log_conf, log_prior = model.m_step(counts, totals)
        if len(history) > 1 and abs(history[-1] - history[-2]) * scale < tol:
            converged = True
            break
    if not converged and n_iter > 0:
        warnings.warn(
            f"{name} did not converge in n_iter={n_iter} iterations (tol={tol}); increase n_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    params = (_flat(log_conf), log_prior)
    parts = run(partial(shard_logits, params=params), shards)
    logits = np.concatenate(parts, axis=0) if parts else np.zeros((0, k))
    return EMFit(logits, log_conf, log_prior, it, converged, history)


def best_temperature(loo_logits: FloatArray, own_log: FloatArray) -> float:
    """Temperature ``tau`` maximising ``sum_i log sum_k softmax(loo_logits_i / tau)_k exp(own_log_ik)``.

    ``loo_logits`` (m, K) are task log-posteriors without answer ``i``; ``own_log`` (m, K) is
    ``log P(answer_i | class k)``. Golden-section search on ``log tau`` in [log 0.25, log 50].
    """
    if loo_logits.shape[0] == 0:
        return 1.0
    loo = loo_logits - loo_logits.max(axis=1, keepdims=True)
    conf_own = np.exp(own_log)

    def neg_ll(log_tau: float) -> float:
        z = loo / math.exp(log_tau)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        pred = (p * conf_own).sum(axis=1) / p.sum(axis=1)
        return -float(np.log(np.maximum(pred, 1e-300)).sum())

    lo, hi = math.log(0.25), math.log(50.0)
    g = (math.sqrt(5) - 1) / 2
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = neg_ll(c), neg_ll(d)
    for _ in range(20):
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo)
            fc = neg_ll(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo)
            fd = neg_ll(d)
    return math.exp((lo + hi) / 2)


def fit_temperature(
    logits: FloatArray,
    log_conf: FloatArray | Callable[[IntArray], FloatArray],
    responses: Responses,
    *,
    rng: np.random.Generator,
    exclude: IntArray | None = None,
    max_answers: int = 50_000,
) -> float:
    """In-sample version of :func:`best_temperature` over a sample of ``responses``.

    ``log_conf`` is the ``(W, K, K)`` log-confusion tensor, or a function of answer indices
    ``(m,)`` returning ``log P(answer | class k)`` of shape ``(m, K)``. Uses no gold labels.
    """
    n = responses.n_responses
    if n == 0:
        return 1.0
    mask = np.ones(n, dtype=bool)
    if exclude is not None and exclude.size:
        gold_task = np.zeros(responses.n_tasks, dtype=bool)
        gold_task[exclude] = True
        mask &= ~gold_task[responses.task_idx]
    idx = np.flatnonzero(mask)
    if idx.size > max_answers:
        idx = np.sort(rng.choice(idx, size=max_answers, replace=False))
    own = log_conf(idx) if callable(log_conf) else log_conf[responses.worker_idx[idx], :, responses.label[idx]]
    return best_temperature(logits[responses.task_idx[idx]] - own, own)
