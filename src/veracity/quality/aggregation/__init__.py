"""Truth inference: one trusted label per task from many noisy answers, plus worker skills.

Use :func:`aggregate` for tables of ``worker, task, label`` answers and :func:`infer_truth` for
integer-coded arrays (the form the services layer keeps). The estimator classes follow the
scikit-learn / crowd-kit conventions (``fit``, ``fit_predict``, ``fit_predict_proba``).
"""

from __future__ import annotations

from typing import Any

from veracity.errors import InvalidInputError
from veracity.quality._base import AggregationResult, BaseAggregator, Gold
from veracity.quality._validation import as_responses, check_choice, check_codes
from veracity.quality.aggregation._confusion import GOLD_CALIBRATION_MIN
from veracity.quality.aggregation.auto import AutoAggregator
from veracity.quality.aggregation.dawid_skene import DawidSkene, OneCoinDawidSkene
from veracity.quality.aggregation.glad import GLAD
from veracity.quality.aggregation.mace import MACE
from veracity.quality.aggregation.majority_vote import MajorityVote, WeightedMajorityVote
from veracity.quality.responses import Responses
from veracity.types import Executor, RandomState

__all__ = [
    "AGGREGATORS",
    "GLAD",
    "GOLD_CALIBRATION_MIN",
    "MACE",
    "AggregationResult",
    "AutoAggregator",
    "BaseAggregator",
    "DawidSkene",
    "MajorityVote",
    "OneCoinDawidSkene",
    "WeightedMajorityVote",
    "aggregate",
    "infer_truth",
    "make_aggregator",
]

AGGREGATORS: dict[str, type[BaseAggregator]] = {
    "mv": MajorityVote,
    "wmv": WeightedMajorityVote,
    "ds": DawidSkene,
    "onecoin": OneCoinDawidSkene,
    "glad": GLAD,
    "mace": MACE,
    "auto": AutoAggregator,
}

_TAKES_RUNTIME = {"ds", "onecoin", "mace", "auto"}  # accept executor / n_shards
_TAKES_RANDOM = {"ds", "onecoin", "mace", "glad", "auto"}


def make_aggregator(
    method: str = "ds",
    *,
    random_state: RandomState = None,
    executor: Executor | None = None,
    **params: Any,
) -> BaseAggregator:
    """An unfitted aggregator for ``method`` (one of :data:`AGGREGATORS`) with ``params``."""
    check_choice("method", method, AGGREGATORS)
    kwargs = dict(params)
    if method in _TAKES_RANDOM:
        kwargs["random_state"] = random_state
    if method in _TAKES_RUNTIME:
        kwargs["executor"] = executor
    try:
        return AGGREGATORS[method](**kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"bad parameter for method {method!r}: {exc}") from None


