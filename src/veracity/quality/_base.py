"""Conventions shared by the aggregators: parameters, ``fit`` / ``fit_predict``, the result object.

An aggregator stores its keyword parameters in ``__init__`` and does nothing else there. ``fit``
clears any earlier fitted state, checks the input, runs the algorithm and sets the fitted
attributes (``labels_``, ``probas_``, ``result_`` and, where the method has them, ``confusions_``,
``priors_``, ``n_iter_``, ``converged_``, ``log_likelihood_history_``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from veracity.errors import InvalidInputError
from veracity.quality._validation import as_responses
from veracity.quality.responses import Responses, _lookup
from veracity.types import FloatArray, IntArray

__all__ = ["AggregationResult", "BaseAggregator", "Gold", "label_information", "resolve_gold"]


@dataclass(frozen=True, eq=False)
class AggregationResult:
    """One consensus label per task, its posterior confidence and a skill per worker.

    Attributes
    ----------
    method : str
    task_ids : ndarray, shape (n_tasks,)
    worker_ids : ndarray, shape (n_workers,)
    classes : ndarray, shape (n_classes,)
    probas : ndarray of float64, shape (n_tasks, n_classes)
        Posterior class probabilities (rows sum to 1; one-hot for gold tasks).
    label_idx : ndarray of int64, shape (n_tasks,)
        Code of the chosen class; ties go to the lowest code.
    worker_accuracy : ndarray of float64, shape (n_workers,)
        Estimated probability that each worker answers correctly.
    worker_n_answers : ndarray of int64, shape (n_workers,)
    confusions : ndarray of float64, shape (n_workers, n_classes, n_classes), or None
        ``confusions[w, k, l]`` = P(worker ``w`` answers ``l`` | true class ``k``).
    priors : ndarray of float64, shape (n_classes,), or None
    """

    method: str
    task_ids: np.ndarray
    worker_ids: np.ndarray
    classes: np.ndarray
    probas: FloatArray
    label_idx: IntArray
    worker_accuracy: FloatArray
    worker_n_answers: IntArray
    confusions: FloatArray | None = None
    priors: FloatArray | None = None
    n_iter: int = 0
    converged: bool = True
    log_likelihood_history: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def label_values(self) -> np.ndarray:
        """Chosen label value per task, shape (n_tasks,)."""
        return self.classes[self.label_idx] if self.label_idx.size else self.classes[:0]

    @property
    def confidence_values(self) -> FloatArray:
        """Posterior probability of the chosen label per task, shape (n_tasks,)."""
        if not self.label_idx.size:
            return np.zeros(0)
        return self.probas[np.arange(self.label_idx.shape[0]), self.label_idx]

    @property
    def labels(self) -> dict[Any, Any]:
        """Mapping task id -> consensus label."""
        return dict(zip(self.task_ids.tolist(), self.label_values.tolist(), strict=True))

    @property
    def confidence(self) -> dict[Any, float]:
        """Mapping task id -> posterior probability of its consensus label."""
        return dict(zip(self.task_ids.tolist(), self.confidence_values.tolist(), strict=True))

    @property
    def workers(self) -> dict[Any, float]:
        """Mapping worker id -> estimated accuracy (see ``confusions`` for the full matrices)."""
        return dict(zip(self.worker_ids.tolist(), self.worker_accuracy.tolist(), strict=True))

    @property
    def worker_information(self) -> FloatArray:
        """Share of the uncertainty about the true class that one answer of each worker removes.

        ``I(Y; L_w) / H(Y)`` (see :func:`label_information`) from ``confusions`` and ``priors``,
        or from ``worker_accuracy`` as a one-coin worker when the method has no confusion
        matrices. 0 for a spammer (answers independent of the truth), 1 for a perfect worker.
        """
        k = self.classes.shape[0]
        priors = self.priors if self.priors is not None else np.full(k, 1.0 / max(k, 1))
        if self.confusions is not None:
            return label_information(self.confusions, priors)
        acc = np.clip(self.worker_accuracy, 0.0, 1.0)[:, None, None]
        eye = np.eye(k)
        off = (1.0 - eye) / max(k - 1, 1)
        return label_information(acc * eye + (1.0 - acc) * off, priors)

    def __repr__(self) -> str:
        return (
            f"AggregationResult(method={self.method!r}, n_tasks={self.task_ids.shape[0]}, "
            f"n_workers={self.worker_ids.shape[0]}, n_classes={self.classes.shape[0]})"
        )


def label_information(confusions: Any, priors: Any) -> FloatArray:
    """Normalised mutual information between the true class and one answer, per worker.

    ``I(Y; L) / H(Y)`` with ``P(Y = k) = priors[k]`` and ``P(L = l | Y = k) = confusions[w, k, l]``:
    the share of the entropy of the true class that one answer removes on average (Cover &
    Thomas, *Elements of Information Theory*, 2nd ed., 2006, ch. 2). It is 0 exactly when the
    answers are independent of the truth, whatever the pattern (uniformly random, or always the
    same label, which a plain accuracy cannot tell from skill when that label is common), and 1
    for a perfect worker; it is comparable across label sets of any size.

    Parameters
    ----------
    confusions : array-like, shape (n_workers, n_classes, n_classes)
        Rows are true classes; each row sums to 1.
    priors : array-like, shape (n_classes,)

    Returns
    -------
    ndarray of float64, shape (n_workers,), in [0, 1] (0 when the prior has no entropy)
    """
    conf = np.asarray(confusions, dtype=np.float64)
    p = np.asarray(priors, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2] or conf.shape[1] != p.shape[0]:
        raise InvalidInputError(
            f"confusions must have shape (n_workers, k, k) and priors (k,); got {conf.shape} and {p.shape}"
        )
    p = p / p.sum()
    h_y = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
    if h_y <= 0:
        return np.zeros(conf.shape[0])
    joint = p[None, :, None] * conf  # P(Y = k, L = l), per worker
    marg = joint.sum(axis=1, keepdims=True)  # P(L = l)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (p[None, :, None] * marg)), 0.0)
    return np.clip(terms.sum(axis=(1, 2)) / h_y, 0.0, 1.0)


Gold = Mapping[Any, Any] | tuple[Any, Any] | Any


def _gold_columns(gold: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(gold, Mapping) and not ("task" in gold and "label" in gold):
        return np.array(list(gold.keys()), dtype=object), np.array(list(gold.values()), dtype=object)
    if isinstance(gold, tuple) and len(gold) == 2:
        return np.asarray(gold[0]), np.asarray(gold[1])
    if isinstance(gold, Mapping):
        return np.asarray(gold["task"]), np.asarray(gold["label"])
    if hasattr(gold, "column_names") and hasattr(gold, "column"):
        names = set(gold.column_names)
        if not {"task", "label"} <= names:
            raise InvalidInputError(f"gold must have columns task, label; got {', '.join(sorted(names))}")
        return (
            gold.column("task").to_numpy(zero_copy_only=False),
            gold.column("label").to_numpy(zero_copy_only=False),
        )
    if hasattr(gold, "columns") and hasattr(gold, "to_numpy"):
        names = {str(c) for c in gold.columns}
        if not {"task", "label"} <= names:
            raise InvalidInputError(f"gold must have columns task, label; got {', '.join(sorted(names))}")
        return np.asarray(gold["task"].to_numpy()), np.asarray(gold["label"].to_numpy())
    raise InvalidInputError(
        "gold must be a mapping task -> label, a (tasks, labels) pair or a table with task, label columns; "
        f"got {type(gold).__name__}"
    )


def resolve_gold(responses: Responses, gold: Any) -> tuple[Responses, IntArray, IntArray]:
    """Code ``gold`` against ``responses``: returns (responses with widened classes, task codes, class codes).

    Gold tasks that nobody answered are ignored; gold labels outside the answered classes widen
    the class set.
    """
    empty = np.zeros(0, dtype=np.int64)
    if gold is None:
        return responses, empty, empty
    tasks, labels = _gold_columns(gold)
    if tasks.shape[0] != labels.shape[0]:
        raise InvalidInputError(
            f"gold tasks and labels must be the same length, got {tasks.shape[0]} and {labels.shape[0]}"
        )
    if tasks.shape[0] == 0:
        return responses, empty, empty
    t_codes = responses.task_codes(tasks, field="gold task")
    keep = t_codes >= 0
    labels = labels[keep]
    t_codes = t_codes[keep]
    if labels.size:
        from_lookup = _missing_classes(responses, labels)
        if from_lookup.size:
            responses = responses.with_classes(_widened_classes(responses.classes, from_lookup))
    l_codes = responses.class_codes(labels, field="gold label")
    # a task listed twice in gold: keep its last gold label
    _, last_rev = np.unique(t_codes[::-1], return_index=True)
    pick = t_codes.shape[0] - 1 - last_rev
    return responses, t_codes[pick], l_codes[pick]


def _widened_classes(classes: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``classes`` plus the new values ``extra``: merged in sorted order when ``classes`` is sorted
    (the default coding), appended after them when the caller chose another order."""
    old = classes.tolist()
    known = set(old)
    values = old + [v for v in extra.tolist() if v not in known]
    try:
        if old == sorted(old):
            values = sorted(values)
    except TypeError:  # mixed, unorderable types: keep first-seen order
        pass
    kind = classes.dtype.kind
    if kind in "iufU":
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            inferred = np.array(values)  # numbers stay numbers, strings widen their width
            if inferred.ndim == 1 and inferred.dtype.kind in ("U" if kind == "U" else "iuf"):
                return inferred
    return np.array(values, dtype=object)


