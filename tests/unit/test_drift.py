"""detect_drift and its parts: per-feature tests, corrections, MMD, C2ST, slices, report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from veracity.align import (
    adjust_p_values,
    category_slices,
    chi2_test,
    classifier_two_sample_test,
    detect_drift,
    kmeans,
    ks_test,
    mmd_test,
    psi_categorical,
    psi_numeric,
)
from veracity.align.multivariate import gaussian_kernel, mmd_statistics, permutation_indicators, permutation_p_values
from veracity.errors import InvalidInputError


def frames(seed: int, n: int = 300, shift: str = "none") -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    levels = np.array(["red", "green", "blue"])

    def make(current: bool) -> dict:
        x = rng.normal(size=(n, 3))
        p = [0.5, 0.3, 0.2]
        if current and shift == "mean":
            x[:, 0] += 0.5
        if current and shift == "category":
            p = [0.3, 0.3, 0.4]
        return {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "colour": levels[rng.choice(3, size=n, p=p)]}

    return make(False), make(True)


# -- per-feature tests against scipy -------------------------------------------------------------
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
@settings(max_examples=25, deadline=None)
def test_ks_matches_scipy(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=80), rng.normal(shift, size=60)
    ref = stats.ks_2samp(a, b)
    assert ks_test(a, b) == pytest.approx((ref.statistic, ref.pvalue))


def test_ks_drops_missing_values() -> None:
    a = np.array([0.1, np.nan, 0.3, 0.5])
    b = np.array([0.2, 0.4, np.nan])
    ref = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
    assert ks_test(a, b) == pytest.approx((ref.statistic, ref.pvalue))


def test_chi2_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.choice(["x", "y", "z"], size=200, p=[0.5, 0.3, 0.2])
    b = rng.choice(["x", "y", "z", "w"], size=150, p=[0.4, 0.3, 0.2, 0.1])
    stat, p, levels, rc, cc = chi2_test(a, b)
    table = np.array([[np.sum(a == v) for v in levels], [np.sum(b == v) for v in levels]])
    ref = stats.chi2_contingency(table, correction=False)
    assert (stat, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert levels == ["w", "x", "y", "z"] and rc.sum() == 200 and cc.sum() == 150
    assert chi2_test(["a", "a"], ["a"])[:2] == (0.0, 1.0)


def test_detect_drift_per_feature_matches_scipy() -> None:
    ref, cur = frames(1, shift="mean")
    report = detect_drift(ref, cur, method="univariate", n_clusters=0)
    by_name = {f.name: f for f in report.per_feature}
    ks = stats.ks_2samp(ref["a"], cur["a"])
    assert by_name["a"].test == "ks" and by_name["a"].p_value == pytest.approx(ks.pvalue)
    levels = sorted(set(ref["colour"]) | set(cur["colour"]))
    table = [[np.sum(ref["colour"] == v) for v in levels], [np.sum(cur["colour"] == v) for v in levels]]
    assert by_name["colour"].test == "chi2"
    assert by_name["colour"].p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    raw = [f.p_value for f in report.per_feature]
    assert [f.p_adjusted for f in report.per_feature] == pytest.approx(adjust_p_values(raw, "holm").tolist())
    assert report.p_value == min(f.p_adjusted for f in report.per_feature)
    assert report.drift and report.drifted_features == ["a"]


# -- multiple testing ----------------------------------------------------------------------------
def _holm_reference(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _bh_reference(p: np.ndarray) -> np.ndarray:
    m = p.size
    out = np.empty(m)
    for i in range(m):
        # adjusted p_i = min over j with p_j >= p_i of m p_j / rank_j
        ranks = np.array([np.sum(p <= p[j]) for j in range(m)])
        cand = [m * p[j] / ranks[j] for j in range(m) if p[j] >= p[i]]
        out[i] = min(1.0, min(cand))
    return out


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=15))
@settings(max_examples=60, deadline=None)
def test_corrections_match_reference_implementations(values: list[float]) -> None:
    p = np.array(values)
    np.testing.assert_allclose(adjust_p_values(p, "holm"), _holm_reference(p), atol=1e-12)
    np.testing.assert_allclose(adjust_p_values(p, "bh"), _bh_reference(p), atol=1e-12)
    assert np.all(adjust_p_values(p, "bh") <= adjust_p_values(p, "holm") + 1e-12)
    np.testing.assert_allclose(adjust_p_values(p, "bonferroni"), np.minimum(p * p.size, 1))
    with pytest.raises(InvalidInputError, match="correction"):
        adjust_p_values(p, "sidak")


# -- PSI -----------------------------------------------------------------------------------------
def test_psi() -> None:
    assert psi_categorical([10, 20, 30], [10, 20, 30]) == 0.0
    r, c = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert psi_categorical([50, 50], [25, 75]) == pytest.approx(np.sum((c - r) * np.log(c / r)))
    rng = np.random.default_rng(0)
    assert psi_numeric(rng.normal(size=3000), rng.normal(1.0, size=3000)) > 0.25


# -- permutation machinery, MMD and C2ST ---------------------------------------------------------
def test_permutation_p_values_count_ties_and_self() -> None:
    t = np.array([[3.0], [1.0], [3.0], [5.0]])
    np.testing.assert_allclose(permutation_p_values(t)[:, 0], [0.75, 1.0, 0.75, 0.25])


def test_indicators_keep_group_sizes() -> None:
    ind = permutation_indicators(30, 20, 50, np.random.default_rng(0))
    assert ind.shape == (51, 50)
    assert np.all(ind.sum(axis=1) == 30)
    assert ind[0, :30].all() and not ind[0, 30:].any()


def test_mmd_statistic_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(15, 2)), rng.normal(0.5, size=(10, 2))
    bw = 2.0

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / bw))

    direct = (
        np.mean([k(a, b) for a in x for b in x])
        + np.mean([k(a, b) for a in y for b in y])
        - 2 * np.mean([k(a, b) for a in x for b in y])
    )
    pooled = np.vstack([x, y])
    ind = permutation_indicators(15, 10, 3, np.random.default_rng(1))
    stat = mmd_statistics(gaussian_kernel(pooled, bw), ind)
    assert stat[0] == pytest.approx(direct, rel=1e-5)
    res = mmd_test(x, y, bandwidth=bw, n_permutations=19, random_state=0)
    assert res.statistic == pytest.approx(direct, rel=1e-5)
    assert 0 < res.p_value <= 1


def test_mmd_and_c2st_detect_a_spread_change_and_not_a_null() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(300, 4))
    same = rng.normal(size=(300, 4))
    wide = rng.normal(size=(300, 4)) * np.array([1.0, 1.0, 1.0, 2.0])
    assert mmd_test(ref, wide, random_state=0).p_value <= 0.01
    assert mmd_test(ref, same, random_state=0).p_value > 0.01
    c2 = classifier_two_sample_test(ref, wide, random_state=0)
    assert c2.statistic > 0.6 and c2.p_value < 0.01
    assert classifier_two_sample_test(ref, same, random_state=0).statistic < 0.6


def test_combined_test_false_alarm_rate_is_controlled() -> None:
    rejections = 0
    for seed in range(30):
        ref, cur = frames(100 + seed, n=120)
        rejections += detect_drift(ref, cur, n_clusters=0, n_permutations=49, random_state=seed).drift
    assert rejections <= 5  # Binomial(30, 0.05): P(> 5) < 0.003


@pytest.mark.parametrize(("shift", "feature"), [("mean", "a"), ("category", "colour")])
def test_combined_test_detects_shifts(shift: str, feature: str) -> None:
    ref, cur = frames(7, n=400, shift=shift)
    report = detect_drift(ref, cur, random_state=0)
    assert report.drift and report.p_value <= 0.02
    assert report.drifted_features == [feature]
    comps = report.multivariate["combined"].details["components"]
    assert min(comps, key=comps.get).endswith(feature) or shift == "mean"


@pytest.mark.parametrize("method", ["auto", "univariate", "mmd", "c2st"])
def test_every_method_reports_a_p_value(method: str) -> None:
    ref, cur = frames(2, n=500, shift="mean")
    report = detect_drift(ref, cur, method=method, n_clusters=0)
    assert 0 < report.p_value <= 1 and report.method == method
    assert report.drift


# -- inputs --------------------------------------------------------------------------------------
def test_arrays_mappings_pandas_and_arrow_agree() -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    ref, cur = frames(4)
    base = detect_drift(ref, cur, random_state=0).to_dict()
    for conv in (pd.DataFrame, pa.table):
        other = detect_drift(conv(ref), conv(cur), random_state=0).to_dict()
        assert other == base
    arr_ref = np.column_stack([ref["a"], ref["b"]])
    arr_cur = np.column_stack([cur["a"], cur["b"]])
    named = detect_drift(arr_ref, arr_cur, feature_names=["a", "b"], random_state=0)
    assert [f.name for f in named.per_feature] == ["a", "b"]
    sub = detect_drift(ref, cur, features=["b", "a"], random_state=0)
    assert [f.name for f in sub.per_feature] == ["b", "a"]


def test_numeric_columns_can_be_categorical_and_nan_is_allowed() -> None:
    rng = np.random.default_rng(0)
    ref = {"n": rng.normal(size=100), "code": rng.integers(0, 3, 100)}
    cur = {"n": np.r_[rng.normal(size=99), np.nan], "code": rng.integers(0, 3, 100)}
    report = detect_drift(ref, cur, categorical=["code"], n_clusters=2)
    kinds = {f.name: (f.kind, f.test) for f in report.per_feature}
    assert kinds == {"n": ("numeric", "ks"), "code": ("categorical", "chi2")}
    assert report.per_feature[0].n_current == 99


@pytest.mark.parametrize(
    ("ref", "cur", "kwargs", "match"),
    [
        ({"a": [1.0, 2.0]}, {"b": [1.0, 2.0]}, {}, "same columns"),
        ({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, {"features": ["z"]}, "no column 'z'"),
        ({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, {"method": "magic"}, "method"),
        ({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, {"alpha": 2}, "alpha"),
        ({"a": [1.0]}, {"a": [1.0, 2.0]}, {}, "at least 2 rows"),
        ({"a": [1.0, 2.0], "b": [1.0]}, {"a": [1.0, 2.0], "b": [1.0, 2.0]}, {}, "same length"),
        (np.zeros((3, 2, 2)), np.zeros((3, 2)), {}, "2-D"),
    ],
)
def test_bad_inputs(ref: object, cur: object, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        detect_drift(ref, cur, **kwargs)


# -- slices --------------------------------------------------------------------------------------
def test_new_category_is_the_top_slice() -> None:
    rng = np.random.default_rng(0)
    ref = rng.choice(["a", "b", "c"], size=500)
    cur = np.r_[rng.choice(["a", "b", "c"], size=400), np.full(100, "new")]
    slices = sorted(category_slices("kind", ref, cur), key=lambda s: -s.score)
    assert slices[0].value == "new" and slices[0].n_reference == 0 and slices[0].n_current == 100
    assert slices[0].p_value < 1e-6


def test_new_cluster_is_found_by_kmeans_slices() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(600, 2))
    cur = np.r_[rng.normal(size=(540, 2)), rng.normal(size=(60, 2)) * 0.2 + [6.0, 6.0]]
    report = detect_drift(ref, cur, n_clusters=4, feature_names=["u", "v"], random_state=0)
    top = report.slices[0]
    assert top.kind == "cluster" and top.n_current >= 55 and top.n_reference <= 3
    assert "u +" in top.description and "v +" in top.description


def test_kmeans_recovers_separated_groups() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.vstack([c + rng.normal(size=(50, 2)) * 0.3 for c in centres])
    found, labels = kmeans(x, 3, random_state=0)
    assert sorted(np.bincount(labels).tolist()) == [50, 50, 50]
    assert np.allclose(np.sort(found[:, 0]), np.sort(centres[:, 0]), atol=0.3)
    with pytest.raises(InvalidInputError, match="n_clusters"):
        kmeans(x, 0)


# -- report --------------------------------------------------------------------------------------
def test_report_to_dict_is_json_and_html_is_self_contained() -> None:
    ref, cur = frames(5, shift="category")
    ref["<b>odd name</b>"] = ref.pop("c")
    cur["<b>odd name</b>"] = cur.pop("c")
    report = detect_drift(ref, cur, random_state=0)
    data = json.loads(json.dumps(report.to_dict(histograms=True)))
    assert {"drift", "p_value", "per_feature", "slices", "multivariate"} <= set(data)
    assert "histogram" not in report.to_dict()["per_feature"][0]
    page = report.to_html(title="Drift <check>")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= len(report.per_feature) + 1
    assert "<script" not in page and "<link" not in page and "src=" not in page and "url(" not in page
    # the only URL is the SVG namespace, which is not fetched
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "<b>odd name</b>" not in page and "&lt;b&gt;odd name&lt;/b&gt;" in page
    assert "Drift &lt;check&gt;" in page
    assert "colour" in page and "Coverage slices" in page


def test_degenerate_inputs_give_no_drift() -> None:
    const = {"a": np.ones(50), "b": np.zeros(50)}
    report = detect_drift(const, const, n_clusters=3)
    assert not report.drift and report.p_value == 1.0
    cats = {"kind": np.array(["x", "y"] * 25)}
    report = detect_drift(cats, cats, n_clusters=3)
    assert not report.drift and report.slices == []


# -- the MMD components of the combined test (two bandwidths, MMDAgg-style) --------------------
def test_combined_test_has_a_narrow_mmd_component_that_sees_a_small_new_mode() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(400, 4))
    cur = rng.normal(size=(400, 4))
    cur[:30] = 0.2 * rng.normal(size=(30, 4)) + np.array([2.5, -2.5, 0.0, 0.0])  # a small tight cluster
    report = detect_drift(ref, cur, n_clusters=0, random_state=0)
    comps = report.multivariate["combined"].details["components"]
    assert {"mmd", "mmd:narrow"} <= set(comps)
    assert comps["mmd:narrow"] == 0.01  # beyond all 99 relabellings
    assert report.drift and report.p_value == 0.01


@given(st.integers(0, 10_000), st.integers(5, 30), st.integers(5, 30))
@settings(max_examples=30, deadline=None)
def test_mmd_statistics_do_not_depend_on_row_order(seed: int, n_ref: int, n_cur: int) -> None:
    """Reordering the pooled rows together with the group labels leaves every statistic unchanged,
    at the median bandwidth and at the narrow one (the kernel squared twice)."""
    rng = np.random.default_rng(seed)
    pooled = rng.normal(size=(n_ref + n_cur, 3))
    ind = permutation_indicators(n_ref, n_cur, 7, rng)
    order = rng.permutation(n_ref + n_cur)
    for bw in (2.0, 0.5):
        kernel = gaussian_kernel(pooled, bw)
        np.testing.assert_allclose(kernel**4, gaussian_kernel(pooled, bw / 4), rtol=1e-4, atol=1e-6)
        a = mmd_statistics(kernel, ind)
        b = mmd_statistics(gaussian_kernel(pooled[order], bw), ind[:, order])
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_combined_p_values_are_uniform_under_no_drift() -> None:
    """Coarse check of the level at every threshold: with 19 permutations a valid p-value has
    P(p <= j / 20) = j / 20 under exchangeability."""
    p = []
    for seed in range(60):
        rng = np.random.default_rng([11, seed])
        ref = {"a": rng.normal(size=60), "b": rng.exponential(size=60), "c": rng.choice(["x", "y"], 60)}
        cur = {"a": rng.normal(size=60), "b": rng.exponential(size=60), "c": rng.choice(["x", "y"], 60)}
        p.append(detect_drift(ref, cur, n_clusters=0, n_permutations=19, random_state=seed).p_value)
    p_arr = np.array(p)
    assert 0.38 <= p_arr.mean() <= 0.62  # mean of Uniform{1/20..1} is 0.525, s.e. ~0.037
    for level in (0.1, 0.25, 0.5):
        assert abs(np.mean(p_arr <= level + 1e-9) - level) <= 3 * np.sqrt(level * (1 - level) / 60) + 0.02