def aggregate(
    answers: Any,
    method: str = "ds",
    *,
    gold: Gold | None = None,
    classes: Any = None,
    random_state: RandomState = None,
    executor: Executor | None = None,
    **params: Any,
) -> AggregationResult:
    """Infer one label per task from crowd answers.

    Parameters
    ----------
    answers : DataFrame, pyarrow Table, mapping of columns, iterable of records, or Responses
        One row per answer with ``worker``, ``task`` and ``label`` (other columns are ignored).
        Labels may be strings or integers. A worker answering a task twice casts two votes
        (see :class:`~veracity.quality.Responses` for the rule and ``deduplicate``).
    method : {"ds", "mv", "wmv", "onecoin", "glad", "mace", "auto"}, default "ds"
        ``auto`` picks a model per data set without gold (see
        :class:`~veracity.quality.aggregation.AutoAggregator`).
    gold : mapping task -> label, (tasks, labels) pair, or table with task, label columns
        Known labels: they anchor the worker-skill estimates (semi-supervised EM) and are
        returned unchanged with confidence 1. Gold for tasks nobody answered is ignored. With at
        least 20 answered gold tasks, ``ds``, ``onecoin``, ``mace`` and ``auto`` also calibrate
        ``confidence`` on them: the posterior temperature is fitted to the gold tasks'
        out-of-fold posteriors instead of to held-out answers (``extras["temperature_source"]``),
        which corrects the over-confidence that shared mistakes of the crowd cause.
    classes : sequence, optional
        The full label set (for labels nobody used); defaults to the answered labels.
    random_state : int, Generator or None
        Randomness (only calibration subsampling and ``auto``'s held-out split use it).
    executor : Executor, optional
        Where the EM shards run (:mod:`veracity.compute`); the result equals the local one.
    **params
        Passed to the method's estimator (for example ``n_iter``, ``tol``, ``smoothing``).

    Returns
    -------
    AggregationResult
        ``.labels`` (task -> label), ``.confidence`` (task -> posterior of that label),
        ``.workers`` (worker -> estimated accuracy), ``.confusions`` and ``.probas`` arrays.

    Raises
    ------
    InvalidInputError
        Empty answers, missing columns, unknown method or labels outside ``classes``.

    Examples
    --------
    >>> res = aggregate(
    ...     [{"worker": "w1", "task": "t1", "label": "cat"},
    ...      {"worker": "w2", "task": "t1", "label": "cat"},
    ...      {"worker": "w3", "task": "t1", "label": "dog"}],
    ...     method="mv",
    ... )
    >>> res.labels
    {'t1': 'cat'}
    """
    check_choice("method", method, AGGREGATORS)
    responses = as_responses(answers, classes=classes)
    est = make_aggregator(method, random_state=random_state, executor=executor, **params)
    est.fit(responses, gold=gold)
    assert est.result_ is not None
    return est.result_


def infer_truth(
    task_idx: Any,
    worker_idx: Any,
    label: Any,
    *,
    n_tasks: int,
    n_classes: int,
    n_workers: int | None = None,
    method: str = "ds",
    gold_task_idx: Any = None,
    gold_label: Any = None,
    random_state: RandomState = None,
    executor: Executor | None = None,
    **params: Any,
) -> AggregationResult:
    """Truth inference on integer-coded arrays (the services layer's entry point).

    Parameters
    ----------
    task_idx, worker_idx, label : array of int, shape (n_responses,)
        Codes in ``[0, n_tasks)``, ``[0, n_workers)`` and ``[0, n_classes)``.
    n_tasks, n_classes : int
        Tasks with no answers get the class prior as posterior; classes nobody used are kept.
    n_workers : int, optional
        Defaults to ``max(worker_idx) + 1``.
    method : str, default "ds"
    gold_task_idx, gold_label : array of int, shape (n_gold,), optional
        Known labels (codes in ``[0, n_tasks)`` and ``[0, n_classes)``, given together); they are
        kept in the output, also for tasks nobody answered.

    Returns
    -------
    AggregationResult
        ``probas`` (n_tasks, n_classes) posteriors, ``label_idx`` (n_tasks,) codes,
        ``confidence_values`` (n_tasks,), ``worker_accuracy`` (n_workers,), ``confusions``
        (n_workers, n_classes, n_classes) or None; ids are ``arange``.

    Examples
    --------
    >>> res = infer_truth([0, 0, 0, 1], [0, 1, 2, 0], [1, 1, 0, 0], n_tasks=2, n_classes=2, method="mv")
    >>> res.label_idx.tolist()
    [1, 0]
    """
    responses = Responses.from_codes(
        task_idx, worker_idx, label, n_tasks=n_tasks, n_workers=n_workers, n_classes=n_classes
    )
    gold = None
    if gold_task_idx is not None or gold_label is not None:
        if gold_task_idx is None or gold_label is None:
            raise InvalidInputError("gold_task_idx and gold_label must be given together")
        g_t = check_codes(gold_task_idx, responses.n_tasks, name="gold_task_idx")
        g_l = check_codes(gold_label, responses.n_classes, name="gold_label")
        if g_t.shape[0] != g_l.shape[0]:
            raise InvalidInputError(
                f"gold_task_idx and gold_label must be the same length, got {g_t.shape[0]} and {g_l.shape[0]}"
            )
        gold = (g_t, g_l)
    est = make_aggregator(method, random_state=random_state, executor=executor, **params)
    est.fit(responses, gold=gold)
    assert est.result_ is not None
    return est.result_
