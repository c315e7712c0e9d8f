"""find_label_issues, multi-label labels and cross_val_pred_probs: bad input and score range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.quality.label_errors import RANKING_METHODS, cross_val_pred_probs, find_label_issues

# ---------------------------------------------------------------- scores


def test_cwe_certain_correct_row_scores_one():
    labels = [0, 0, 1]
    probs = np.array([[1.0, 0.0], [0.6, 0.4], [0.9, 0.1]])
    res = find_label_issues(labels, probs, rank_by="confidence_weighted_entropy")
    assert res.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert res.ranked[0] == 2  # all mass on the wrong class is the most suspect
    assert res.ranked[-1] == 0


def test_cwe_certain_wrong_row_scores_zero():
    res = find_label_issues([0, 1], np.array([[0.0, 1.0], [0.0, 1.0]]), rank_by="confidence_weighted_entropy")
    assert res.scores[0] == pytest.approx(0.0, abs=1e-4)
    assert res.scores[1] == pytest.approx(1.0, abs=1e-5)


def test_cwe_matches_kuan_mueller_formula_away_from_the_clip():
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    labels = np.array([0, 1])
    entropy = -(probs * np.log(probs)).sum(axis=1) / np.log(3)
    ratio = entropy / probs[np.arange(2), labels]
    expected = np.log1p(ratio) / ratio
    res = find_label_issues(labels, probs, rank_by="confidence_weighted_entropy")
    np.testing.assert_allclose(res.scores, expected, rtol=1e-12)


@pytest.mark.parametrize("rank_by", RANKING_METHODS)
def test_scores_stay_in_unit_interval_within_row_sum_tolerance(rank_by):
    res = find_label_issues([0, 1, 1], [[1.0005, -0.0005], [0.2, 0.8], [0.3, 0.7]], rank_by=rank_by)
    assert ((res.scores >= 0) & (res.scores <= 1)).all()


@st.composite
def loose_rows(draw):
    n = draw(st.integers(1, 30))
    k = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    probs = rng.dirichlet(np.ones(k) * draw(st.sampled_from([0.05, 0.5, 2.0])), size=n)
    # Push the largest entry up and another down by up to the tolerance (sum unchanged).
    eps = draw(st.floats(0, 9e-4))
    top = probs.argmax(axis=1)
    low = (top + 1) % k
    probs[np.arange(n), top] += eps
    probs[np.arange(n), low] -= eps
    labels = rng.integers(0, k, n)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return labels, probs.astype(dtype)


@settings(max_examples=60, deadline=None)
@given(loose_rows(), st.sampled_from(RANKING_METHODS))
def test_scores_in_unit_interval_property(problem, rank_by):
    labels, probs = problem
    res = find_label_issues(labels, probs, rank_by=rank_by)
    assert res.scores.dtype == probs.dtype
    assert np.isfinite(res.scores).all()
    assert ((res.scores >= 0) & (res.scores <= 1)).all()


def test_float32_scores_stay_float32_for_cwe():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=50).astype(np.float32)
    res = find_label_issues(rng.integers(0, 4, 50), probs, rank_by="confidence_weighted_entropy")
    assert res.scores.dtype == np.float32


# ---------------------------------------------------------------- options


LABELS = np.array([0, 1, 1, 0])
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("row_sum_tol", -1, "row_sum_tol must be >= 0"),
        ("row_sum_tol", float("nan"), "row_sum_tol"),
        ("row_sum_tol", "x", "row_sum_tol must be a number"),
        ("frac_noise", "x", "frac_noise must be a number"),
        ("frac_noise", float("nan"), "frac_noise"),
        ("frac_noise", 1.5, "frac_noise"),
        ("min_examples_per_class", "x", "min_examples_per_class must be an integer"),
        ("min_examples_per_class", 2.5, "min_examples_per_class must be an integer"),
        ("min_examples_per_class", -1, "min_examples_per_class must be >= 0"),
        ("n_jobs", "x", "n_jobs must be an integer"),
        ("n_jobs", 0, "n_jobs must be >= 1"),
    ],
)
def test_bad_options_name_the_option(option, value, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        find_label_issues(LABELS, PROBS, **{option: value})


def test_n_jobs_minus_one_means_every_core():
    a = find_label_issues(LABELS, PROBS, n_jobs=-1)
    b = find_label_issues(LABELS, PROBS, n_jobs=1)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_huge_float_label_is_out_of_range_without_warning():
    with pytest.raises(InvalidInputError, match="labels row 0: label 1e\\+20 is outside"):
        find_label_issues([1e20, 1.0], [[0.5, 0.5], [0.0, 1.0]])


# ---------------------------------------------------------------- multi-label


ML_PROBS = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.1], [0.1, 0.2, 0.9], [0.8, 0.9, 0.1]])
ML_MATRIX = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]])


def test_indicator_matrix_as_lists_is_rejected_as_ambiguous():
    find_label_issues(ML_MATRIX, ML_PROBS)  # the ndarray is an indicator matrix
    with pytest.raises(InvalidInputError, match=r"ambiguous.*np\.asarray"):
        find_label_issues(ML_MATRIX.tolist(), ML_PROBS)


def test_class_lists_equal_indicator_matrix():
    lists = [[0, 2], [1], [2], [0, 1]]
    a = find_label_issues(lists, ML_PROBS)
    b = find_label_issues(ML_MATRIX, ML_PROBS)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.mask, b.mask)


@pytest.mark.parametrize(
    ("labels", "kwargs", "fragment"),
    [
        ([[0, 1.7], [1], [2], [0, 1]], {}, r"labels row 0: class indices must be integers, got 1\.7"),
        ([["a"], [1], [2], [0, 1]], {}, "labels row 0: class indices must be integers, got 'a'"),
        ([[0], [1], [True], [0, 1]], {}, "labels row 2: class indices must be integers"),
        ([0, [1], [2], [0, 1]], {}, "labels row 0: expected a list of class indices"),
        ([[0], [1], 2, [0, 1]], {}, "labels row 2: expected a list of class indices"),
        (np.array([0, 1, 2, 0]), {"multi_label": True}, "labels row 0: expected a list of class indices"),
        ([[0, 5], [1], [2], [0, 1]], {}, "labels row 0: label 5 is outside 0..2"),
    ],
)
def test_multilabel_bad_labels_name_the_row(labels, kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        find_label_issues(labels, ML_PROBS, **kwargs)


def test_multilabel_object_array_of_class_lists():
    labels = np.empty(4, dtype=object)
    labels[:] = [[0, 2], [1], [2], [0, 1]]
    res = find_label_issues(labels, ML_PROBS)
    assert res.extras == {"multi_label": True}
    np.testing.assert_array_equal(res.scores, find_label_issues(ML_MATRIX, ML_PROBS).scores)


def test_multilabel_string_pred_probs():
    with pytest.raises(InvalidInputError, match="pred_probs must hold numbers"):
        find_label_issues([[0], [1], [2], [0]], [["a"] * 3] * 4)


# ---------------------------------------------------------------- cross_val_pred_probs


class Centroid:
    """Nearest-centroid classifier with softmax probabilities (duck-typed, no scikit-learn)."""

    def fit(self, features, labels):
        self.classes_ = np.unique(labels)
        self.centres_ = np.stack([features[labels == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, features):
        d = -((features[:, None, :] - self.centres_[None]) ** 2).sum(axis=2)
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class NeedsTwoClasses(Centroid):
    def fit(self, features, labels):
        if np.unique(labels).size < 2:
            raise ValueError("This solver needs samples of at least 2 classes")
        return super().fit(features, labels)


class WrongColumns(Centroid):
    def predict_proba(self, features):
        return np.full((len(features), 3), 1 / 3)


class StringClasses(Centroid):
    def fit(self, features, labels):
        super().fit(features, labels)
        self.classes_ = np.array(["a", "b"])
        return self


class NanOutput(Centroid):
    def predict_proba(self, features):
        return np.full((len(features), 2), np.nan)


FEATS = np.random.default_rng(0).normal(size=(20, 3))
CV_LABELS = (FEATS[:, 0] > 0).astype(int)


def test_cross_val_rare_class_names_class_and_count():
    labels = np.r_[np.zeros(19, dtype=int), 1]
    with pytest.raises(InvalidInputError, match=r"class 1 has only 1 item.*fewer than folds=5.*fewer folds"):
        cross_val_pred_probs(FEATS, labels, NeedsTwoClasses(), folds=5)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"random_state": "x"}, "random_state"),
        ({"random_state": 1.5}, "random_state"),
        ({"folds": 2.5}, "folds must be an integer"),
        ({"folds": "3"}, "folds must be an integer"),
        ({"n_classes": 0}, "n_classes must be >= 1"),
    ],
)
def test_cross_val_bad_options(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        cross_val_pred_probs(FEATS, CV_LABELS, Centroid(), **kwargs)


def test_cross_val_accepts_list_features():
    a = cross_val_pred_probs(FEATS.tolist(), CV_LABELS, Centroid(), folds=4)
    b = cross_val_pred_probs(FEATS, CV_LABELS, Centroid(), folds=4)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("estimator", "fragment"),
    [
        (WrongColumns(), "estimator WrongColumns on fold 0: predict_proba returned 3 columns for 2 classes"),
        (StringClasses(), "estimator StringClasses on fold 0: classes_ must be integer class indices"),
        (NanOutput(), "estimator NanOutput on fold 0: predict_proba returned non-finite values"),
        (object(), "estimator object has no fit"),
    ],
)
def test_cross_val_bad_estimator_output_names_the_estimator(estimator, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        cross_val_pred_probs(FEATS, CV_LABELS, estimator, folds=4)
