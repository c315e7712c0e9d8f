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
from typing import Any, Literal, Protocol

import numpy as np
import scipy.sparse as sp

from veracity.errors import ConvergenceWarning
from veracity.quality._optimize import golden_minimize
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray

__all__ = [
    "ConfusionModel",
    "EMFit",
    "Shard",
    "build_shards",
    "count_matrix",
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
    """One contiguous block of tasks ``[task_lo, task_hi)`` with its answers as sparse counts.

    ``at[t, w * K + l]`` is the number of times worker ``w`` answered ``l`` on task ``task_lo + t``.
    ``solo`` marks the tasks answered by a single worker and without gold: they tell nothing
    about that worker's reliability (their posterior is the worker's own confusion column times
    the class prior), so they are left out of the M-step statistics, where they would only
    reinforce the worker's current matrix. Their posteriors are still computed.
    """

    __slots__ = ("at", "at_stats", "gold_label", "gold_pos", "n_classes", "solo", "task_hi", "task_lo")

    def __init__(
        self,
        at: sp.csr_matrix,
        task_lo: int,
        task_hi: int,
        n_classes: int,
        gold_pos: IntArray,
        gold_label: IntArray,
    ) -> None:
        self.at = at  # (T_s, W*K)
        self.task_lo = task_lo
        self.task_hi = task_hi
        self.n_classes = n_classes
        self.gold_pos = gold_pos  # positions (within the shard) of gold tasks
        self.gold_label = gold_label
        self.solo = _solo_tasks(at, n_classes)
        self.solo[gold_pos] = False
        self.at_stats = _without_rows(at, self.solo)  # the answers that enter the M-step statistics

    def vote_probas(self) -> FloatArray:
        """Majority-vote class shares of the shard's tasks, shape (T_s, K)."""
        k = self.n_classes
        n_cols = self.at.shape[1]
        selector = sp.csr_matrix((np.ones(n_cols), (np.arange(n_cols), np.arange(n_cols) % k)), shape=(n_cols, k))
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


def _solo_tasks(at: sp.csr_matrix, n_classes: int) -> np.ndarray:
    """Tasks (rows of ``at``) whose answers all come from one worker."""
    n_rows = at.shape[0]
    out = np.zeros(n_rows, dtype=bool)
    starts = at.indptr[:-1]
    filled = np.flatnonzero(np.diff(at.indptr) > 0)
    if filled.size == 0:
        return out
    worker = at.indices // max(n_classes, 1)
    lo = np.minimum.reduceat(worker, starts[filled])
    hi = np.maximum.reduceat(worker, starts[filled])
    out[filled] = lo == hi
    return out


def _without_rows(at: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``at`` with the values of ``rows`` (a mask) set to zero; the index arrays are shared.

    The M-step statistics then leave those tasks out with no per-step copy of the posteriors
    (a zero value adds exactly nothing, as a zeroed posterior row did).
    """
    if not rows.any():
        return at
    data = at.data.copy()
    data[np.repeat(rows, np.diff(at.indptr))] = 0.0
    return sp.csr_matrix((data, at.indices, at.indptr), shape=at.shape)


def _stats(shard: Shard, probas: FloatArray) -> FloatArray:
    # at.T is a CSC view of A: the product walks tasks in order and scatters into the small
    # (W*K, K) output, which is about twice as fast as the CSR product A @ probas.
    return np.asarray(shard.at_stats.T @ probas)


def _normalise(logits: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Posteriors (in place of ``logits``) and the log normaliser of each row."""
    # row reductions over the few classes are done column by column: numpy's axis=1 reduce
    # over short rows is several times slower
    peak = _row_max(logits)
    logits -= peak[:, None]
    np.exp(logits, out=logits)
    total = _row_sum(logits)
    logits /= total[:, None]
    return logits, peak + np.log(total)


def _row_max(x: FloatArray) -> FloatArray:
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(out, x[:, j], out=out)
    return out


def _row_sum(x: FloatArray) -> FloatArray:
    """Sum over the last axis as a matrix-vector product (BLAS), much faster for short rows."""
    return x @ np.ones(x.shape[-1])


def shard_init_step(shard: Shard, gold_only: bool = False) -> tuple[FloatArray, FloatArray, float]:
    """M-step statistics of the shard under the initialisation: majority vote, or gold only."""
    probas = shard.vote_probas()
    if gold_only:
        keep = np.zeros(probas.shape[0], dtype=bool)
        keep[shard.gold_pos] = True
        probas[~keep] = 0.0
    # The class prior counts every task; only the worker statistics leave out the solo ones.
    return _stats(shard, probas), probas.sum(axis=0), 0.0


def shard_em_step(shard: Shard, params: tuple[FloatArray, FloatArray]) -> tuple[FloatArray, FloatArray, float]:
    """E-step on a shard followed by its M-step statistics and log-likelihood contribution."""
    log_conf_flat, log_prior = params
    logits = shard.logits(log_conf_flat, log_prior)
    gold_logits = logits[shard.gold_pos, shard.gold_label] if shard.gold_pos.size else None
    probas, norm = _normalise(logits)
    loglik = float(norm.sum())
    if gold_logits is not None:
        loglik += float((gold_logits - norm[shard.gold_pos]).sum())
    probas = shard._clamp(probas)
    return _stats(shard, probas), probas.sum(axis=0), loglik


def shard_logits(shard: Shard, params: tuple[FloatArray, FloatArray]) -> FloatArray:
    """Final log-posteriors (unnormalised) of the shard's tasks."""
    return shard.logits(*params)


def count_matrix(responses: Responses) -> sp.csr_matrix:
    """The answers as sparse counts ``(n_tasks, n_workers * K)``: entry ``[t, w * K + l]`` is the
    number of times worker ``w`` answered ``l`` on task ``t``."""
    k = responses.n_classes
    col = responses.worker_idx * k + responses.label
    # COO -> CSR is a counting sort by task; repeated (task, worker, label) rows are summed, so
    # every answer is a vote.
    return sp.csr_matrix(
        (np.ones(responses.n_responses, dtype=np.float64), (responses.task_idx, col)),
        shape=(responses.n_tasks, responses.n_workers * k),
    )


def build_shards(
    responses: Responses,
    *,
    n_shards: int = 1,
    gold_idx: IntArray | None = None,
    gold_label: IntArray | None = None,
) -> list[Shard]:
    """Split ``responses`` by task into ``n_shards`` contiguous shards of sparse counts."""
    k = responses.n_classes
    n_tasks = responses.n_tasks
    n_shards = max(1, min(int(n_shards), max(n_tasks, 1)))
    bounds = np.linspace(0, n_tasks, n_shards + 1).round().astype(np.int64)
    at_all = count_matrix(responses)
    if gold_idx is None or gold_label is None:
        gold_idx = np.zeros(0, dtype=np.int64)
        gold_label = np.zeros(0, dtype=np.int64)
    shards = []
    for s in range(n_shards):
        lo, hi = int(bounds[s]), int(bounds[s + 1])
        at = at_all[lo:hi] if n_shards > 1 else at_all
        in_shard = (gold_idx >= lo) & (gold_idx < hi)
        shards.append(Shard(at, lo, hi, k, gold_idx[in_shard] - lo, gold_label[in_shard]))
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
    init_params: tuple[FloatArray, FloatArray] | None = None,
    warn: bool = True,
    final_logits: bool = True,
) -> EMFit:
    """Run EM for ``model`` over ``shards``; the map/reduce goes through ``executor``.

    Initialisation: the first M-step uses majority-vote posteriors, or, when at least
    ``min_gold_init`` gold tasks are given, the gold tasks alone (semi-supervised EM: gold decides
    which way the workers lean, and workers without gold answers start at the crowd's prior).
    ``init_params`` (``log_conf``, ``log_prior``) starts from given parameters instead;
    ``final_logits=False`` skips the last E-step (only the parameters are wanted).
    Convergence: the change of the mean log-likelihood per answer is below ``tol``. Stopping at
    ``n_iter`` without it emits :class:`~veracity.errors.ConvergenceWarning`.
    """
    run = executor.map if executor is not None else local_map
    k = n_classes
    if init_params is None:
        n_gold = sum(int(s.gold_pos.size) for s in shards)
        init = partial(shard_init_step, gold_only=n_gold >= min_gold_init)
        counts, totals, _ = _reduce(run(init, shards), n_workers, k)
        log_conf, log_prior = model.m_step(counts, totals)
    else:
        log_conf, log_prior = init_params
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
    if warn and not converged and n_iter > 0:
        warnings.warn(
            f"{name} did not converge in n_iter={n_iter} iterations (tol={tol}); increase n_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not final_logits:
        return EMFit(np.zeros((0, k)), log_conf, log_prior, it, converged, history)
    params = (_flat(log_conf), log_prior)
    parts = run(partial(shard_logits, params=params), shards)
    logits = np.concatenate(parts, axis=0) if parts else np.zeros((0, k))
    return EMFit(logits, log_conf, log_prior, it, converged, history)


def best_temperature(loo_logits: FloatArray, own_log: FloatArray) -> float:
    """Temperature only; see :func:`best_temperature_and_score`."""
    return best_temperature_and_score(loo_logits, own_log)[0]


def best_temperature_and_score(loo_logits: FloatArray, own_log: FloatArray) -> tuple[float, float]:
    """Temperature ``tau`` maximising ``sum_i log sum_k softmax(loo_logits_i / tau)_k exp(own_log_ik)``.

    ``loo_logits`` (m, K) are task log-posteriors without answer ``i``; ``own_log`` (m, K) is
    ``log P(answer_i | class k)``. Golden-section search on ``log tau`` in [log 0.25, log 50].
    Also returns the mean held-out log-likelihood per answer at that temperature.
    """
    if loo_logits.shape[0] == 0:
        return 1.0, 0.0
    # every row's largest value is 0, and stays 0 after dividing by tau: no overflow in exp
    loo = loo_logits - _row_max(loo_logits)[:, None]
    conf_own = np.exp(own_log)

    def neg_ll(log_tau: float) -> float:
        p = np.exp(loo / math.exp(log_tau))
        pred = np.einsum("ij,ij->i", p, conf_own) / _row_sum(p)
        return -float(np.log(np.maximum(pred, 1e-300)).sum())

    best = golden_minimize(neg_ll, math.log(0.25), math.log(50.0), xatol=5e-4)
    return math.exp(best), -neg_ll(best) / loo_logits.shape[0]


def gold_temperature_and_score(
    logits: FloatArray, labels: IntArray, *, loss: Literal["log", "brier"] = "log"
) -> tuple[float, float]:
    """Temperature ``tau`` that best predicts known true classes from ``softmax(logits / tau)``.

    Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017,
    arXiv:1706.04599) fitted on gold tasks: ``loss="log"`` minimises the negative log-likelihood
    of ``labels``; ``loss="brier"`` the Brier score, which stays bounded when a posterior puts
    (almost) no mass on a gold label, so that one such task cannot decide the fit. Same search as
    :func:`best_temperature_and_score`. Also returns the mean log-likelihood per item at ``tau``.
    """
    if logits.shape[0] == 0:
        return 1.0, 0.0
    z0 = logits - _row_max(logits)[:, None]  # row maxima 0, also after dividing by tau
    rows = np.arange(z0.shape[0])

    def tempered(log_tau: float) -> FloatArray:
        return z0 / math.exp(log_tau)

    def neg_ll(log_tau: float) -> float:
        z = tempered(log_tau)
        return -float((z[rows, labels] - np.log(_row_sum(np.exp(z)))).sum())

    def brier(log_tau: float) -> float:
        p = np.exp(tempered(log_tau))
        p /= _row_sum(p)[:, None]
        p[rows, labels] -= 1.0
        return float(np.einsum("ij,ij->", p, p))

    best = golden_minimize(neg_ll if loss == "log" else brier, math.log(0.25), math.log(50.0), xatol=5e-4)
    return math.exp(best), -neg_ll(best) / logits.shape[0]


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
