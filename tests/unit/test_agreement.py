"""Agreement metrics: cross-checks with `krippendorff` and scikit-learn, properties, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.quality import agreement
from veracity.quality.agreement import AgreementResult

krippendorff = pytest.importorskip("krippendorff")
sk_metrics = pytest.importorskip("sklearn.metrics")


def reliability(seed: int, raters: int = 4, units: int = 40, k: int = 5, missing: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, units)
    data = np.where(rng.random((raters, units)) < 0.6, truth, rng.integers(0, k, (raters, units))).astype(float)
    data[rng.random(data.shape) < missing] = np.nan
    return data


def long_form(data: np.ndarray) -> dict[str, list[object]]:
    r, u = np.nonzero(~np.isnan(data))
    return {"worker": [f"r{i}" for i in r], "task": [f"u{j}" for j in u], "label": data[r, u].astype(int).tolist()}


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_krippendorff_matches_reference_package(level: str, seed: int) -> None:
    data = reliability(seed) + (1 if level == "ratio" else 0)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert agreement(data, metric="krippendorff", level=level) == pytest.approx(expected, abs=1e-10)
    assert agreement(long_form(data), metric="krippendorff", level=level) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("weights,level", [(None, "nominal"), ("linear", "ordinal"), ("quadratic", "interval")])
def test_cohen_matches_scikit_learn(weights: str | None, level: str) -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
    answers = {"worker": ["a"] * 200 + ["b"] * 200, "task": list(range(200)) * 2, "label": [*a, *b]}
    expected = sk_metrics.cohen_kappa_score(a, b, weights=weights)
    assert agreement(answers, metric="cohen", level=level) == pytest.approx(expected, abs=1e-12)


def test_cohen_uses_shared_tasks_and_named_raters() -> None:
    answers = {
        "worker": ["a", "a", "a", "b", "b", "c"],
        "task": [1, 2, 3, 1, 2, 3],
        "label": ["x", "y", "x", "x", "y", "y"],
    }
    assert agreement(answers, metric="cohen", raters=("a", "b")) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="exactly two raters, got 3"):
        agreement(answers, metric="cohen")


def test_fleiss_known_value() -> None:
    # Fleiss (1971)-style example: 3 raters, 4 subjects, 2 categories
    table = np.array([[3, 0], [0, 3], [2, 1], [1, 2]])
    task, label = [], []
    for i, row in enumerate(table):
        for c, n in enumerate(row):
            task += [i] * int(n)
            label += [c] * int(n)
    worker = [j % 3 for j in range(len(task))]
    p_bar = np.mean([(3 * 2) / 6, 1.0, (2 * 1) / 6, (2 * 1) / 6])
    p = table.sum(axis=0) / table.sum()
    pe = (p**2).sum()
    expected = (p_bar - pe) / (1 - pe)
    assert agreement({"task": task, "worker": worker, "label": label}, metric="fleiss") == pytest.approx(expected)


def test_percent_agreement() -> None:
    answers = {"task": [1, 1, 1, 2, 2], "worker": [1, 2, 3, 1, 2], "label": ["a", "a", "b", "c", "c"]}
    assert agreement(answers, metric="percent") == pytest.approx((1 / 3 + 1) / 2)


def test_bootstrap_interval_contains_value() -> None:
    data = reliability(5, units=80)
    res = agreement(data, metric="krippendorff", ci=0.9, n_boot=200, random_state=0)
    assert isinstance(res, AgreementResult)
    assert res.ci_low <= res.value <= res.ci_high
    again = agreement(data, metric="krippendorff", ci=0.9, n_boot=200, random_state=0)
    assert again == res
    assert float(res) == res.value


def test_errors() -> None:
    with pytest.raises(InvalidInputError, match="metric must be one of"):
        agreement({"task": [1], "worker": [1], "label": [1]}, metric="nope")
    with pytest.raises(InvalidInputError, match="two or more answers"):
        agreement({"task": [1, 2], "worker": [1, 1], "label": [1, 2]}, metric="krippendorff")
    with pytest.raises(InvalidInputError, match="empty"):
        agreement({"task": [], "worker": [], "label": []})
    with pytest.raises(InvalidInputError, match="numeric labels"):
        agreement({"task": [1, 1], "worker": [1, 2], "label": ["a", "b"]}, level="interval")
    with pytest.raises(InvalidInputError, match="nominal only"):
        agreement({"task": [1, 1], "worker": [1, 2], "label": [1, 2]}, metric="fleiss", level="ordinal")


matrices = st.integers(2, 5).flatmap(
    lambda r: st.lists(st.lists(st.integers(0, 3), min_size=r, max_size=r), min_size=3, max_size=15)
)


@settings(max_examples=20, deadline=None)
@given(units=matrices, metric=st.sampled_from(["krippendorff", "fleiss", "percent"]))
def test_identical_raters_agree_perfectly(units: list[list[int]], metric: str) -> None:
    values = [u[0] for u in units]
    data = np.array([[v for v in values] for _ in units[0]], dtype=float)
    if len(set(values)) < 2:
        values[0] = (values[0] + 1) % 4
        data[:, 0] = values[0]
    assert agreement(data, metric=metric) == pytest.approx(1.0)


@settings(max_examples=20, deadline=None)
@given(units=matrices, seed=st.integers(0, 10_000), level=st.sampled_from(["nominal", "ordinal", "interval"]))
def test_permuting_raters_and_units_changes_nothing(units: list[list[int]], seed: int, level: str) -> None:
    data = np.array(units, dtype=float).T  # raters x units
    rng = np.random.default_rng(seed)
    shuffled = data[rng.permutation(data.shape[0])][:, rng.permutation(data.shape[1])]
    for metric in ("krippendorff", "fleiss", "percent"):
        lvl = level if metric == "krippendorff" else "nominal"
        try:
            a = agreement(data, metric=metric, level=lvl)
        except InvalidInputError:
            continue
        assert agreement(shuffled, metric=metric, level=lvl) == pytest.approx(a, abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(units=matrices)
def test_krippendorff_nominal_matches_package_on_random_data(units: list[list[int]]) -> None:
    data = np.array(units, dtype=float).T
    if len(np.unique(data)) < 2:
        return
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert agreement(data, metric="krippendorff") == pytest.approx(expected, abs=1e-9)


def test_numeric_levels_refuse_non_finite_and_ratio_refuses_negative_values() -> None:
    answers = {"task": [1, 1, 2, 2], "worker": [1, 2, 1, 2], "label": [-1, 1, 1, 1]}
    with pytest.raises(InvalidInputError, match="non-negative labels, got -1"):
        agreement(answers, level="ratio")
    assert agreement(answers, level="interval") == pytest.approx(0.0)
    with pytest.raises(InvalidInputError, match="finite numeric labels, got 'nan'"):
        agreement({"task": [1, 1, 2, 2], "worker": [1, 2, 1, 2], "label": ["1", "nan", "2", "2"]}, level="interval")
    with pytest.raises(InvalidInputError, match="finite numeric labels, got inf"):
        agreement({"task": [1, 1, 2, 2], "worker": [1, 2, 1, 2], "label": [1.0, np.inf, 2.0, 2.0]}, level="ratio")


def test_agreement_stays_the_function_after_its_submodules_are_imported() -> None:
    """``veracity.quality.agreement`` names the function and the subpackage; importing a submodule
    of the package first must not turn ``from veracity.quality import agreement`` into the module."""
    import subprocess
    import sys

    code = ("import veracity.quality.agreement.kappa\nfrom veracity.quality import agreement\n"
            "print(callable(agreement), agreement.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "veracity.quality.agreement"]
