"""Split conformal prediction sets, decision policy and risk-coverage curve (veracity.decide)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.decide import (
    ACCEPT,
    REVIEW,
    CoverageWarning,
    DecisionPolicy,
    SplitConformal,
    conformal_quantile,
    decide,
    evaluate_sets,
    risk_coverage_curve,
)
from veracity.errors import InvalidInputError


def simulate(n: int, k: int, seed: int, concentration: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: a perfectly calibrated, exchangeable sample."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, concentration), size=n)
    u = rng.random(n)[:, None]
    labels = np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), k - 1)
    return probs, labels


# -- the quantile --------------------------------------------------------------------------------
@given(st.integers(1, 300), st.floats(0.05, 0.99), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_quantile_is_the_finite_sample_order_statistic(n: int, coverage: float, seed: int) -> None:
    scores = np.random.default_rng(seed).random(n)
    rank = math.ceil((n + 1) * coverage - 1e-9)
    q = conformal_quantile(scores, coverage)
    if rank > n:
        assert q == math.inf
    else:
        assert q == np.sort(scores)[max(rank, 1) - 1]
        # equivalently the empirical quantile at level ceil((n+1)(1-alpha))/n, "higher" rule
        assert np.mean(scores <= q) >= min(rank / n, 1.0) - 1e-12


def test_quantile_known_answer() -> None:
    assert conformal_quantile(np.arange(1, 10) / 10, 0.8) == 0.8
    assert conformal_quantile([0.5], 0.4) == 0.5
    assert conformal_quantile([], 0.9) == math.inf


# -- the guarantee -------------------------------------------------------------------------------
@pytest.mark.parametrize("score", ["lac", "aps", "raps"])
@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_marginal_coverage_holds_on_exchangeable_data(score: str, coverage: float) -> None:
    covs = []
    for seed in range(40):
        probs, labels = simulate(400, 6, seed)
        cp = SplitConformal(coverage, score=score, allow_empty=True).fit(probs[:200], labels[:200])
        sets = cp.predict_sets(probs[200:])
        covs.append(sets[np.arange(200), labels[200:]].mean())
    # E[coverage] >= coverage; 40 x 200 test items give a standard error near 0.005
    assert np.mean(covs) >= coverage - 0.015


def test_randomized_aps_is_close_to_exact() -> None:
    covs = []
    for seed in range(30):
        probs, labels = simulate(600, 5, seed)
        cp = SplitConformal(0.85, score="aps", randomized=True, allow_empty=True, random_state=seed)
        sets = cp.fit(probs[:300], labels[:300]).predict_sets(probs[300:])
        covs.append(sets[np.arange(300), labels[300:]].mean())
    assert 0.83 <= np.mean(covs) <= 0.88


def test_class_conditional_covers_every_class() -> None:
    rng = np.random.default_rng(3)
    n, k = 6000, 3
    labels = rng.choice(k, size=n, p=[0.8, 0.15, 0.05])
    # an over-confident model that favours the majority class
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels] + np.array([1.5, 0.0, 0.0])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cal, test = slice(0, n // 2), slice(n // 2, n)
    mondrian = SplitConformal(0.9, class_conditional=True).fit(probs[cal], labels[cal])
    ev = evaluate_sets(mondrian.predict_sets(probs[test]), labels[test])
    assert np.all(ev.class_coverage >= 0.86)
    assert np.shape(mondrian.quantile_) == (k,)
    marginal = SplitConformal(0.9).fit(probs[cal], labels[cal])
    ev_m = evaluate_sets(marginal.predict_sets(probs[test]), labels[test])
    assert ev_m.class_coverage[2] < ev.class_coverage[2]


# -- structure of the sets -----------------------------------------------------------------------
@given(st.integers(0, 10_000), st.sampled_from(["lac", "aps", "raps"]), st.booleans())
@settings(max_examples=40, deadline=None)
def test_sets_are_nested_in_coverage(seed: int, score: str, mondrian: bool) -> None:
    probs, labels = simulate(300, 5, seed)
    previous = None
    for cov in (0.5, 0.7, 0.8, 0.9, 0.95):
        cp = SplitConformal(cov, score=score, class_conditional=mondrian).fit(probs[:150], labels[:150])
        sets = cp.predict_sets(probs[150:])
        if previous is not None:
            assert np.all(sets | ~previous), f"a set at coverage {cov} lost a label"
        previous = sets


@pytest.mark.filterwarnings("ignore::veracity.decide.CoverageWarning")  # tiny calibration sets are drawn
@given(st.integers(0, 10_000), st.sampled_from(["lac", "aps", "raps"]), st.floats(0.3, 0.99))
@settings(max_examples=40, deadline=None)
def test_sets_are_never_empty_by_default_and_hold_the_top_label(seed: int, score: str, cov: float) -> None:
    probs, labels = simulate(120, 4, seed, concentration=0.2)
    sets = SplitConformal(cov, score=score).fit(probs[:60], labels[:60]).predict_sets(probs[60:])
    assert sets.dtype == bool and sets.shape == (60, 4)
    assert sets.any(axis=1).all()
    assert sets[np.arange(60), probs[60:].argmax(1)].all()


@given(st.integers(0, 10_000), st.floats(0.5, 0.95))
@settings(max_examples=40, deadline=None)
def test_never_empty_lac_is_no_larger_than_filling_afterwards(seed: int, cov: float) -> None:
    probs, labels = simulate(200, 6, seed, concentration=0.3)
    plain = SplitConformal(cov, allow_empty=True).fit(probs[:100], labels[:100]).predict_sets(probs[100:])
    filled = plain.copy()
    filled[np.arange(100), probs[100:].argmax(1)] = True
    ours = SplitConformal(cov).fit(probs[:100], labels[:100]).predict_sets(probs[100:])
    assert ours.sum() <= filled.sum()


@given(st.integers(0, 10_000), st.sampled_from(["aps", "raps"]))
@settings(max_examples=30, deadline=None)
def test_aps_sets_are_prefixes_of_the_ranking(seed: int, score: str) -> None:
    probs, labels = simulate(160, 6, seed)
    sets = SplitConformal(0.9, score=score).fit(probs[:80], labels[:80]).predict_sets(probs[80:])
    order = np.argsort(-probs[80:], axis=1, kind="stable")
    ranked = np.take_along_axis(sets, order, axis=1)
    # once a label is out, every less probable label is out too
    assert np.all(np.diff(ranked.astype(int), axis=1) <= 0)


def test_lac_matches_a_direct_implementation() -> None:
    probs, labels = simulate(500, 5, 11)
    cal, test = probs[:250], probs[250:]
    cp = SplitConformal(0.85, score="lac", allow_empty=True).fit(cal, labels[:250])
    scores = 1 - cal[np.arange(250), labels[:250]]
    q = np.sort(scores)[math.ceil(251 * 0.85) - 1]
    assert cp.quantile_ == pytest.approx(q)
    np.testing.assert_array_equal(cp.predict_sets(test), 1 - test <= q)


def test_scores_match_between_fit_and_prediction() -> None:
    probs, labels = simulate(200, 7, 5)
    probs[:20, :2] = probs[:20, :2].mean(axis=1, keepdims=True)  # ties
    for score in ("lac", "aps", "raps"):
        cp = SplitConformal(0.9, score=score).fit(probs, labels)
        full = cp.conformity_scores(probs)
        np.testing.assert_allclose(cp.cal_scores_, full[np.arange(200), labels], atol=1e-12)


def test_too_few_calibration_items_keep_every_label() -> None:
    probs, labels = simulate(10, 3, 0)
    with pytest.warns(CoverageWarning, match="5 calibration items are too few for coverage=0.95"):
        cp = SplitConformal(0.95).fit(probs[:5], labels[:5])
    assert cp.quantile_ == math.inf
    assert cp.predict_sets(probs[5:]).all()


def test_refit_clears_state_and_params_round_trip() -> None:
    probs, labels = simulate(100, 3, 0)
    cp = SplitConformal(0.9, class_conditional=True).fit(probs, labels)
    cp.class_conditional = False
    cp.fit(probs, labels)
    assert np.ndim(cp.quantile_) == 0
    assert SplitConformal(**cp.get_params()).get_params() == cp.get_params()
    assert "SplitConformal(coverage=0.9" in repr(cp)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coverage": 1.0}, "coverage"),
        ({"coverage": 0.9, "score": "nope"}, "score"),
        ({"coverage": 0.9, "lam": -1.0}, "lam"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    probs, labels = simulate(20, 3, 0)
    with pytest.raises(InvalidInputError, match=match):
        SplitConformal(**kwargs).fit(probs, labels)


def test_bad_inputs_name_the_row() -> None:
    probs, labels = simulate(20, 3, 0)
    bad = probs.copy()
    bad[7] = [0.5, 0.5, 0.5]
    with pytest.raises(InvalidInputError, match="cal_probs row 7"):
        SplitConformal().fit(bad, labels)
    with pytest.raises(InvalidInputError, match="cal_labels row 2"):
        SplitConformal().fit(probs, np.r_[labels[:2], 9, labels[3:]])
    with pytest.raises(InvalidInputError, match="same number of rows"):
        SplitConformal().fit(probs, labels[:-1])
    with pytest.raises(InvalidInputError, match="not fitted"):
        SplitConformal().predict_sets(probs)
    with pytest.raises(InvalidInputError, match="3 columns"):
        SplitConformal().fit(probs, labels).predict_sets(probs[:, :2] / probs[:, :2].sum(1, keepdims=True))
    with pytest.raises(ValueError):  # InvalidInputError is also a ValueError
        SplitConformal().fit(probs * np.nan, labels)


def test_evaluate_sets_reports_classes_and_difficulty() -> None:
    probs, labels = simulate(1000, 4, 2)
    sets = SplitConformal(0.9).fit(probs[:500], labels[:500]).predict_sets(probs[500:])
    ev = evaluate_sets(sets, labels[500:], probs[500:], n_bins=4)
    assert ev.empty_rate == 0.0
    assert ev.class_coverage.shape == (4,) and ev.bin_coverage.shape == (4,)
    assert ev.bin_size[0] <= ev.bin_size[-1]  # harder items get larger sets
    d = ev.to_dict()
    assert set(d) >= {"coverage", "mean_size", "empty_rate", "class_coverage", "bin_coverage"}


# -- decisions -----------------------------------------------------------------------------------
def test_decide_accepts_only_confident_singletons() -> None:
    probs, labels = simulate(600, 3, 4, concentration=0.3)
    policy = DecisionPolicy(coverage=0.8, threshold=0.7)
    predictor = policy.fit(probs[:300], labels[:300])
    out = decide(probs[300:], predictor, policy)
    sizes = out.sets.sum(axis=1)
    assert set(np.unique(out.outcome)) <= {ACCEPT, REVIEW}
    assert np.all(sizes[out.accepted] == 1)
    assert np.all(out.confidence[out.accepted] >= 0.7)
    assert np.all(out.top_label == probs[300:].argmax(1))
    review = ~out.accepted
    assert np.all((sizes[review] > 1) | (out.confidence[review] < 0.7))
    rec = out.records()[0]
    assert set(rec) == {"set", "top_label", "confidence", "outcome"}
    assert 0 < out.automation_rate < 1


def test_policy_round_trip_and_validation() -> None:
    p = DecisionPolicy(coverage=0.95, score="aps", threshold=0.5, class_conditional=True, calibration="temperature")
    assert DecisionPolicy.from_dict(p.to_dict()) == p
    assert DecisionPolicy.from_dict({"coverage": 0.9}).calibration == "none"  # policies stored before the field
    with pytest.raises(InvalidInputError, match="calibration"):
        DecisionPolicy(calibration="isotonic").validate()
    with pytest.raises(InvalidInputError, match="threshold"):
        DecisionPolicy(threshold=1.5).validate()
    with pytest.raises(InvalidInputError, match="unknown"):
        DecisionPolicy.from_dict({"coverage": 0.9, "colour": "red"})


def test_risk_coverage_curve() -> None:
    probs, labels = simulate(2000, 4, 8, concentration=0.4)
    curve = risk_coverage_curve(probs, labels)
    assert curve.automation_rate[0] == 1.0
    assert curve.error_rate[0] == pytest.approx(np.mean(probs.argmax(1) != labels))
    assert np.all(np.diff(curve.automation_rate) <= 0)
    # on calibrated data, raising the threshold lowers the error of what is accepted
    assert curve.at(0.9)["error_rate"] < curve.at(0.0)["error_rate"]
    predictor = DecisionPolicy(coverage=0.9).fit(probs[:1000], labels[:1000])
    held = risk_coverage_curve(probs[1000:], labels[1000:], predictor)
    assert held.coverage >= 0.85
    assert held.automation_rate[0] <= 1.0
    assert held.error_per_item[0] <= 0.1 + 0.03  # singletons miss at most 1 - coverage on average
    assert held.to_dict()["thresholds"][0] == 0.0


def overconfident(n: int, k: int, seed: int, sharpen: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the model reports softmax(sharpen * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    true = np.exp(z - z.max(axis=1, keepdims=True))
    true /= true.sum(axis=1, keepdims=True)
    labels = np.minimum((rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1), k - 1)
    said = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    return said / said.sum(axis=1, keepdims=True), labels


def test_temperature_policy_makes_the_threshold_honest() -> None:
    """On an over-confident model, the accepted items' confidence matches their accuracy only after recalibration."""
    probs, labels = overconfident(6000, 5, 3)
    cal, test = slice(0, 3000), slice(3000, None)
    raw = DecisionPolicy(coverage=0.9, threshold=0.8)
    tempered = DecisionPolicy(coverage=0.9, threshold=0.8, calibration="temperature")
    p_raw, p_cal = raw.fit(probs[cal], labels[cal]), tempered.fit(probs[cal], labels[cal])
    assert p_raw.calibrator is None and p_cal.to_dict()["temperature"] == pytest.approx(3.0, rel=0.15)
    for policy, predictor, honest in ((raw, p_raw, False), (tempered, p_cal, True)):
        out = decide(probs[test], predictor, policy)
        right = float(np.mean(out.top_label[out.accepted] == labels[test][out.accepted]))
        gap = float(out.confidence[out.accepted].mean()) - right
        assert (abs(gap) < 0.03) is honest and (gap > 0.05) is not honest
        curve = risk_coverage_curve(probs[test], labels[test], predictor)
        assert curve.coverage >= 0.88
        assert curve.at(0.8)["automation_rate"] == pytest.approx(out.automation_rate)
    # the calibrated model's sets are no larger at the same coverage
    assert p_cal.predict_sets(probs[test]).sum(1).mean() <= p_raw.predict_sets(probs[test]).sum(1).mean() + 0.02
    # a plain SplitConformal is still accepted and takes the probabilities as given
    assert np.array_equal(decide(probs[test], p_raw.conformal, raw).outcome, decide(probs[test], p_raw, raw).outcome)


