"""Decision policy: auto-accept confident single-label predictions, send the rest to review.

A service keeps one :class:`DecisionPolicy` per project, fits its conformal predictor on labelled
held-out items (:meth:`DecisionPolicy.fit`), routes new items with :func:`decide` and shows the
expected automation and error rates with :func:`risk_coverage_curve`.

An item is accepted when its conformal prediction set is a single label *and* the (calibrated)
probability of that label is at least ``threshold``; anything else goes to a person, who sees the
set. With a set-valued rule the accepted items' error rate is bounded through the set's coverage:
a singleton set misses the true label for at most ``1 - coverage`` of all items on average.

With ``calibration="temperature"`` the policy first fits temperature scaling (Guo et al. 2017) on
the same labelled items, so that the threshold applies to calibrated probabilities even when the
model's are over-confident, and the conformal sets are built on them (as in Angelopoulos et al.
2021, arXiv:2009.14193): for a 100-class model this gives smaller sets at the same coverage.

References
----------
R. El-Yaniv, Y. Wiener, "On the Foundations of Noise-free Selective Classification", JMLR 11, 2010
(risk-coverage curves); A. N. Angelopoulos, S. Bates, "A Gentle Introduction to Conformal Prediction
and Distribution-Free Uncertainty Quantification", arXiv:2107.07511, 2021.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.decide._checks import check_bool, check_labels, check_probs, check_unit_interval
from veracity.decide.calibration import TemperatureScaling
from veracity.decide.conformal import SCORES, ScoreName, SplitConformal
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, IntArray, RandomState

__all__ = [
    "ACCEPT",
    "CALIBRATIONS",
    "REVIEW",
    "DecisionPolicy",
    "Decisions",
    "PolicyPredictor",
    "RiskCoverageCurve",
    "decide",
    "risk_coverage_curve",
]

ACCEPT = "accept"
REVIEW = "review"
#: Values of ``DecisionPolicy.calibration``.
CALIBRATIONS = ("none", "temperature")
_FIELDS = ("coverage", "score", "threshold", "class_conditional", "calibration")


@dataclass(frozen=True)
class DecisionPolicy:
    """How a project routes model outputs: conformal coverage, score and confidence threshold.

    Parameters
    ----------
    coverage : float
        Target coverage of the prediction sets, in (0, 1).
    score : {"lac", "aps", "raps"}
        Conformity score (see :class:`~veracity.decide.SplitConformal`).
    threshold : float
        Minimum probability of the top label for auto-accept, in [0, 1].
    class_conditional : bool
        Calibrate per class (Mondrian) so that coverage holds for every class.
    calibration : {"none", "temperature"}
        ``"temperature"``: recalibrate the model's probabilities by temperature scaling fitted on
        the calibration items before the sets and the threshold use them. One parameter fitted on
        the items that also set the conformal quantile: the coverage guarantee then holds up to
        that one parameter's fit (negligible beyond a few hundred items); ``"none"`` (default)
        takes the probabilities as calibrated already.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> probs = rng.dirichlet([0.3, 0.3, 0.3], size=400)
    >>> labels = np.array([rng.choice(3, p=p) for p in probs])
    >>> policy = DecisionPolicy(coverage=0.9, threshold=0.8)
    >>> predictor = policy.fit(probs[:200], labels[:200])
    >>> out = decide(probs[200:], predictor, policy)
    >>> sorted(set(out.outcome.tolist())) <= ["accept", "review"]
    True
    """

    coverage: float = 0.9
    score: ScoreName = "lac"
    threshold: float = 0.0
    class_conditional: bool = False
    calibration: str = "none"

    def validate(self) -> DecisionPolicy:
        """Return ``self`` after checking every field (raises :class:`InvalidInputError`)."""
        check_unit_interval("coverage", self.coverage)
        check_unit_interval("threshold", self.threshold, open_low=False, open_high=False)
        check_bool("class_conditional", self.class_conditional)
        if not isinstance(self.score, str) or self.score not in SCORES:
            raise InvalidInputError(f"score must be one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        if not isinstance(self.calibration, str) or self.calibration not in CALIBRATIONS:
            raise InvalidInputError(
                f"calibration must be one of {', '.join(map(repr, CALIBRATIONS))}, got {self.calibration!r}"
            )
        return self

    def predictor(self, *, random_state: RandomState = None) -> SplitConformal:
        """An unfitted :class:`SplitConformal` with this policy's settings (never-empty sets)."""
        self.validate()
        return SplitConformal(
            self.coverage, score=self.score, class_conditional=self.class_conditional, random_state=random_state
        )

    def fit(self, cal_probs: Any, cal_labels: Any, *, random_state: RandomState = None) -> PolicyPredictor:
        """Fit this policy's calibration and conformal predictor on held-out probabilities and true labels."""
        self.validate()
        p = check_probs(cal_probs, name="cal_probs")
        calibrator = TemperatureScaling().fit(p, cal_labels) if self.calibration == "temperature" else None
        if calibrator is not None:
            p = calibrator.transform(p)
        return PolicyPredictor(calibrator, self.predictor(random_state=random_state).fit(p, cal_labels))

    def to_dict(self) -> dict[str, Any]:
        """The policy as a JSON-ready dict (stored with every decision)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionPolicy:
        """Inverse of :meth:`to_dict`; unknown keys are an error, and so are values of the wrong type
        (``"false"`` for a bool, ``None`` or ``"high"`` for a number)."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"a decision policy must be an object of fields, got {type(data).__name__}")
        unknown = set(data) - set(_FIELDS)
        if unknown:
            raise InvalidInputError(f"unknown decision policy fields: {', '.join(sorted(unknown))}")
        return cls(**data).validate()


