"""``auto``: a truth-inference rule that needs no gold and no tuning per data set."""

from __future__ import annotations

import numpy as np

from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest
from veracity.quality.aggregation.dawid_skene import DawidSkene
from veracity.quality.aggregation.mace import MACE
from veracity.quality.aggregation.majority_vote import WeightedMajorityVote
from veracity.quality.responses import Responses
from veracity.types import Executor, IntArray, RandomState

__all__ = ["AutoAggregator"]


class AutoAggregator(BaseAggregator):
    r"""``auto``: pool three different views of the crowd, chosen without gold.

    The rule: fit hierarchical Dawid-Skene (:class:`DawidSkene`, full confusion matrices shrunk
    toward the crowd's), MACE (:class:`MACE`, competence plus a spam distribution) and the
    skill-weighted vote (:class:`WeightedMajorityVote`), and return the normalised *geometric
    mean* of their posteriors (a log-linear pool with equal weights):

    .. math:: p(k) \propto \left(p_{ds}(k)\, p_{mace}(k)\, p_{wmv}(k)\right)^{1/3}

    The three models fail in different places (full confusion matrices over-fit workers with few
    answers, MACE cannot represent class-specific confusions, the weighted vote ignores which
    class a worker confuses), so their errors are partly independent and the pool is more
    accurate than any one of them on average. Held-out answer likelihood (the other rule
    considered) picked Dawid-Skene on 13 of the 15 real benchmark sets and so added little.
    Worker skills and confusion matrices are Dawid-Skene's; ``extras["components"]`` keeps each
    component's result. Gold, when given, anchors every component.

    Parameters
    ----------
    n_iter, tol, random_state, executor, n_shards
        Passed to the EM components.

    Examples
    --------
    >>> from veracity.quality.aggregation import AutoAggregator
    >>> AutoAggregator(random_state=0).fit_predict(
    ...     {"task": [1, 1, 1], "worker": [1, 2, 3], "label": ["a", "a", "b"]}
    ... ).tolist()
    ['a']
    """

    method = "auto"

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state
        self.executor = executor
        self.n_shards = n_shards
        self.result_ = None

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        em = {
            "n_iter": self.n_iter,
            "tol": self.tol,
            "random_state": self.random_state,
            "executor": self.executor,
            "n_shards": self.n_shards,
        }
        parts = [
            DawidSkene(**em)._fit(responses, gold_idx, gold_label),
            MACE(**em)._fit(responses, gold_idx, gold_label),
            WeightedMajorityVote()._fit(responses, gold_idx, gold_label),
        ]
        log_pool = sum(np.log(np.maximum(p.probas, 1e-300)) for p in parts) / len(parts)
        assert isinstance(log_pool, np.ndarray)
        log_pool -= log_pool.max(axis=1, keepdims=True)
        probas = np.exp(log_pool)
        probas /= probas.sum(axis=1, keepdims=True)
        ds = parts[0]
        return AggregationResult(
            method=self.method,
            task_ids=responses.task_ids,
            worker_ids=responses.worker_ids,
            classes=responses.classes,
            probas=probas,
            label_idx=argmax_lowest(probas),
            worker_accuracy=ds.worker_accuracy,
            worker_n_answers=ds.worker_n_answers,
            confusions=ds.confusions,
            priors=ds.priors,
            n_iter=ds.n_iter,
            converged=all(p.converged for p in parts),
            log_likelihood_history=ds.log_likelihood_history,
            extras={"components": {p.method: p for p in parts}, "pool": "geometric mean of ds, mace, wmv"},
        )
