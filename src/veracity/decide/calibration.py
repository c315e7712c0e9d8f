"""Calibration of model probabilities: temperature scaling, isotonic regression, ECE, reliability.

All functions take ``probs`` (n_items, n_classes) of predicted probabilities and ``labels``
(n_items,) of true classes in ``0 .. n_classes - 1``, as numpy arrays.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural Networks",
   ICML 2017, arXiv:1706.04599.
.. [2] B. Zadrozny, C. Elkan, "Transforming Classifier Scores into Accurate Multiclass Probability
   Estimates", KDD 2002, doi:10.1145/775047.775151.
.. [3] M. P. Naeini, G. F. Cooper, M. Hauskrecht, "Obtaining Well Calibrated Probabilities Using
   Bayesian Binning", AAAI 2015 (expected calibration error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from scipy import optimize, special

from veracity.decide._checks import check_int, check_labels, check_number, check_probs
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, IntArray

__all__ = [
    "IsotonicCalibrator",
    "ReliabilityDiagram",
    "TemperatureScaling",
    "expected_calibration_error",
    "isotonic_regression",
    "reliability_diagram",
]

_LOG_EPS = 1e-12
#: Largest ``n_bins`` of the reliability diagram (the arrays have one entry per bin).
_MAX_BINS = 10_000


def _not_fitted(obj: object) -> InvalidInputError:
    return InvalidInputError(f"{type(obj).__name__} is not fitted yet: call fit(probs, labels) first")


def _log_probs(probs: FloatArray) -> FloatArray:
    return np.log(np.clip(probs, _LOG_EPS, None))


class TemperatureScaling:
    """Temperature scaling: one scalar ``T`` that divides the logits, fitted by likelihood.

    Probabilities are turned into logits as ``log(p)`` (a softmax is invariant to a per-row
    constant, so this is exact for softmax outputs), divided by ``T`` and pushed back through a
    softmax. ``T > 1`` softens over-confident models; the top label never changes. ``T`` minimises
    the negative log-likelihood of ``labels`` on calibration data (Guo et al. 2017).

    Parameters
    ----------
    bounds : tuple of float
        Search interval for ``T``; the optimum is found on ``log T`` by bounded Brent search.

    Attributes
    ----------
    temperature_ : float
        Fitted temperature.
    nll_before_, nll_after_ : float
        Mean negative log-likelihood of the calibration labels at ``T = 1`` and at ``temperature_``.

    References
    ----------
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017, arXiv:1706.04599.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.99, 0.01], [0.98, 0.02], [0.03, 0.97], [0.95, 0.05]])
    >>> ts = TemperatureScaling().fit(probs, np.array([0, 1, 1, 0]))
    >>> bool(ts.temperature_ > 1)
    True
    """

    def __init__(self, *, bounds: tuple[float, float] = (0.05, 20.0)) -> None:
        self.bounds = bounds

    def fit(self, probs: Any, labels: Any) -> Self:
        """Fit ``T`` on calibration ``probs`` (n, k) and ``labels`` (n,)."""
        lo, hi = _check_bounds(self.bounds)
        p = check_probs(probs)
        y = check_labels(labels, p.shape[1], p.shape[0])
        if p.shape[0] == 0:
            raise InvalidInputError("probs must have at least one row to fit a temperature, got 0")
        logits = _log_probs(p)
        rows = np.arange(p.shape[0])

        def nll(log_t: float) -> float:
            z = logits / np.exp(log_t)
            return float(np.mean(special.logsumexp(z, axis=1) - z[rows, y]))

        res = optimize.minimize_scalar(nll, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(res.x))
        self.nll_before_ = nll(0.0)
        self.nll_after_ = float(res.fun)
        return self

    def transform(self, probs: Any) -> FloatArray:
        """Calibrated probabilities (n, k) for ``probs`` (n, k)."""
        if not hasattr(self, "temperature_"):
            raise _not_fitted(self)
        return self.apply(probs, self.temperature_)

    @staticmethod
    def apply(probs: Any, temperature: float) -> FloatArray:
        """``probs`` (n, k) at a given ``temperature`` (e.g. one stored from an earlier fit)."""
        if not (np.isfinite(check_number("temperature", temperature)) and temperature > 0):
            raise InvalidInputError(f"temperature must be > 0, got {temperature!r}")
        return special.softmax(_log_probs(check_probs(probs)) / float(temperature), axis=1)

    def fit_transform(self, probs: Any, labels: Any) -> FloatArray:
        """Fit on ``probs``/``labels`` and return the calibrated ``probs``."""
        return self.fit(probs, labels).transform(probs)


def _check_bounds(bounds: Any) -> tuple[float, float]:
    """``(low, high)`` of a temperature search interval: two finite numbers with ``0 < low < high``."""
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise InvalidInputError(f"bounds must be two numbers (low, high), got {bounds!r}") from None
    lo, hi = check_number("bounds[0]", lo), check_number("bounds[1]", hi)
    if not (0 < lo < hi and np.isfinite(hi)):
        raise InvalidInputError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    return lo, hi


def isotonic_regression(values: Any, weights: Any = None, *, increasing: bool = True) -> FloatArray:
    """Least-squares isotonic fit of ``values`` in their given order (pool adjacent violators).

    Parameters
    ----------
    values : array-like of float, shape (n,)
        Targets, already ordered by the covariate.
    weights : array-like of float, shape (n,), optional
        Positive weights (default 1).
    increasing : bool
        Fit a non-decreasing (default) or non-increasing sequence.

    Returns
    -------
    ndarray of float, shape (n,)
        The monotone sequence closest to ``values`` in weighted squared error.

    References
    ----------
    M. Ayer, H. D. Brunk, G. M. Ewing, W. T. Reid, E. Silverman, "An Empirical Distribution Function
    for Sampling with Incomplete Information", Ann. Math. Statist. 26(4), 1955,
    doi:10.1214/aoms/1177728423.

    Examples
    --------
    >>> isotonic_regression([1.0, 3.0, 2.0, 4.0]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != y.shape:
        raise InvalidInputError(f"values and weights must have the same length, got {y.size} and {w.size}")
    if y.size and (not np.all(np.isfinite(y)) or not np.all(np.isfinite(w)) or np.any(w <= 0)):
        raise InvalidInputError("values must be finite and weights finite and > 0")
    if not increasing:
        return -isotonic_regression(-y, w)
    n = y.size
    # Blocks on a stack: weighted mean, total weight, and number of points in each.
    means = np.empty(n)
    tot = np.empty(n)
    count = np.empty(n, dtype=np.int64)
    top = -1
    for i in range(n):
        top += 1
        means[top], tot[top], count[top] = y[i], w[i], 1
        while top > 0 and means[top - 1] >= means[top]:
            wsum = tot[top - 1] + tot[top]
            means[top - 1] = (means[top - 1] * tot[top - 1] + means[top] * tot[top]) / wsum
            tot[top - 1] = wsum
            count[top - 1] += count[top]
            top -= 1
    return np.repeat(means[: top + 1], count[: top + 1])


@dataclass(frozen=True)
class _IsotonicCurve:
    x: FloatArray
    y: FloatArray

    def __call__(self, values: FloatArray) -> FloatArray:
        if self.x.size == 1:
            return np.full(values.shape, self.y[0])
        return np.interp(values, self.x, self.y)


def _fit_curve(scores: FloatArray, targets: FloatArray) -> _IsotonicCurve:
    """Isotonic map from ``scores`` to ``targets``: tied scores are pooled, then linear interpolation."""
    order = np.argsort(scores, kind="mergesort")
    xs, ys = scores[order], targets[order]
    ux, start, counts = np.unique(xs, return_index=True, return_counts=True)
    sums = np.add.reduceat(ys, start) if ys.size else ys
    fitted = isotonic_regression(sums / counts, counts.astype(np.float64))
    return _IsotonicCurve(ux, np.clip(fitted, 0.0, 1.0))


class IsotonicCalibrator:
    """Isotonic-regression calibration, one-vs-rest for more than two classes.

    Each class ``c`` gets a non-decreasing map from ``probs[:, c]`` to the frequency of
    ``labels == c`` (pool adjacent violators on the calibration data, linear interpolation between
    the fitted points, clipped outside them, as scikit-learn's ``IsotonicRegression`` with
    ``out_of_bounds="clip"``). With two classes only the positive column is fitted and the other is
    its complement; with more, the mapped columns are renormalised to sum 1 (Zadrozny & Elkan 2002;
    a row whose mapped values are all 0 keeps its input probabilities).

    Attributes
    ----------
    n_classes_ : int
        Number of classes seen in ``fit``.

    References
    ----------
    B. Zadrozny, C. Elkan, "Transforming Classifier Scores into Accurate Multiclass Probability
    Estimates", KDD 2002, doi:10.1145/775047.775151.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    >>> IsotonicCalibrator().fit(probs, np.array([1, 0, 1, 1])).transform(probs)[:, 1].tolist()
    [0.5, 0.5, 1.0, 1.0]
    """

    def fit(self, probs: Any, labels: Any) -> Self:
        """Fit one isotonic map per class on ``probs`` (n, k) and ``labels`` (n,)."""
        p = check_probs(probs)
        y = check_labels(labels, p.shape[1], p.shape[0])
        if p.shape[0] == 0:
            raise InvalidInputError("probs must have at least one row to fit isotonic calibration, got 0")
        k = p.shape[1]
        self.n_classes_ = k
        columns = [1] if k == 2 else list(range(k))
        self.curves_ = {c: _fit_curve(p[:, c], (y == c).astype(np.float64)) for c in columns}
        return self

    def transform(self, probs: Any) -> FloatArray:
        """Calibrated probabilities (n, k) for ``probs`` (n, k)."""
        if not hasattr(self, "curves_"):
            raise _not_fitted(self)
        p = check_probs(probs)
        if p.shape[1] != self.n_classes_:
            raise InvalidInputError(f"probs must have {self.n_classes_} columns as in fit, got {p.shape[1]}")
        if self.n_classes_ == 2:
            pos = self.curves_[1](p[:, 1])
            return np.column_stack([1.0 - pos, pos])
        out = np.column_stack([self.curves_[c](p[:, c]) for c in range(self.n_classes_)])
        sums = out.sum(axis=1, keepdims=True)
        zero = sums[:, 0] <= 0
        out[zero] = p[zero]
        sums[zero] = 1.0
        return out / sums

    def fit_transform(self, probs: Any, labels: Any) -> FloatArray:
        """Fit on ``probs``/``labels`` and return the calibrated ``probs``."""
        return self.fit(probs, labels).transform(probs)


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Top-label reliability diagram data over equal-width confidence bins.

    Attributes
    ----------
    bin_edges : ndarray, shape (n_bins + 1,)
        Bin boundaries in [0, 1]; bin ``b`` holds confidences in ``(edges[b], edges[b + 1]]``
        (the first bin also holds 0).
    confidence : ndarray, shape (n_bins,)
        Mean top-label probability per bin (NaN for an empty bin).
    accuracy : ndarray, shape (n_bins,)
        Fraction of items whose top label is right per bin (NaN for an empty bin).
    counts : ndarray of int, shape (n_bins,)
        Items per bin.
    ece : float
        Expected calibration error: ``sum_b counts_b / n * |accuracy_b - confidence_b|``.
    """

    bin_edges: FloatArray
    confidence: FloatArray
    accuracy: FloatArray
    counts: IntArray
    ece: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""

        def clean(a: FloatArray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "bin_edges": [float(v) for v in self.bin_edges],
            "confidence": clean(self.confidence),
            "accuracy": clean(self.accuracy),
            "counts": [int(v) for v in self.counts],
            "ece": self.ece,
        }


def reliability_diagram(probs: Any, labels: Any, *, n_bins: int = 15) -> ReliabilityDiagram:
    """Reliability diagram data and ECE of the top label (Guo et al. 2017; Naeini et al. 2015).

    Parameters
    ----------
    probs : array-like of float, shape (n_items, n_classes)
        Predicted probabilities.
    labels : array-like of int, shape (n_items,)
        True classes.
    n_bins : int
        Number of equal-width confidence bins (15 as in Guo et al.).

    Returns
    -------
    ReliabilityDiagram

    Examples
    --------
    >>> import numpy as np
    >>> d = reliability_diagram(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]), n_bins=10)
    >>> round(d.ece, 3)
    0.35
    """
    n_bins = check_int("n_bins", n_bins, 1, _MAX_BINS)
    p = check_probs(probs)
    y = check_labels(labels, p.shape[1], p.shape[0])
    if p.shape[0] == 0:
        raise InvalidInputError("probs must have at least one row to measure calibration, got 0")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        mean_acc = np.bincount(idx, weights=correct, minlength=n_bins) / counts
    n = max(int(counts.sum()), 1)
    filled = counts > 0
    ece = float(np.sum(counts[filled] / n * np.abs(mean_acc[filled] - mean_conf[filled])))
    return ReliabilityDiagram(edges, mean_conf, mean_acc, counts.astype(np.int64), ece)


def expected_calibration_error(probs: Any, labels: Any, *, n_bins: int = 15) -> float:
    """Top-label expected calibration error with ``n_bins`` equal-width bins.

    ``ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|`` (Naeini et al. 2015; Guo et al. 2017).
    0 for a perfectly calibrated model (up to sampling noise); see :func:`reliability_diagram`.

    Examples
    --------
    >>> import numpy as np
    >>> expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    0.0
    """
    return reliability_diagram(probs, labels, n_bins=n_bins).ece
