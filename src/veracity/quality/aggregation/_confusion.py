"""Base class of the confusion-matrix EM aggregators (Dawid-Skene, one-coin, MACE)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from veracity.errors import ConvergenceWarning
from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest, worker_answer_counts
from veracity.quality._validation import check_positive, check_random_state
from veracity.quality.aggregation._em import (
    ConfusionModel,
    EMFit,
    best_temperature,
    build_shards,
    fit_confusion_em,
    softmax_rows,
)
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray, RandomState

__all__ = ["ConfusionEMAggregator"]


class ConfusionEMAggregator(BaseAggregator):
    """EM over a per-worker confusion model; subclasses provide :meth:`_model`."""

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-6,
        smoothing: float = 0.01,
        calibrate: bool = True,
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

    def _n_shards(self) -> int:
        if self.n_shards is not None:
            return max(1, int(self.n_shards))
        if self.executor is None:
            return 1
        return max(1, int(getattr(self.executor, "n_shards", 1)))

    def fit_em(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> tuple[EMFit, Any]:
        """Run EM and return the raw fit and the model (used by ``auto`` and the services)."""
        if int(self.n_iter) < 0:
            check_positive("n_iter", self.n_iter)
        check_positive("tol", self.tol, allow_zero=True)
        check_positive("smoothing", self.smoothing, allow_zero=True)
        model = self._model(responses)
        shards = build_shards(responses, n_shards=self._n_shards(), gold_idx=gold_idx, gold_label=gold_label)
        fit = fit_confusion_em(
            model,
            shards,
            n_workers=responses.n_workers,
            n_classes=responses.n_classes,
            n_responses=responses.n_responses,
            n_iter=int(self.n_iter),
            tol=float(self.tol),
            executor=self.executor,
            name=type(self).__name__,
        )
        return fit, model

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        self._gold_label = gold_label
        fit, model = self.fit_em(responses, gold_idx, gold_label)
        return self.result_from_fit(responses, fit, model, gold_idx)

    def _cross_fit_temperature(self, responses: Responses, rng: np.random.Generator, gold_idx: IntArray) -> float:
        """Temperature fitted on held-out answers with the tasks split in two folds.

        Each fold's worker parameters are fitted on the *other* fold's tasks, so an answer's
        predictive probability never uses a parameter fitted on that answer. No gold is used
        (gold tasks are left out of the scored answers but still anchor the fits).
        """
        n_t = responses.n_tasks
        if n_t < 4 or responses.n_responses < 20:
            return 1.0
        fold = rng.integers(0, 2, size=n_t)
        is_gold = np.zeros(n_t, dtype=bool)
        is_gold[gold_idx] = True
        loo_parts, own_parts = [], []
        max_answers = 50_000
        for f in (0, 1):
            train = fold[responses.task_idx] != f
            test = ~train & ~is_gold[responses.task_idx]
            if not train.any() or not test.any():
                return 1.0
            sub = Responses(
                responses.task_idx[train],
                responses.worker_idx[train],
                responses.label[train],
                responses.task_ids,
                responses.worker_ids,
                responses.classes,
            )
            g_keep = fold[gold_idx] != f
            model = self._model(sub)
            shards = build_shards(sub, n_shards=1, gold_idx=gold_idx[g_keep], gold_label=self._gold_label[g_keep])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit = fit_confusion_em(
                    model,
                    shards,
                    n_workers=sub.n_workers,
                    n_classes=sub.n_classes,
                    n_responses=sub.n_responses,
                    n_iter=min(int(self.n_iter), 50),
                    tol=float(self.tol) * 10,
                )
            idx = np.flatnonzero(test)
            if idx.size > max_answers // 2:
                idx = np.sort(rng.choice(idx, size=max_answers // 2, replace=False))
            test_resp = Responses(
                responses.task_idx[test],
                responses.worker_idx[test],
                responses.label[test],
                responses.task_ids,
                responses.worker_ids,
                responses.classes,
            )
            full = build_shards(test_resp, n_shards=1)[0]
            logits = full.logits(
                np.ascontiguousarray(fit.log_conf.transpose(0, 2, 1).reshape(-1, sub.n_classes)), fit.log_prior
            )
            own = fit.log_conf[responses.worker_idx[idx], :, responses.label[idx]]
            loo_parts.append(logits[responses.task_idx[idx]] - own)
            own_parts.append(own)
        return best_temperature(np.concatenate(loo_parts), np.concatenate(own_parts))

    def result_from_fit(self, responses: Responses, fit: EMFit, model: Any, gold_idx: IntArray) -> AggregationResult:
        """Posteriors (temperature-calibrated when ``calibrate``), labels and worker skills."""
        rng = check_random_state(self.random_state)
        logits = fit.logits
        label_idx = argmax_lowest(logits)
        tau = 1.0
        if self.calibrate:
            tau = self._cross_fit_temperature(responses, rng, gold_idx)
        probas: FloatArray = softmax_rows(logits / tau) if logits.size else logits
        conf = np.exp(fit.log_conf)
        prior = np.exp(fit.log_prior)
        accuracy = np.einsum("wkk,k->w", conf, prior)
        extras = {"temperature": tau, **getattr(model, "extras", {})}
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
