"""find_data_issues: bad input names the argument; duplicate and outlier checks are scale-safe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.quality import find_data_issues


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"features": np.zeros((3, 0))}, "n_features >= 1"),
        ({"labels": [0, 1], "pred_probs": [0.9, 0.1]}, "pred_probs must be 2-D"),
        ({"features": np.eye(3), "k": 2.5}, "k must be an integer"),
        ({"features": np.eye(3), "k": "3"}, "k must be an integer"),
        ({"labels": 3}, "labels must be a sequence or array"),
        ({"pred_probs": 3}, "pred_probs must be a sequence or array"),
        ({"contents": "abc"}, "contents must be a sequence or array"),
        ({"contents": (x for x in "abc")}, "contents must be a sequence or array"),
        ({"features": np.eye(3), "outlier_threshold": float("nan")}, "outlier_threshold must be a finite number"),
        ({"features": np.eye(3), "outlier_iqr_factor": -1}, "outlier_iqr_factor must be >= 0"),
        ({"labels": [0, 1], "imbalance_threshold": float("nan")}, "imbalance_threshold"),
        ({"features": np.eye(3), "max_near_duplicate_pairs": 1.5}, "max_near_duplicate_pairs must be an integer"),
    ],
)
def test_bad_input_names_the_argument(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        find_data_issues(**kwargs)


def test_empty_features_with_columns():
    rep = find_data_issues(np.zeros((0, 3)))
    assert rep.n_items == 0
    assert rep.exact_duplicates == []


def test_empty_labels_list():
    rep = find_data_issues(labels=[])
    assert rep.n_items == 0
    assert rep.class_counts.size == 0


def _blobs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(100, 8))


def test_float32_scaled_features_give_the_same_near_duplicates():
    feats = _blobs().astype(np.float32)
    base = find_data_issues(feats)
    big = find_data_issues(feats * np.float32(1e20))
    np.testing.assert_array_equal(big.near_duplicates, base.near_duplicates)
    np.testing.assert_array_equal(big.outliers, base.outliers)


def test_huge_row_is_the_outlier_and_threshold_is_finite():
    feats = _blobs()
    feats[7] = 1e200
    rep = find_data_issues(feats)
    assert rep.outlier_threshold is not None and np.isfinite(rep.outlier_threshold)
    assert np.isfinite(rep.outlier_scores).all()
    assert rep.outliers[7]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e30, 1e150]))
def test_outlier_scores_scale_with_the_features(seed, factor):
    feats = _blobs(seed)[:30]
    base = find_data_issues(feats, k=3)
    scaled = find_data_issues(feats * factor, k=3)
    np.testing.assert_allclose(scaled.outlier_scores, base.outlier_scores * factor, rtol=1e-6)
    np.testing.assert_array_equal(scaled.outliers, base.outliers)