def _missing_classes(responses: Responses, labels: np.ndarray) -> np.ndarray:
    codes = _lookup(responses.classes, labels, field="gold label")
    missing = labels[codes < 0]
    if not missing.size:
        return missing
    if responses.classes.dtype.kind in "iuf":
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            cast = missing.astype(responses.classes.dtype)
            if bool(np.all(cast == missing)):  # only a lossless cast (2.0 -> 2, never 2.5 -> 2)
                missing = cast
    return np.unique(missing)


class BaseAggregator:
    """Base of every aggregator (scikit-learn / crowd-kit conventions, arrays instead of frames)."""

    method: ClassVar[str] = "base"

    result_: AggregationResult | None

    def __init__(self) -> None:
        self.result_ = None

    # -- parameters ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The keyword parameters given to ``__init__``."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, answers: Any, *, gold: Gold | None = None) -> Self:
        """Fit on ``answers`` (anything :func:`veracity.quality.aggregate` accepts)."""
        for name in [k for k in vars(self) if k.endswith("_")]:
            setattr(self, name, None)
        responses = as_responses(answers)
        if responses.n_responses == 0:
            raise InvalidInputError("answers are empty: expected at least one (worker, task, label) row")
        responses, gold_idx, gold_label = resolve_gold(responses, gold)
        result = self._fit(responses, gold_idx, gold_label)
        _prior_for_unanswered(result, responses)
        if gold_idx.size:  # gold is never overwritten in the output
            probas = result.probas
            probas[gold_idx] = 0.0
            probas[gold_idx, gold_label] = 1.0
            result.label_idx[gold_idx] = gold_label
        self.result_ = result
        self.labels_ = result.label_values
        self.probas_ = result.probas
        self.confusions_ = result.confusions
        self.priors_ = result.priors
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.log_likelihood_history_ = result.log_likelihood_history
        self.skills_ = result.worker_accuracy
        return self

    def fit_predict(self, answers: Any, *, gold: Gold | None = None) -> np.ndarray:
        """Fit and return the consensus label value per task, shape (n_tasks,)."""
        self.fit(answers, gold=gold)
        assert self.result_ is not None
        return self.result_.label_values

    def fit_predict_proba(self, answers: Any, *, gold: Gold | None = None) -> FloatArray:
        """Fit and return posterior class probabilities, shape (n_tasks, n_classes)."""
        self.fit(answers, gold=gold)
        assert self.result_ is not None
        return self.result_.probas

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        raise NotImplementedError


