"""Calibration: isotonic regression (PAV), temperature scaling, ECE and reliability diagrams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from sklearn.isotonic import IsotonicRegression

from veracity.decide import (
    IsotonicCalibrator,
    TemperatureScaling,
    expected_calibration_error,
    isotonic_regression,
    reliability_diagram,
)
from veracity.errors import InvalidInputError


def sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(probs.shape[0])[:, None]
    return np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), probs.shape[1] - 1)


# -- isotonic regression -------------------------------------------------------------------------
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=60),
    st.booleans(),
)
@settings(max_examples=30, deadline=None)
def test_pav_matches_sklearn(values: list[float], increasing: bool) -> None:
    y = np.array(values)
    x = np.arange(y.size, dtype=float)
    expected = IsotonicRegression(increasing=increasing).fit_transform(x, y)
    np.testing.assert_allclose(isotonic_regression(y, increasing=increasing), expected, rtol=1e-9, atol=1e-9)


@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(0.1, 5.0)), min_size=1, max_size=40))
@settings(max_examples=25, deadline=None)
def test_weighted_pav_is_monotone_and_matches_sklearn(pairs: list[tuple[float, float]]) -> None:
    y = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    fit = isotonic_regression(y, w)
    assert np.all(np.diff(fit) >= -1e-12)
    # weighted means are preserved within each block, so the weighted totals agree
    assert float(w @ fit) == pytest.approx(float(w @ y), abs=1e-8)
    expected = IsotonicRegression().fit_transform(np.arange(y.size, dtype=float), y, sample_weight=w)
    np.testing.assert_allclose(fit, expected, rtol=1e-9, atol=1e-9)


def test_pav_known_answer_and_errors() -> None:
    assert isotonic_regression([3.0, 1.0, 2.0]).tolist() == [2.0, 2.0, 2.0]
    assert isotonic_regression([]).tolist() == []
    with pytest.raises(InvalidInputError, match="same length"):
        isotonic_regression([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInputError, match="weights"):
        isotonic_regression([1.0, 2.0], [1.0, 0.0])


def test_isotonic_calibrator_binary_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    p1 = np.round(rng.random(400), 2)  # many ties
    labels = (rng.random(400) < p1**2).astype(int)  # miscalibrated on purpose
    probs = np.column_stack([1 - p1, p1])
    cal = IsotonicCalibrator().fit(probs, labels)
    test = np.round(rng.random(200) * 1.2 - 0.1, 3).clip(0, 1)
    ours = cal.transform(np.column_stack([1 - test, test]))[:, 1]
    ref = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p1, labels).predict(test)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_isotonic_calibrator_multiclass_rows_sum_to_one_and_reduce_ece() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6000, 4)) * 2
    true = special.softmax(logits, axis=1)
    labels = sample_labels(true, rng)
    overconfident = special.softmax(logits * 2.5, axis=1)
    cal = IsotonicCalibrator().fit(overconfident[:3000], labels[:3000])
    out = cal.transform(overconfident[3000:])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    before = expected_calibration_error(overconfident[3000:], labels[3000:])
    after = expected_calibration_error(out, labels[3000:])
    assert after < before / 2


# -- temperature scaling -------------------------------------------------------------------------
def test_temperature_scaling_recovers_the_temperature() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8000, 5)) * 1.5
    labels = sample_labels(special.softmax(logits, axis=1), rng)
    overconfident = special.softmax(logits * 2.0, axis=1)
    ts = TemperatureScaling().fit(overconfident, labels)
    assert ts.temperature_ == pytest.approx(2.0, rel=0.08)
    assert ts.nll_after_ < ts.nll_before_
    out = ts.transform(overconfident)
    np.testing.assert_array_equal(out.argmax(1), overconfident.argmax(1))
    assert expected_calibration_error(out, labels) < expected_calibration_error(overconfident, labels)


def test_temperature_scaling_errors() -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        TemperatureScaling().transform(np.array([[0.5, 0.5]]))
    with pytest.raises(InvalidInputError, match="bounds"):
        TemperatureScaling(bounds=(2.0, 1.0)).fit(np.array([[0.5, 0.5]]), np.array([0]))


# -- ECE and reliability diagrams ----------------------------------------------------------------
@given(st.integers(0, 10_000), st.integers(2, 6))
@settings(max_examples=10, deadline=None)
def test_ece_of_perfectly_calibrated_data_is_near_zero(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=20_000)
    labels = sample_labels(probs, rng)
    assert expected_calibration_error(probs, labels) < 0.03


def test_reliability_diagram_known_answer() -> None:
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.55, 0.45], [0.3, 0.7]])
    labels = np.array([0, 1, 0, 1])
    d = reliability_diagram(probs, labels, n_bins=10)
    assert d.counts.sum() == 4
    assert d.counts[9] == 1 and d.counts[8] == 1 and d.counts[5] == 1 and d.counts[6] == 1
    assert d.accuracy[8] == 0.0 and d.confidence[8] == pytest.approx(0.85)
    expected = (abs(1 - 0.95) + abs(0 - 0.85) + abs(1 - 0.55) + abs(1 - 0.7)) / 4
    assert d.ece == pytest.approx(expected)
    assert np.isnan(d.accuracy[0])
    assert d.to_dict()["accuracy"][0] is None
    with pytest.raises(InvalidInputError, match="n_bins"):
        reliability_diagram(probs, labels, n_bins=0)
