"""Base class of the confusion-matrix EM aggregators (Dawid-Skene, one-coin, MACE)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from veracity.errors import InvalidInputError
from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest, worker_answer_counts
from veracity.quality._validation import check_positive, check_random_state
from veracity.quality.aggregation._em import (
    ConfusionModel,
    EMFit,
    Shard,
    _flat,
    best_temperature_and_score,
    build_shards,
    count_matrix,
    fit_confusion_em,
    gold_temperature_and_score,
    softmax_rows,
)
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray, RandomState

__all__ = ["GOLD_CALIBRATION_MIN", "Calibrate", "Calibration", "ConfusionEMAggregator", "check_calibrate"]

_CALIBRATION_STEPS = 2  # EM steps per fold when refitting for calibration
_SCORED_PER_FOLD = 25_000  # held-out answers per fold that score a temperature
_THREADED_MIN = 100_000  # answers from which EM and the calibration folds run on threads
_TASKS_PER_SHARD = 50_000  # largest task block of the threaded EM


def _cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


class _PoolMap:
    """:class:`~veracity.types.Executor` over a thread pool, results in shard order."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def map(self, fn: Callable[[Any], Any], shards: Iterable[Any]) -> list[Any]:
        return list(self.pool.map(fn, shards))
#: Held-out gold tasks (with answers) from which the posterior temperature is fitted on gold
#: rather than on held-out answers (see ``ConfusionEMAggregator._cross_fit_temperature``).
GOLD_CALIBRATION_MIN = 20
#: ``calibrate`` of the aggregators: ``True`` (gold when there is enough, else held-out answers),
#: ``"gold"`` (gold only, else none) or ``False``.
Calibrate = bool | Literal["gold"]


def check_calibrate(value: Any) -> None:
    """Reject anything but ``True``, ``False`` and ``"gold"`` (``1``/``0`` included)."""
    if not (isinstance(value, bool) or value == "gold"):
        raise InvalidInputError(f"calibrate must be True, False or 'gold', got {value!r}")


@dataclass(frozen=True)
class Calibration:
    """Outcome of the posterior temperature fit.

    ``source`` is ``"gold"`` (fitted on held-out gold tasks), ``"answers"`` (on held-out answers)
    or ``"none"``; ``score`` is the mean held-out log-likelihood per gold task or per answer.
    ``gold_idx`` and ``gold_logits`` are the gold tasks with answers and their out-of-fold,
    untempered log-posteriors from their answers alone (also kept when the answers decide).
    """

    temperature: float
    source: str
    score: float
    gold_idx: IntArray
    gold_logits: FloatArray

    @classmethod
    def identity(cls) -> Calibration:
        return cls(1.0, "none", float("nan"), np.zeros(0, dtype=np.int64), np.zeros((0, 0)))