def _prior_for_unanswered(result: AggregationResult, responses: Responses) -> None:
    """Give tasks that nobody answered the class prior (uniform without one) as their posterior.

    Such tasks exist only when the task count is given (``infer_truth``'s ``n_tasks``); without
    answers the model's posterior is its prior, which tempering or pooling must not change.
    """
    answered = np.zeros(responses.n_tasks, dtype=bool)
    answered[responses.task_idx] = True
    if answered.all():
        return
    k = responses.n_classes
    prior = result.priors if result.priors is not None and result.priors.shape == (k,) else np.full(k, 1.0 / k)
    rows = np.flatnonzero(~answered)
    result.probas[rows] = prior
    result.label_idx[rows] = argmax_lowest(prior[None, :])[0]


def argmax_lowest(probas: FloatArray) -> IntArray:
    """Row argmax with ties (within 1e-12) going to the lowest class code."""
    if probas.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    best = probas.max(axis=1, keepdims=True)
    return np.argmax(probas >= best - 1e-12, axis=1).astype(np.int64)


def worker_answer_counts(responses: Responses) -> IntArray:
    """Number of answers per worker, shape (n_workers,)."""
    return np.bincount(responses.worker_idx, minlength=responses.n_workers).astype(np.int64)


def agreement_accuracy(responses: Responses, label_idx: IntArray, smoothing: float = 1.0) -> FloatArray:
    """Per-worker share of answers equal to ``label_idx`` of their task (Laplace-smoothed)."""
    hit = (responses.label == label_idx[responses.task_idx]).astype(np.float64)
    n = np.bincount(responses.worker_idx, minlength=responses.n_workers).astype(np.float64)
    ok = np.bincount(responses.worker_idx, weights=hit, minlength=responses.n_workers)
    k = max(responses.n_classes, 2)
    return (ok + smoothing / k) / (n + smoothing)
