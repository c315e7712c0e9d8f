"""Input handling of conformal prediction, calibration and decision policies (veracity.decide)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veracity.decide import (
    CoverageWarning,
    DecisionPolicy,
    SplitConformal,
    TemperatureScaling,
    conformal_quantile,
    decide,
    evaluate_sets,
    expected_calibration_error,
    reliability_diagram,
    risk_coverage_curve,
)
from veracity.errors import InvalidInputError

RNG = np.random.default_rng(0)
PROBS = RNG.dirichlet(np.full(3, 0.5), size=200)
LABELS = np.arange(200) % 3


# -- DecisionPolicy.from_dict (JSON from the API) ------------------------------------------------
@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"class_conditional": "false"}, "class_conditional"),
        ({"class_conditional": 1}, "class_conditional"),
        ({"coverage": None}, "coverage"),
        ({"coverage": "0.9"}, "coverage"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"score": ["lac"]}, "score"),
        ({"calibration": None}, "calibration"),
    ],
)
def test_policy_from_dict_rejects_wrong_types(data: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidInputError, match=name):
        DecisionPolicy.from_dict(data)


def test_policy_from_dict_accepts_real_values() -> None:
    policy = DecisionPolicy.from_dict({"class_conditional": False, "coverage": 0.8, "threshold": 1})
    assert policy.class_conditional is False and policy.threshold == 1


# -- evaluate_sets -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sets",
    [PROBS, np.where(PROBS > 0.5, np.nan, 1.0), np.full(PROBS.shape, "x"), np.full(PROBS.shape, 2)],
)
def test_evaluate_sets_requires_membership_flags(sets: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="sets must be bool"):
        evaluate_sets(sets, LABELS)


def test_evaluate_sets_accepts_zero_one_numbers() -> None:
    flags = PROBS > 0.3
    assert evaluate_sets(flags.astype(int), LABELS).to_dict() == evaluate_sets(flags, LABELS).to_dict()
    assert evaluate_sets(flags.astype(float), LABELS).to_dict() == evaluate_sets(flags, LABELS).to_dict()


@pytest.mark.parametrize("n_bins", [0, -1, "x", 2.5, 10**9])
def test_evaluate_sets_checks_n_bins(n_bins: object) -> None:
    with pytest.raises(InvalidInputError, match="n_bins"):
        evaluate_sets(PROBS > 0.3, LABELS, PROBS, n_bins=n_bins)  # type: ignore[arg-type]


# -- fitting on too few rows ---------------------------------------------------------------------
def test_fit_on_zero_rows_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="cal_probs must have at least one"):
        SplitConformal().fit(np.zeros((0, 3)), [])
    with pytest.raises(InvalidInputError, match="cal_probs must have at least one"):
        DecisionPolicy().fit(np.zeros((0, 3)), [])


def test_too_few_rows_for_the_coverage_warns() -> None:
    with pytest.warns(CoverageWarning, match="every prediction set holds every label"):
        cp = SplitConformal(0.9, score="aps").fit(PROBS[:5], LABELS[:5])
    assert cp.quantile_ == math.inf
    with pytest.warns(CoverageWarning):
        SplitConformal(0.9, class_conditional=True).fit(PROBS[:6], LABELS[:6])


@pytest.mark.parametrize("fn", [expected_calibration_error, reliability_diagram])
def test_calibration_error_of_nothing_is_an_error(fn: object) -> None:
    with pytest.raises(InvalidInputError, match="at least one row"):
        fn(np.zeros((0, 3)), np.zeros(0, dtype=int))  # type: ignore[operator]


# -- risk_coverage_curve -------------------------------------------------------------------------
@pytest.mark.parametrize("thresholds", [[[0.1, 0.2]], [0.5, np.nan], [], [-0.1], [1.5], ["a"]])
def test_risk_coverage_thresholds_are_checked(thresholds: object) -> None:
    with pytest.raises(InvalidInputError, match="thresholds"):
        risk_coverage_curve(PROBS, LABELS, thresholds=thresholds)


def test_risk_coverage_scalar_threshold_and_at() -> None:
    curve = risk_coverage_curve(PROBS, LABELS, thresholds=0.5)
    assert curve.thresholds.tolist() == [0.5]
    assert curve.at(0.7)["threshold"] == 0.5
    with pytest.raises(InvalidInputError, match="threshold"):
        curve.at(float("nan"))


# -- conformal_quantile --------------------------------------------------------------------------
def test_conformal_quantile_rejects_nan_scores_and_bad_coverage() -> None:
    with pytest.raises(InvalidInputError, match="scores must not be NaN"):
        conformal_quantile([np.nan, 0.1, 0.2, 0.3], 0.5)
    for cov in (float("nan"), -1, 0, 1, "x", None):
        with pytest.raises(InvalidInputError, match="coverage"):
            conformal_quantile([0.1, 0.2], cov)  # type: ignore[arg-type]
    assert conformal_quantile([0.1, 0.2, 0.3], 0.5) == 0.2


# -- bad scalars ---------------------------------------------------------------------------------
def test_decide_checks_predictor_and_policy() -> None:
    policy = DecisionPolicy()
    with pytest.raises(InvalidInputError, match="predictor"):
        decide(PROBS, None, policy)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="policy"):
        decide(PROBS, policy.fit(PROBS, LABELS), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bounds", [(0.05, np.inf), (2,), (0.05, "x"), None, (2.0, 1.0)])
def test_temperature_bounds_are_checked(bounds: object) -> None:
    with pytest.raises(InvalidInputError, match="bounds"):
        TemperatureScaling(bounds=bounds).fit(PROBS, LABELS)  # type: ignore[arg-type]


def test_temperature_apply_checks_temperature() -> None:
    with pytest.raises(InvalidInputError, match="temperature"):
        TemperatureScaling.apply(PROBS, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"coverage": None}, "coverage"),
        ({"coverage": "x"}, "coverage"),
        ({"lam": "x"}, "lam"),
        ({"k_reg": "x"}, "k_reg"),
        ({"class_conditional": "false"}, "class_conditional"),
    ],
)
def test_split_conformal_checks_parameters(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidInputError, match=name):
        SplitConformal(**kwargs).fit(PROBS, LABELS)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_bins", ["x", 0, 10**9])
def test_calibration_error_checks_n_bins(n_bins: object) -> None:
    with pytest.raises(InvalidInputError, match="n_bins"):
        expected_calibration_error(PROBS, LABELS, n_bins=n_bins)  # type: ignore[arg-type]