def _reference_lac(
    cal: np.ndarray, y: np.ndarray, test: np.ndarray, coverage: float, allow_empty: bool, mondrian: bool
) -> np.ndarray:
    """LAC by its definition: score 1 - p, the top label (first argmax) at -1 unless allow_empty."""

    def scores(p: np.ndarray) -> np.ndarray:
        s = 1.0 - p
        if not allow_empty:
            s[np.arange(len(p)), p.argmax(1)] = -1.0
        return s

    true = scores(cal)[np.arange(len(cal)), y]
    if mondrian:
        q = np.array([conformal_quantile(true[y == c], coverage) for c in range(cal.shape[1])])
    else:
        q = np.array(conformal_quantile(true, coverage))
    return scores(test) <= q


@pytest.mark.filterwarnings("ignore::veracity.decide.CoverageWarning")  # tiny calibration sets are drawn
@given(
    st.integers(0, 10_000),
    st.sampled_from([2, 3, 10, 30]),
    st.floats(0.5, 0.97),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_fast_lac_equals_its_definition(
    seed: int, k: int, coverage: float, allow_empty: bool, mondrian: bool, ties: bool
) -> None:
    """The comparison-of-probabilities LAC path gives exactly the sets of the score definition,
    also with ties at the maximum, test probabilities equal to calibration ones (on the cut) and
    many classes (the argmax path)."""
    probs, labels = simulate(400, k, seed, concentration=0.4)
    rng = np.random.default_rng(seed)
    if ties:
        rows = rng.choice(400, 40, replace=False)
        probs[rows] = np.full(k, 1.0 / k)  # every class tied
        probs[rows[:20], :2] = probs[rows[:20], :2].mean(axis=1, keepdims=True)
    probs[300:350] = probs[rng.choice(200, 50)]  # test items on the calibration values
    cal, y, test = probs[:200], labels[:200], probs[200:]
    cp = SplitConformal(coverage, allow_empty=allow_empty, class_conditional=mondrian).fit(cal, y)
    expected = _reference_lac(cal, y, test, coverage, allow_empty, mondrian)
    np.testing.assert_array_equal(cp.predict_sets(test), expected)
    np.testing.assert_array_equal(cp.conformity_scores(cal)[np.arange(200), y], cp.cal_scores_)


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 5, 30, 100]),
    st.floats(0.5, 0.99),
    st.sampled_from([1e-9, 1e-6, 1e-4]),
    st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_lac_on_rows_that_do_not_sum_to_one_equals_lac_on_renormalised_rows(
    seed: int, k: int, coverage: float, drift: float, allow_empty: bool
) -> None:
    """Rows off 1 by more than 1e-12 (float32 softmax outputs) are compared with cuts scaled by
    their sums instead of being renormalised in a copy: the scores and sets are the same."""
    from veracity.decide._checks import _row_sums

    rng = np.random.default_rng(seed)
    probs, labels = simulate(600, k, seed)
    raw = probs * (1.0 + rng.uniform(-drift, drift, size=(600, 1)))
    norm = raw / _row_sums(raw)[:, None]
    a = SplitConformal(coverage, allow_empty=allow_empty).fit(raw[:300], labels[:300])
    b = SplitConformal(coverage, allow_empty=allow_empty).fit(norm[:300], labels[:300])
    assert a.quantile_ == b.quantile_
    np.testing.assert_array_equal(a.cal_scores_, b.cal_scores_)
    np.testing.assert_array_equal(a.predict_sets(raw[300:]), b.predict_sets(norm[300:]))


@given(st.floats(1e-300, 1.0), st.lists(st.floats(1 - 1e-3, 1 + 1e-3), min_size=1, max_size=50))
def test_scaled_cuts_are_the_exact_boundary(cut: float, sums: list[float]) -> None:
    from veracity.decide.conformal import _scaled_cuts

    s = np.array(sums)
    t = _scaled_cuts(cut, s)
    assert t is not None
    assert ((t / s) >= cut).all()
    assert ((np.nextafter(t, -np.inf) / s) < cut).all()
