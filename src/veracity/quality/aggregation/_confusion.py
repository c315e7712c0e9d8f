"""Base class of the confusion-matrix EM aggregators (Dawid-Skene, one-coin, MACE)."""

from __future__ import annotations

from typing import Any

import numpy as np

from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest, worker_answer_counts
from veracity.quality._validation import check_positive, check_random_state
from veracity.quality.aggregation._em import (
    ConfusionModel,
    EMFit,
    _flat,
    best_temperature_and_score,
    build_shards,
    fit_confusion_em,
    softmax_rows,
)
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray, RandomState

__all__ = ["ConfusionEMAggregator"]

_CALIBRATION_STEPS = 2  # EM steps per fold when refitting for calibration


def _subset(responses: Responses, mask: np.ndarray) -> Responses:
    return Responses(
        responses.task_idx[mask],
        responses.worker_idx[mask],
        responses.label[mask],
        responses.task_ids,
        responses.worker_ids,
        responses.classes,
    )


class ConfusionEMAggregator(BaseAggregator):
    """EM over a per-worker confusion model; subclasses provide :meth:`_model`."""

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
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

    def _refit_model(self, responses: Responses, fitted: Any) -> ConfusionModel:
        """Model for the calibration refits; subclasses may reuse hyperparameters of ``fitted``."""
        return self._model(responses)

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

    def _cross_fit_temperature(
        self, responses: Responses, fit: EMFit, model: Any, rng: np.random.Generator, gold_idx: IntArray
    ) -> tuple[float, float]:
        """Temperature fitted on held-out answers with the tasks split in two folds.

        For each fold, the worker parameters are refitted on the *other* fold's tasks (a few EM
        steps warm-started from the full fit, so no M-step sees the held-out answers) and the
        held-out answers are scored with :func:`best_temperature_and_score`. No gold labels are
        used. Returns the temperature and the mean held-out log-likelihood per answer.
        """
        n_t = responses.n_tasks
        if n_t < 4 or responses.n_responses < 20:
            return 1.0, float("nan")
        fold = rng.integers(0, 2, size=n_t)
        is_gold = np.zeros(n_t, dtype=bool)
        is_gold[gold_idx] = True
        gold_label = self._gold_label
        k = responses.n_classes
        loo_parts, own_parts = [], []
        per_fold = 25_000
        for f in (0, 1):
            on_fold = fold[responses.task_idx] == f
            train, test = ~on_fold, on_fold & ~is_gold[responses.task_idx]
            if not train.any() or not test.any():
                return 1.0, float("nan")
            sub = _subset(responses, train)
            g_keep = fold[gold_idx] != f
            shards = build_shards(sub, n_shards=1, gold_idx=gold_idx[g_keep], gold_label=gold_label[g_keep])
            part = fit_confusion_em(
                self._refit_model(sub, model),
                shards,
                n_workers=sub.n_workers,
                n_classes=k,
                n_responses=sub.n_responses,
                n_iter=_CALIBRATION_STEPS,
                tol=0.0,
                init_params=(fit.log_conf, fit.log_prior),
                warn=False,
                final_logits=False,
            )
            held = _subset(responses, test)
            logits = build_shards(held, n_shards=1)[0].logits(_flat(part.log_conf), part.log_prior)
            idx = np.flatnonzero(test)
            if idx.size > per_fold:
                idx = np.sort(rng.choice(idx, size=per_fold, replace=False))
            own = part.log_conf[responses.worker_idx[idx], :, responses.label[idx]]
            loo_parts.append(logits[responses.task_idx[idx]] - own)
            own_parts.append(own)
        return best_temperature_and_score(np.concatenate(loo_parts), np.concatenate(own_parts))

    def result_from_fit(self, responses: Responses, fit: EMFit, model: Any, gold_idx: IntArray) -> AggregationResult:
        """Posteriors (temperature-calibrated when ``calibrate``), labels and worker skills."""
        rng = check_random_state(self.random_state)
        logits = fit.logits
        label_idx = argmax_lowest(logits)
        tau, heldout = 1.0, float("nan")
        if self.calibrate:
            tau, heldout = self._cross_fit_temperature(responses, fit, model, rng, gold_idx)
        probas: FloatArray = softmax_rows(logits / tau) if logits.size else logits
        conf = np.exp(fit.log_conf)
        prior = np.exp(fit.log_prior)
        accuracy = np.einsum("wkk,k->w", conf, prior)
        extras = {"temperature": tau, "heldout_loglik": heldout, **getattr(model, "extras", {})}
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