@dataclass(frozen=True)
class PolicyPredictor:
    """A fitted policy: the probability calibration (or None) and the conformal predictor on top.

    ``predict_sets`` and :func:`decide` calibrate the probabilities first, so callers pass the
    model's raw outputs.
    """

    calibrator: TemperatureScaling | None
    conformal: SplitConformal

    def calibrate(self, probs: Any) -> FloatArray:
        """The probabilities the policy works with: ``probs`` recalibrated, or as given."""
        return self.calibrator.transform(probs) if self.calibrator is not None else check_probs(probs)

    def predict_sets(self, probs: Any) -> npt.NDArray[np.bool_]:
        """Conformal prediction sets (never empty) of the recalibrated ``probs``."""
        return self.conformal.predict_sets(self.calibrate(probs))

    def to_dict(self) -> dict[str, Any]:
        """What was fitted, for the record: the temperature (if any) and the conformal threshold."""
        q = np.asarray(self.conformal.quantile_, dtype=np.float64)
        return {
            "temperature": None if self.calibrator is None else float(self.calibrator.temperature_),
            "quantile": float(q) if q.ndim == 0 else [float(v) for v in q],
            "n_calibration": int(self.conformal.n_calibration_),
        }


def _probs_and_sets(
    probs: Any, predictor: PolicyPredictor | SplitConformal
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """The probabilities a predictor works with (recalibrated by a :class:`PolicyPredictor`, as
    given to a plain :class:`SplitConformal`) and their prediction sets."""
    if isinstance(predictor, PolicyPredictor):
        p = predictor.calibrate(probs)
        return p, predictor.conformal.predict_sets(p)
    if not isinstance(predictor, SplitConformal):
        raise InvalidInputError(
            "predictor must be a fitted PolicyPredictor or SplitConformal (from policy.fit), "
            f"got {type(predictor).__name__}"
        )
    p = check_probs(probs)
    return p, predictor.predict_sets(p)


@dataclass(frozen=True)
class Decisions:
    """Per-item routing produced by :func:`decide`.

    Attributes
    ----------
    sets : ndarray of bool, shape (n_items, n_classes)
        Conformal prediction sets (never empty).
    top_label : ndarray of int, shape (n_items,)
        Most probable label.
    confidence : ndarray of float, shape (n_items,)
        Probability of ``top_label``.
    outcome : ndarray of str, shape (n_items,)
        ``"accept"`` or ``"review"``.
    """

    sets: npt.NDArray[np.bool_]
    top_label: IntArray
    confidence: FloatArray
    outcome: npt.NDArray[np.str_]

    @property
    def accepted(self) -> npt.NDArray[np.bool_]:
        """Mask of auto-accepted items."""
        return self.outcome == ACCEPT

    @property
    def automation_rate(self) -> float:
        """Fraction of items accepted without review."""
        return float(self.accepted.mean()) if self.outcome.size else 0.0

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per item: ``set`` (label indices), ``top_label``, ``confidence``, ``outcome``."""
        return [
            {
                "set": np.flatnonzero(self.sets[i]).tolist(),
                "top_label": int(self.top_label[i]),
                "confidence": float(self.confidence[i]),
                "outcome": str(self.outcome[i]),
            }
            for i in range(self.outcome.size)
        ]


def decide(probs: Any, predictor: PolicyPredictor | SplitConformal, policy: DecisionPolicy) -> Decisions:
    """Route each item: accept a single-label set whose confidence clears the threshold, else review.

    Parameters
    ----------
    probs : array-like of float, shape (n_items, n_classes)
        Model probabilities for the items to decide on (recalibrated by ``predictor`` when it is
        a :class:`PolicyPredictor` with a calibrator; a plain :class:`SplitConformal` takes them
        as calibrated).
    predictor : PolicyPredictor or SplitConformal
        Fitted predictor (e.g. ``policy.fit(cal_probs, cal_labels)``).
    policy : DecisionPolicy
        Threshold (and, for the record, coverage and score) to apply.

    Returns
    -------
    Decisions
    """
    if not isinstance(policy, DecisionPolicy):
        raise InvalidInputError(f"policy must be a DecisionPolicy, got {type(policy).__name__}")
    policy.validate()
    p, sets = _probs_and_sets(probs, predictor)
    top = np.argmax(p, axis=1).astype(np.int64)
    conf = p[np.arange(p.shape[0]), top]
    accept = (sets.sum(axis=1) == 1) & sets[np.arange(p.shape[0]), top] & (conf >= policy.threshold)
    outcome = np.where(accept, ACCEPT, REVIEW)
    return Decisions(sets=sets, top_label=top, confidence=conf, outcome=outcome)


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Automation rate and error rate of auto-accepted items, per confidence threshold.

    Attributes
    ----------
    thresholds : ndarray, shape (n_points,)
        Confidence thresholds, increasing.
    automation_rate : ndarray, shape (n_points,)
        Fraction of items auto-accepted at each threshold.
    error_rate : ndarray, shape (n_points,)
        Fraction of auto-accepted items whose label is wrong (selective risk; NaN if none accepted).
    error_per_item : ndarray, shape (n_points,)
        Wrongly auto-accepted items as a fraction of all items.
    coverage : float
        Empirical coverage of the prediction sets on these items (NaN without a predictor).
    """

    thresholds: FloatArray
    automation_rate: FloatArray
    error_rate: FloatArray
    error_per_item: FloatArray
    coverage: float

    def at(self, threshold: float) -> dict[str, float]:
        """Automation and error rates at the largest grid threshold not above ``threshold``."""
        threshold = check_unit_interval("threshold", threshold, open_low=False, open_high=False)
        i = max(int(np.searchsorted(self.thresholds, threshold, side="right")) - 1, 0)
        return {
            "threshold": float(self.thresholds[i]),
            "automation_rate": float(self.automation_rate[i]),
            "error_rate": float(self.error_rate[i]),
            "error_per_item": float(self.error_per_item[i]),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""

        def clean(a: FloatArray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "thresholds": clean(self.thresholds),
            "automation_rate": clean(self.automation_rate),
            "error_rate": clean(self.error_rate),
            "error_per_item": clean(self.error_per_item),
            "coverage": None if not np.isfinite(self.coverage) else self.coverage,
        }


def _check_thresholds(thresholds: Any) -> FloatArray:
    """Thresholds as a sorted 1-D float array: numbers in [0, 1], at least one (a scalar is one)."""
    t = np.asarray(thresholds)
    if t.dtype.kind not in "fiu":
        raise InvalidInputError(f"thresholds must be numbers in [0, 1], got dtype {t.dtype}")
    t = np.atleast_1d(t.astype(np.float64))
    if t.ndim != 1 or t.size == 0:
        raise InvalidInputError(f"thresholds must be a non-empty 1-D list of numbers, got shape {np.shape(thresholds)}")
    bad = ~((t >= 0) & (t <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f"thresholds must be in [0, 1], got {t[i]!r} at position {i}")
    return np.sort(t)


def risk_coverage_curve(
    probs: Any,
    labels: Any,
    predictor: PolicyPredictor | SplitConformal | None = None,
    *,
    thresholds: Any = None,
) -> RiskCoverageCurve:
    """Expected automation rate and error rate of the accept rule, over confidence thresholds.

    Estimate it on labelled items that were *not* used to fit ``predictor`` (e.g. a held-out half of
    the labelled items), so that the rates are honest for new items.

    Parameters
    ----------
    probs : array-like of float, shape (n_items, n_classes)
        Calibrated probabilities.
    labels : array-like of int, shape (n_items,)
        True classes.
    predictor : PolicyPredictor or SplitConformal, optional
        Fitted predictor; items are accepted only when their set is a single label, and a
        :class:`PolicyPredictor` recalibrates ``probs`` first. Without it, the plain
        selective-classification curve (accept when confidence >= threshold).
    thresholds : array-like of float, optional
        Thresholds to evaluate (default: 101 points from 0 to 1).

    Returns
    -------
    RiskCoverageCurve

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> c = risk_coverage_curve(probs, np.array([0, 1, 1]), thresholds=[0.5, 0.7])
    >>> c.automation_rate.tolist(), c.error_rate.tolist()
    ([1.0, 0.6666666666666666], [0.3333333333333333, 0.0])
    """
    p, sets = (check_probs(probs), None) if predictor is None else _probs_and_sets(probs, predictor)
    y = check_labels(labels, p.shape[1], p.shape[0])
    n = p.shape[0]
    if n == 0:
        raise InvalidInputError("probs must have at least one row, got 0")
    grid = np.linspace(0.0, 1.0, 101) if thresholds is None else _check_thresholds(thresholds)
    top = np.argmax(p, axis=1)
    conf = p[np.arange(n), top]
    wrong = top != y
    eligible = np.ones(n, dtype=bool)
    coverage = float("nan")
    if sets is not None:
        eligible = (sets.sum(axis=1) == 1) & sets[np.arange(n), top]
        coverage = float(sets[np.arange(n), y].mean())
    # Sort eligible confidences once; a threshold accepts the eligible items with conf >= t.
    conf_e = np.sort(conf[eligible])
    wrong_e = wrong[eligible][np.argsort(conf[eligible], kind="stable")]
    wrong_tail = np.concatenate([np.cumsum(wrong_e[::-1])[::-1], [0]])
    first = np.searchsorted(conf_e, grid, side="left")
    n_acc = conf_e.size - first
    n_wrong = wrong_tail[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(n_acc > 0, n_wrong / np.maximum(n_acc, 1), np.nan)
    return RiskCoverageCurve(
        thresholds=grid,
        automation_rate=n_acc / n,
        error_rate=err.astype(np.float64),
        error_per_item=n_wrong / n,
        coverage=coverage,
    )
