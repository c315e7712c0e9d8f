"""Inter-annotator agreement: Cohen's and Fleiss' kappa, Krippendorff's alpha, percent agreement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veracity.errors import InvalidInputError
from veracity.quality._validation import as_responses, check_choice, check_random_state
from veracity.quality.agreement.kappa import cohen_kappa, fleiss_kappa, percent_agreement
from veracity.quality.agreement.krippendorff import LEVELS, krippendorff_alpha
from veracity.quality.responses import Responses
from veracity.types import RandomState

__all__ = [
    "LEVELS",
    "METRICS",
    "AgreementResult",
    "agreement",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "percent_agreement",
    "reliability_matrix_to_responses",
]

METRICS = ("krippendorff", "fleiss", "cohen", "percent")


@dataclass(frozen=True)
class AgreementResult:
    """An agreement value with its bootstrap confidence interval."""

    metric: str
    value: float
    ci_low: float
    ci_high: float
    confidence_level: float
    n_boot: int

    def __float__(self) -> float:
        return self.value


def reliability_matrix_to_responses(data: Any) -> Responses:
    """Responses from a ``(n_raters, n_units)`` matrix with NaN (or None) for missing values.

    Numbers must be finite (NaN is the only missing marker); the matrix may be an ndarray or a
    list of rows.
    """
    try:
        arr = np.asarray(data, dtype=object)
    except ValueError:  # ragged rows
        raise InvalidInputError("a reliability matrix must be 2-D (raters x units) with rows of equal length") from None
    if arr.ndim != 2:
        raise InvalidInputError(f"a reliability matrix must be 2-D (raters x units), got shape {arr.shape}")
    flat = arr.ravel()
    present = np.fromiter((v is not None and not (isinstance(v, float) and v != v) for v in flat), bool, flat.size)
    raters, units = np.divmod(np.flatnonzero(present), arr.shape[1])
    values = flat[present]
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        numbers = None
    if numbers is not None:
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise InvalidInputError(
                f"reliability matrix rater {raters[bad[0]]}, unit {units[bad[0]]}: values must be finite "
                f"(NaN marks a missing value), got {values[bad[0]]!r}"
            )
        values = numbers.astype(np.int64) if np.all(numbers == np.round(numbers)) else numbers
    return Responses.from_arrays(units, raters, values)


def _is_list_matrix(answers: Any) -> bool:
    """A list (or tuple) of rows that are lists or tuples: a reliability matrix, not records."""
    return (
        isinstance(answers, list | tuple)
        and len(answers) > 0
        and all(isinstance(row, list | tuple | np.ndarray) for row in answers)
    )


def _ordered_categories(answers: Any, label: str = "label") -> list[Any] | None:
    """The categories, in order, of an ordered categorical ``label`` column (pandas), else None."""
    if isinstance(answers, Responses) or not hasattr(answers, "__getitem__") or isinstance(answers, list | tuple):
        return None
    try:
        column = answers[label]
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    dtype = getattr(column, "dtype", None)
    if getattr(dtype, "ordered", False) and hasattr(dtype, "categories"):
        return list(dtype.categories)
    return None


def _check_bootstrap(ci: Any, n_boot: Any) -> tuple[float, int]:
    if isinstance(ci, bool) or not isinstance(ci, int | float | np.integer | np.floating) or not 0.0 < ci < 1.0:
        raise InvalidInputError(f"ci must be a number in (0, 1), got {ci!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise InvalidInputError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    return float(ci), int(n_boot)


def _metric(responses: Responses, metric: str, level: str, raters: tuple[Any, Any] | None) -> float:
    if metric == "krippendorff":
        return krippendorff_alpha(responses, level=level)
    if metric == "fleiss":
        if level != "nominal":
            raise InvalidInputError(f"Fleiss' kappa is nominal only, got level={level!r}")
        return fleiss_kappa(responses)
    if metric == "cohen":
        weights = {"nominal": None, "ordinal": "linear", "interval": "quadratic", "ratio": "quadratic"}[level]
        return cohen_kappa(responses, weights=weights, raters=raters)
    return percent_agreement(responses)


def agreement(
    answers: Any,
    metric: str = "krippendorff",
    level: str = "nominal",
    *,
    raters: tuple[Any, Any] | None = None,
    ci: float | None = None,
    n_boot: int = 1000,
    random_state: RandomState = None,
) -> float | AgreementResult:
    """Agreement between annotators on the same tasks.

    Parameters
    ----------
    answers : table or records with worker, task, label; Responses; or a 2-D reliability matrix
        ``(n_raters, n_units)`` (ndarray or list of rows) with NaN or None for missing values;
        other values must be finite. An ordered categorical ``label`` column (pandas) keeps
        its category order.
    metric : {"krippendorff", "fleiss", "cohen", "percent"}
        ``cohen`` needs exactly two raters (or ``raters=(a, b)``); ``fleiss`` and ``percent``
        use every task with two or more answers.
    level : {"nominal", "ordinal", "interval", "ratio"}
        Krippendorff's level of measurement. For ``cohen``: nominal = unweighted, ordinal =
        linear weights, interval/ratio = quadratic weights (label order = sorted values, or the
        category order of an ordered categorical; interval and ratio need numeric labels).
    ci : float, optional
        If given (for example 0.95), also compute a percentile bootstrap interval by
        resampling tasks ``n_boot`` times, and return an :class:`AgreementResult`.
    random_state : int, Generator or None
        For the bootstrap only.

    Returns
    -------
    float, or AgreementResult when ``ci`` is given.

    Notes
    -----
    A worker who answered a task more than once contributes every answer as its own value, the
    rule of :class:`~veracity.quality.Responses` (call ``deduplicate`` first to keep one);
    Cohen's kappa, which pairs one answer of each rater per task, keeps each rater's last answer.

    References
    ----------
    Cohen 1960 (doi:10.1177/001316446002000104); Fleiss 1971 (doi:10.1037/h0031619);
    Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability".

    Examples
    --------
    >>> agreement({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": [0, 0, 1, 1]}, metric="cohen")
    1.0
    """
    check_choice("metric", metric, METRICS)
    check_choice("level", level, LEVELS)
    if ci is not None:
        ci, n_boot = _check_bootstrap(ci, n_boot)
    if (isinstance(answers, np.ndarray) and answers.dtype.names is None) or _is_list_matrix(answers):
        responses = reliability_matrix_to_responses(answers)
    else:
        responses = as_responses(answers, classes=_ordered_categories(answers))
    if responses.n_responses == 0:
        raise InvalidInputError("answers are empty: expected at least one (worker, task, label) row")
    value = float(_metric(responses, metric, level, raters))
    if ci is None:
        return value
    rng = check_random_state(random_state)
    order = np.argsort(responses.task_idx, kind="stable")
    starts = np.searchsorted(responses.task_idx[order], np.arange(responses.n_tasks + 1))
    sizes = np.diff(starts)
    stats = []
    for _ in range(int(n_boot)):
        pick = rng.integers(0, responses.n_tasks, size=responses.n_tasks)
        lens = sizes[pick]
        new_task = np.repeat(np.arange(pick.shape[0]), lens)
        offsets = np.repeat(starts[pick] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        rows = order[np.arange(new_task.shape[0]) + offsets]
        boot = Responses(
            new_task,
            responses.worker_idx[rows],
            responses.label[rows],
            np.arange(pick.shape[0]),
            responses.worker_ids,
            responses.classes,
        )
        try:
            stats.append(float(_metric(boot, metric, level, raters)))
        except InvalidInputError:
            continue
    vals = np.asarray(stats, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    alpha = (1.0 - float(ci)) / 2.0
    low, high = np.quantile(vals, [alpha, 1.0 - alpha]) if vals.size else (np.nan, np.nan)
    return AgreementResult(metric, value, float(low), float(high), float(ci), int(vals.size))
