"""Input handling of the drift engine: bad input is an InvalidInputError naming the argument,
and extreme but valid input gives the right answer (veracity.align)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from veracity.align import detect_drift
from veracity.align.multivariate import classifier_two_sample_test, mmd_test, permutation_p_values
from veracity.errors import InvalidInputError


def _samples(n: int = 200, shift: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(n, 3))
    cur = rng.normal(size=(n, 3))
    cur[:, 0] += shift
    return ref, cur


@pytest.mark.parametrize("method", ["auto", "c2st", "mmd"])
def test_huge_finite_values_are_standardised_not_overflowed(method: str) -> None:
    ref, cur = _samples()
    report = detect_drift(ref * 1e160, cur * 1e160, method=method, n_permutations=19, n_clusters=0)
    assert report.drift
    assert report.p_value <= 0.05


def test_rescaling_leaves_ordinary_data_unchanged() -> None:
    ref, cur = _samples(shift=0.2)
    a = detect_drift(ref, cur, n_permutations=19, random_state=3).to_dict()
    b = detect_drift(ref * 1e3, cur * 1e3, n_permutations=19, random_state=3).to_dict()
    assert a["p_value"] == b["p_value"]
    assert a["multivariate"]["mmd"]["statistic"] == pytest.approx(b["multivariate"]["mmd"]["statistic"], rel=1e-6)


def test_c2st_on_huge_values() -> None:
    ref, cur = _samples()
    res = classifier_two_sample_test(ref * 1e160, cur * 1e160, random_state=0)
    assert res.statistic > 0.8 and res.p_value < 1e-6


def test_duplicate_feature_names_are_rejected() -> None:
    ref, cur = _samples()
    with pytest.raises(InvalidInputError, match=r"feature_names must be unique.*'a'"):
        detect_drift(ref, cur, feature_names=["a", "a", "b"])


def test_dataframe_columns_equal_as_strings_are_rejected() -> None:
    ref, cur = _samples()
    left = pd.DataFrame({0: ref[:, 0], "0": ref[:, 1]})
    right = pd.DataFrame({0: cur[:, 0], "0": cur[:, 1]})
    with pytest.raises(InvalidInputError, match=r"reference column names must be unique.*'0'"):
        detect_drift(left, right)


def test_mapping_keys_equal_as_strings_are_rejected() -> None:
    ref, cur = _samples()
    with pytest.raises(InvalidInputError, match="column names must be unique"):
        detect_drift({1: ref[:, 0], "1": ref[:, 1]}, {1: cur[:, 0], "1": cur[:, 1]})


def test_categorical_accepts_one_name_as_a_string() -> None:
    ref, cur = _samples()
    report = detect_drift(np.round(ref), np.round(cur), categorical="x0", n_permutations=19, n_clusters=0)
    assert [f.kind for f in report.per_feature] == ["categorical", "numeric", "numeric"]
    report = detect_drift(np.round(ref), np.round(cur), features="x1", n_permutations=19, n_clusters=0)
    assert [f.name for f in report.per_feature] == ["x1"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"random_state": "x"}, "random_state"),
        ({"random_state": 1.5}, "random_state"),
        ({"alpha": "x"}, "alpha"),
        ({"alpha": None}, "alpha"),
        ({"n_permutations": "x"}, "n_permutations"),
        ({"n_permutations": 2.5}, "n_permutations"),
        ({"n_clusters": "x"}, "n_clusters"),
        ({"reference_embeddings": [["a"] * 2] * 200, "current_embeddings": [["b"] * 2] * 200}, "embeddings"),
    ],
)
def test_bad_scalars_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    ref, cur = _samples()
    with pytest.raises(InvalidInputError, match=name):
        detect_drift(ref, cur, **kwargs)


def test_mmd_of_identical_constant_samples_is_not_drift() -> None:
    res = mmd_test(np.ones((100, 3)), np.ones((100, 3)), n_permutations=19, random_state=0)
    assert res.statistic == 0.0
    assert res.p_value == 1.0
    res = mmd_test(np.ones((50, 3)), np.ones((16, 3)), n_permutations=19, random_state=0)
    assert res.p_value == 1.0
    report = detect_drift(np.ones((100, 3)), np.ones((100, 3)), n_permutations=19, n_clusters=0)
    assert not report.drift and report.multivariate["mmd"].p_value == 1.0


def test_mmd_test_rejects_strings() -> None:
    with pytest.raises(InvalidInputError, match="reference must hold numbers"):
        mmd_test([["a"], ["b"]], [["c"], ["d"]])
    with pytest.raises(InvalidInputError, match="bandwidth"):
        mmd_test(np.zeros((3, 1)), np.ones((3, 1)), bandwidth="x")


def test_permutation_p_values_unchanged() -> None:
    t = np.array([[0.5], [0.2], [0.5], [0.7]])
    np.testing.assert_array_equal(permutation_p_values(t)[:, 0], [0.75, 1.0, 0.75, 0.25])
