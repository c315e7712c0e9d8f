"""``auto``: a truth-inference rule that needs no gold and no tuning per data set."""

from __future__ import annotations

import numpy as np

from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest
from veracity.quality.aggregation._confusion import GOLD_CALIBRATION_MIN, Calibrate, check_calibrate
from veracity.quality.aggregation._em import gold_temperature_and_score, softmax_rows
from veracity.quality.aggregation.dawid_skene import DawidSkene
from veracity.quality.aggregation.mace import MACE
from veracity.quality.aggregation.majority_vote import WeightedMajorityVote
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, IntArray, RandomState

__all__ = ["AutoAggregator"]

_WEIGHTS = (0.5, 0.25, 0.25)  # ds, mace, wmv


def _pool(probas: list[FloatArray]) -> FloatArray:
    """Weighted sum of the components' log-probabilities (``_WEIGHTS`` order: ds, mace, wmv)."""
    out = np.zeros_like(probas[0])
    for w, p in zip(_WEIGHTS, probas, strict=True):
        out += w * np.log(np.maximum(p, 1e-300))
    return out


def _gold_temperature(
    parts: list[AggregationResult], gold_idx: IntArray, gold_label: IntArray, n_tasks: int
) -> float | None:
    """Temperature of the pool fitted on gold tasks; None when fewer than ``GOLD_CALIBRATION_MIN`` qualify.

    Each component reports, for the gold tasks it could score, its posterior from their answers
    alone (out of fold for the EM models, see ``ConfusionEMAggregator._cross_fit_temperature``;
    the weighted vote's shares before the gold label is imposed). The pool of those posteriors is
    scored against the gold labels by the Brier score: a class nobody voted for has a vote share
    of 0, so its pooled probability is ~1e-75 and the log loss of one gold task with that label
    would decide the temperature alone.
    """
    if gold_idx.size < GOLD_CALIBRATION_MIN:
        return None
    rows = np.full(n_tasks, -1, dtype=np.int64)
    common = np.ones(n_tasks, dtype=bool)
    for p in parts:
        idx, _ = p.extras.get("gold_heldout", (np.zeros(0, dtype=np.int64), None))
        seen = np.zeros(n_tasks, dtype=bool)
        seen[idx] = True
        common &= seen
    tasks = np.flatnonzero(common)
    if tasks.size < GOLD_CALIBRATION_MIN:
        return None
    held = []
    for p in parts:
        idx, values = p.extras["gold_heldout"]
        rows[idx] = np.arange(idx.size)
        held.append(values[rows[tasks]])
    truth = np.full(n_tasks, -1, dtype=np.int64)
    truth[gold_idx] = gold_label
    return gold_temperature_and_score(_pool(held), truth[tasks], loss="brier")[0]


class AutoAggregator(BaseAggregator):
    r"""``auto``: pool three different views of the crowd, with fixed weights and no gold.

    How it chooses: it does not pick one model per data set. It fits hierarchical Dawid-Skene
    (:class:`DawidSkene`: full confusion matrices with priors shared across workers), MACE
    (:class:`MACE`: competence plus a spam distribution) and the skill-weighted vote
    (:class:`WeightedMajorityVote`), and returns the normalised weighted *geometric mean* of their
    posteriors (a log-linear pool):

    .. math:: p(k) \propto p_{ds}(k)^{1/2}\, p_{mace}(k)^{1/4}\, p_{wmv}(k)^{1/4}

    Dawid-Skene, the only model that can represent class-specific confusions, gets half of the
    weight; the two simpler views share the other half. Their failure modes differ (full
    confusion matrices over-fit workers with few answers and are over-confident when answers are
    correlated, MACE cannot represent class-specific confusions, the weighted vote ignores which
    class a worker confuses), so the pool softens Dawid-Skene's confident mistakes where the
    simpler views disagree, while Dawid-Skene still decides where they are unsure. The weights are
    the same for every data set and no gold label is used; selecting one model per data set by
    held-out answer likelihood was considered and rejected, since it picked Dawid-Skene on every
    real benchmark set (the pool is more accurate on average). The 1/2-1/4-1/4 split was chosen
    among a handful of candidate weightings on the benchmark (see benchmarks/RESULTS.md).
    Worker skills and confusion matrices are Dawid-Skene's; ``extras["components"]`` keeps each
    component's result. Gold, when given, anchors every component; with at least
    ``GOLD_CALIBRATION_MIN`` gold tasks the pool also gets a temperature fitted on them (the
    components' posteriors of the gold tasks from their answers alone, pooled and scored against
    the gold labels).

    Parameters
    ----------
    n_iter, tol, calibrate, random_state, executor, n_shards
        Passed to the EM components (``calibrate`` as in
        :class:`~veracity.quality.aggregation.DawidSkene`; ``False`` also skips the pool's gold
        temperature).

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
        calibrate: Calibrate = True,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.calibrate = calibrate
        self.random_state = random_state
        self.executor = executor
        self.n_shards = n_shards
        self.result_ = None

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        check_calibrate(self.calibrate)
        em = {
            "n_iter": self.n_iter,
            "tol": self.tol,
            "calibrate": self.calibrate,
            "random_state": self.random_state,
            "executor": self.executor,
            "n_shards": self.n_shards,
        }
        parts = [
            DawidSkene(**em)._fit(responses, gold_idx, gold_label),
            MACE(**em)._fit(responses, gold_idx, gold_label),
            WeightedMajorityVote()._fit(responses, gold_idx, gold_label),
        ]
        log_pool = _pool([p.probas for p in parts])
        tau = _gold_temperature(parts, gold_idx, gold_label, responses.n_tasks) if self.calibrate else None
        probas = softmax_rows(log_pool / (tau or 1.0))
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
            extras={
                "components": {p.method: p for p in parts},
                "pool": "geometric mean, weights ds 1/2, mace 1/4, wmv 1/4",
                "temperature": tau or 1.0,
                "temperature_source": "gold" if tau is not None else "components",
            },
        )