class ConfusionEMAggregator(BaseAggregator):
    """EM over a per-worker confusion model; subclasses provide :meth:`_model`."""

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        smoothing: float = 0.01,
        calibrate: Calibrate = True,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.calibrate = calibrate
        self.random_state = random_state
        self.executor = executor
        self.n_shards = n_shards
        self.result_ = None

    def _model(self, responses: Responses) -> ConfusionModel:
        raise NotImplementedError

    def _refit_model(self, responses: Responses, fitted: Any) -> ConfusionModel:
        """Model for the calibration refits; subclasses may reuse hyperparameters of ``fitted``."""
        return self._model(responses)

    def _n_shards(self) -> int:
        if self.n_shards is not None:
            return max(1, int(self.n_shards))
        if self.executor is None:
            return 1
        return max(1, int(getattr(self.executor, "n_shards", 1)))

    @contextmanager
    def _em_executor(self, responses: Responses) -> Iterator[tuple[Executor | None, int]]:
        """The executor and shard count of the main EM.

        Given neither, large inputs (:data:`_THREADED_MIN` answers) run on a thread pool of this
        process's CPUs: the E-step kernels (sparse products, numpy ufuncs) release the GIL. The
        shards are blocks of at most :data:`_TASKS_PER_SHARD` tasks and at least four, which
        keeps two threads busy on blocks that stay in a core's cache; their number depends on
        the input only, and the statistics are summed in shard order, so the result does not
        depend on how many threads ran.
        """
        threads = _cpu_count()
        given = self.executor is not None or self.n_shards is not None
        if given or responses.n_responses < _THREADED_MIN or threads < 2:
            yield self.executor, self._n_shards()
            return
        n_shards = max(4, -(-responses.n_tasks // _TASKS_PER_SHARD))
        with ThreadPoolExecutor(max_workers=min(threads, n_shards)) as pool:
            yield _PoolMap(pool), n_shards

    def fit_em(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> tuple[EMFit, Any]:
        """Run EM and return the raw fit and the model (used by ``auto`` and the services)."""
        if int(self.n_iter) < 0:
            check_positive("n_iter", self.n_iter)
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("smoothing", self.smoothing, allow_zero=True)
        check_calibrate(self.calibrate)
        model = self._model(responses)
        with self._em_executor(responses) as (executor, n_shards):
            shards = build_shards(responses, n_shards=n_shards, gold_idx=gold_idx, gold_label=gold_label)
            fit = fit_confusion_em(
                model,
                shards,
                n_workers=responses.n_workers,
                n_classes=responses.n_classes,
                n_responses=responses.n_responses,
                n_iter=int(self.n_iter),
                tol=float(self.tol),
                executor=executor,
                name=type(self).__name__,
            )
        return fit, model

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        self._gold_label = gold_label
        fit, model = self.fit_em(responses, gold_idx, gold_label)
        return self.result_from_fit(responses, fit, model, gold_idx)

    def _cross_fit_temperature(
        self, responses: Responses, fit: EMFit, model: Any, rng: np.random.Generator, gold_idx: IntArray
    ) -> Calibration:
        """Temperature of the posteriors, fitted out of sample with the tasks split in two folds.

        For each fold, the worker parameters are refitted on the *other* fold's tasks (a few EM
        steps warm-started from the full fit, so no M-step sees the held-out fold's answers or
        gold labels). The held-out fold then gives two kinds of evidence:

        - its answers on non-gold tasks (a sample of at most 25,000 per fold), each predicted from
          the rest of its task's answers and scored with :func:`best_temperature_and_score` (no
          gold needed);
        - its gold tasks, whose posteriors from their answers alone are scored against their gold
          labels with :func:`gold_temperature_and_score`.

        With at least :data:`GOLD_CALIBRATION_MIN` such gold tasks the temperature is fitted on
        them: held-out answers only measure agreement with the crowd, which overstates accuracy
        when workers share their mistakes, while gold measures agreement with the truth.
        Otherwise the answers decide.

        Both folds are rows of one sparse count matrix; on large inputs they run in two threads
        (the sparse products and numpy kernels release the GIL), with the same result.
        """
        n_t = responses.n_tasks
        if n_t < 4 or responses.n_responses < 20:
            return Calibration.identity()
        fold = rng.integers(0, 2, size=n_t)
        is_gold = np.zeros(n_t, dtype=bool)
        is_gold[gold_idx] = True
        answered = np.zeros(n_t, dtype=bool)
        answered[responses.task_idx] = True
        answer_fold = fold[responses.task_idx]
        scored = ~is_gold[responses.task_idx]
        samples = []
        for f in (0, 1):
            idx = np.flatnonzero(scored & (answer_fold == f))
            if idx.size == 0 or bool((answer_fold == f).all()):
                return Calibration.identity()
            if idx.size > _SCORED_PER_FOLD:
                idx = np.sort(rng.choice(idx, size=_SCORED_PER_FOLD, replace=False))
            samples.append(idx)
        at = count_matrix(responses)
        gold_label = self._gold_label
        k = responses.n_classes

        def held_out(f: int) -> tuple[FloatArray, FloatArray, IntArray, IntArray, FloatArray]:
            rows = np.flatnonzero(fold != f)
            g_keep = fold[gold_idx] != f
            shard = Shard(at[rows], 0, rows.size, k, np.searchsorted(rows, gold_idx[g_keep]), gold_label[g_keep])
            part = fit_confusion_em(
                self._refit_model(responses, model),
                [shard],
                n_workers=responses.n_workers,
                n_classes=k,
                n_responses=int(shard.at.data.sum()),
                n_iter=_CALIBRATION_STEPS,
                tol=0.0,
                init_params=(fit.log_conf, fit.log_prior),
                warn=False,
                final_logits=False,
            )
            flat = _flat(part.log_conf)
            idx = samples[f]
            own = part.log_conf[responses.worker_idx[idx], :, responses.label[idx]]
            loo = np.asarray(at[responses.task_idx[idx]] @ flat) + part.log_prior - own
            out = ~g_keep & answered[gold_idx]
            g_logits = np.asarray(at[gold_idx[out]] @ flat) + part.log_prior
            return loo, own, gold_idx[out], gold_label[out], g_logits

        if responses.n_responses >= _THREADED_MIN and _cpu_count() > 1:
            with ThreadPoolExecutor(max_workers=2) as pool:
                parts = list(pool.map(held_out, (0, 1)))
        else:
            parts = [held_out(0), held_out(1)]
        g_idx = np.concatenate([p[2] for p in parts])
        g_logits = np.concatenate([p[4] for p in parts])
        if g_idx.size >= GOLD_CALIBRATION_MIN:
            tau, score = gold_temperature_and_score(g_logits, np.concatenate([p[3] for p in parts]))
            source = "gold"
        else:
            loo, own = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
            tau, score = best_temperature_and_score(loo, own)
            source = "answers"
        return Calibration(tau, source, score, g_idx, g_logits)

    def result_from_fit(self, responses: Responses, fit: EMFit, model: Any, gold_idx: IntArray) -> AggregationResult:
        """Posteriors (temperature-calibrated when ``calibrate``), labels and worker skills."""
        rng = check_random_state(self.random_state)
        logits = fit.logits
        label_idx = argmax_lowest(logits)
        cal = Calibration.identity()
        if self.calibrate:
            cal = self._cross_fit_temperature(responses, fit, model, rng, gold_idx)
            if self.calibrate == "gold" and cal.source != "gold":
                cal = dataclasses.replace(cal, temperature=1.0, source="none", score=float("nan"))
        tau = cal.temperature
        probas: FloatArray = softmax_rows(logits / tau) if logits.size else logits
        gold_held = softmax_rows(cal.gold_logits / tau) if cal.gold_idx.size else cal.gold_logits
        conf = np.exp(fit.log_conf)
        prior = np.exp(fit.log_prior)
        accuracy = np.einsum("wkk,k->w", conf, prior)
        extras = {
            "temperature": tau,
            "temperature_source": cal.source,
            "heldout_loglik": cal.score,
            # out-of-fold posteriors of gold tasks from their answers alone (auto calibrates its pool on them)
            "gold_heldout": (cal.gold_idx, gold_held),
            **getattr(model, "extras", {}),
        }
        return AggregationResult(
            method=self.method,
            task_ids=responses.task_ids,
            worker_ids=responses.worker_ids,
            classes=responses.classes,
            probas=probas,
            label_idx=label_idx,
            worker_accuracy=accuracy,
            worker_n_answers=worker_answer_counts(responses),
            confusions=conf,
            priors=prior,
            n_iter=fit.n_iter,
            converged=fit.converged,
            log_likelihood_history=fit.log_likelihood_history,
            extras=extras,
        )
