"""Majority vote and skill-weighted majority vote."""

from __future__ import annotations

import numpy as np

from veracity.quality._base import (
    AggregationResult,
    BaseAggregator,
    agreement_accuracy,
    argmax_lowest,
    worker_answer_counts,
)
from veracity.quality.responses import Responses
from veracity.types import FloatArray, IntArray

__all__ = ["MajorityVote", "WeightedMajorityVote"]


def _weighted_votes(responses: Responses, weights: FloatArray) -> FloatArray:
    k = responses.n_classes
    scores = np.bincount(
        responses.task_idx * k + responses.label,
        weights=weights[responses.worker_idx],
        minlength=responses.n_tasks * k,
    ).reshape(responses.n_tasks, k)
    return scores


def _shares(scores: FloatArray) -> FloatArray:
    totals = scores.sum(axis=1, keepdims=True)
    out = np.divide(scores, totals, out=np.full_like(scores, 1.0 / max(scores.shape[1], 1)), where=totals > 0)
    return out


def _clamp_gold(probas: FloatArray, gold_idx: IntArray, gold_label: IntArray) -> None:
    if gold_idx.size:
        probas[gold_idx] = 0.0
        probas[gold_idx, gold_label] = 1.0


class MajorityVote(BaseAggregator):
    """The most frequent answer per task; ties go to the smallest label value.

    ``probas_`` are vote shares. Worker accuracy is the (Laplace-smoothed) share of a worker's
    answers that match the consensus; gold tasks count with their gold label.

    Examples
    --------
    >>> MajorityVote().fit_predict({"task": [1, 1, 1], "worker": [1, 2, 3], "label": ["b", "a", "b"]}).tolist()
    ['b']
    """

    method = "mv"

    def __init__(self) -> None:
        self.result_ = None

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        probas = _shares(responses.vote_counts())
        label_idx = argmax_lowest(probas)
        label_idx[gold_idx] = gold_label
        _clamp_gold(probas, gold_idx, gold_label)
        return AggregationResult(
            method=self.method,
            task_ids=responses.task_ids,
            worker_ids=responses.worker_ids,
            classes=responses.classes,
            probas=probas,
            label_idx=label_idx,
            worker_accuracy=agreement_accuracy(responses, label_idx),
            worker_n_answers=worker_answer_counts(responses),
        )


class WeightedMajorityVote(BaseAggregator):
    """Majority vote in which each worker's vote counts by its estimated skill.

    Starts from plain majority vote; then, until the labels stop changing (at most ``n_iter``
    rounds), each worker's weight is its log-odds of agreeing with the current consensus,
    ``log(K - 1) + log(a / (1 - a))`` clipped at 0, so a worker at chance level has no say.
    Gold tasks, when given, fix the consensus they are scored against.

    Examples
    --------
    >>> WeightedMajorityVote().fit_predict({"task": [1, 1, 1], "worker": [1, 2, 3], "label": [0, 1, 1]}).tolist()
    [1]
    """

    method = "wmv"

    def __init__(self, *, n_iter: int = 10) -> None:
        self.n_iter = n_iter
        self.result_ = None

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        k = max(responses.n_classes, 2)
        probas = _shares(responses.vote_counts())
        label_idx = argmax_lowest(probas)
        label_idx[gold_idx] = gold_label
        acc = agreement_accuracy(responses, label_idx)
        it = 0
        for it in range(1, int(self.n_iter) + 1):  # noqa: B007
            acc = agreement_accuracy(responses, label_idx)
            acc = np.clip(acc, 1e-6, 1 - 1e-6)
            weights = np.maximum(np.log(k - 1) + np.log(acc / (1 - acc)), 0.0) + 1e-9
            probas = _shares(_weighted_votes(responses, weights))
            new = argmax_lowest(probas)
            new[gold_idx] = gold_label
            if np.array_equal(new, label_idx):
                label_idx = new
                break
            label_idx = new
        # vote shares of the gold tasks before their gold label is imposed (``auto`` calibrates on them)
        gold_heldout = (gold_idx, probas[gold_idx].copy())
        _clamp_gold(probas, gold_idx, gold_label)
        return AggregationResult(
            method=self.method,
            task_ids=responses.task_ids,
            worker_ids=responses.worker_ids,
            classes=responses.classes,
            probas=probas,
            label_idx=label_idx,
            worker_accuracy=agreement_accuracy(responses, label_idx),
            worker_n_answers=worker_answer_counts(responses),
            n_iter=it,
            extras={"gold_heldout": gold_heldout},
        )
