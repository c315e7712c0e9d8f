"""Label shift: BBSE (Lipton et al. 2018), EM prior adjustment (Saerens et al. 2002), re-weighting."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.align import bbse, detect_drift, em_prior_adjustment, estimate_label_shift, reweight_probs
from veracity.errors import ConvergenceWarning, InvalidInputError

MEANS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])


def world(priors: list[float], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes with known means; probabilities are the Bayes posterior under uniform priors."""
    y = rng.choice(3, size=n, p=priors)
    x = MEANS[y] + rng.normal(size=(n, 2))
    logits = -0.5 * ((x[:, None, :] - MEANS[None, :, :]) ** 2).sum(-1)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True), y


@pytest.mark.parametrize("soft", [True, False])
def test_bbse_recovers_shifted_priors(soft: bool) -> None:
    rng = np.random.default_rng(0)
    ps, ys = world([1 / 3, 1 / 3, 1 / 3], 6000, rng)
    pt, _ = world([0.7, 0.2, 0.1], 6000, rng)
    res = bbse(ps, ys, pt, soft=soft)
    np.testing.assert_allclose(res.target_priors, [0.7, 0.2, 0.1], atol=0.04)
    np.testing.assert_allclose(res.weights * res.source_priors, res.target_priors, atol=1e-12)
    assert res.p_value < 1e-6
    np.testing.assert_allclose(res.adjusted_probs.sum(1), 1.0)


def test_bbse_works_with_a_miscalibrated_model() -> None:
    rng = np.random.default_rng(1)
    ps, ys = world([1 / 3] * 3, 6000, rng)
    pt, _ = world([0.1, 0.3, 0.6], 6000, rng)
    sharpen = lambda p: p**3 / (p**3).sum(1, keepdims=True)  # noqa: E731 - over-confident model
    res = bbse(sharpen(ps), ys, sharpen(pt))
    np.testing.assert_allclose(res.target_priors, [0.1, 0.3, 0.6], atol=0.04)


def test_em_recovers_priors_and_improves_accuracy() -> None:
    rng = np.random.default_rng(2)
    pt, yt = world([0.8, 0.15, 0.05], 8000, rng)
    res = em_prior_adjustment(pt, [1 / 3, 1 / 3, 1 / 3])
    assert res.converged and res.n_iter > 1
    np.testing.assert_allclose(res.target_priors, [0.8, 0.15, 0.05], atol=0.03)
    assert np.mean(res.adjusted_probs.argmax(1) == yt) > np.mean(pt.argmax(1) == yt)


def test_no_shift_keeps_the_priors() -> None:
    rng = np.random.default_rng(3)
    ps, ys = world([1 / 3] * 3, 6000, rng)
    pt, _ = world([1 / 3] * 3, 6000, rng)
    for method in ("bbse", "em"):
        res = estimate_label_shift(ps, ys, pt, method=method)
        np.testing.assert_allclose(res.target_priors, [1 / 3] * 3, atol=0.03)
        assert res.p_value > 0.001


def test_em_warns_when_it_runs_out_of_iterations() -> None:
    rng = np.random.default_rng(4)
    pt, _ = world([0.8, 0.1, 0.1], 500, rng)
    with pytest.warns(ConvergenceWarning, match="n_iter=1"):
        res = em_prior_adjustment(pt, [1 / 3] * 3, n_iter=1)
    assert not res.converged


@given(st.integers(0, 10_000), st.lists(st.floats(0.0, 5.0), min_size=4, max_size=4))
@settings(max_examples=40, deadline=None)
def test_reweighting_gives_distributions(seed: int, weights: list[float]) -> None:
    probs = np.random.default_rng(seed).dirichlet(np.ones(4), size=30)
    out = reweight_probs(probs, weights)
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert np.all(out >= 0)
    np.testing.assert_allclose(reweight_probs(probs, np.ones(4)), probs)


def test_detect_drift_reports_label_shift() -> None:
    rng = np.random.default_rng(5)
    ps, ys = world([1 / 3] * 3, 3000, rng)
    pt, _ = world([0.6, 0.3, 0.1], 3000, rng)
    ref = {"x": rng.normal(size=300)}
    cur = {"x": rng.normal(size=300)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = detect_drift(
            ref, cur, reference_probs=ps, reference_labels=ys, current_probs=pt, n_clusters=0, random_state=0
        )
    assert report.label_shift is not None
    np.testing.assert_allclose(report.label_shift.target_priors, [0.6, 0.3, 0.1], atol=0.05)
    assert report.to_dict()["label_shift"]["method"] == "bbse"
    assert "Label shift" in report.to_html()
    with pytest.raises(InvalidInputError, match="together"):
        detect_drift(ref, cur, reference_probs=ps)


def test_label_shift_input_errors() -> None:
    probs = np.full((4, 2), 0.5)
    with pytest.raises(InvalidInputError, match="source_labels"):
        bbse(probs, np.array([0, 1, 2, 0]), probs)
    with pytest.raises(InvalidInputError, match="2 columns"):
        bbse(probs, np.array([0, 1, 1, 0]), np.full((4, 3), 1 / 3))
    with pytest.raises(InvalidInputError, match="source_priors"):
        em_prior_adjustment(probs, [1.0, 0.0])
    with pytest.raises(InvalidInputError, match="method"):
        estimate_label_shift(probs, np.array([0, 1, 1, 0]), probs, method="magic")
