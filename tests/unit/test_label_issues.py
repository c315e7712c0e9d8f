"""find_label_issues and friends: known answers, slow reference loops, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.quality.label_errors import (
    FILTER_METHODS,
    compute_confident_joint,
    confident_thresholds,
    cross_val_pred_probs,
    find_label_issues,
    get_label_quality_scores,
)


def noisy_problem(n: int = 600, k: int = 4, noise: float = 0.15, seed: int = 0, dtype: type = np.float64):
    """Probabilities that favour the true class, and labels with some flipped at random."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(n) < noise
    labels[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k
    return labels, probs.astype(dtype), flip, truth


# ---------------------------------------------------------------- slow, obvious references


def slow_thresholds(labels, probs):
    k = probs.shape[1]
    out = []
    for j in range(k):
        own = [probs[i, j] for i in range(len(labels)) if labels[i] == j]
        out.append(max(sum(own) / len(own), 2e-6) if own else 2.0)  # nobody labelled j: unreachable
    return np.array(out)


def slow_confident_joint(labels, probs):
    """Eq. 1 of Northcutt et al. (2021), one item at a time."""
    k = probs.shape[1]
    t = slow_thresholds(labels, probs)
    cj = np.zeros((k, k), dtype=np.int64)
    for i in range(len(labels)):
        above = [j for j in range(k) if probs[i, j] >= t[j] - 1e-6]
        if not above:
            continue
        true = above[0] if len(above) == 1 else int(np.argmax(probs[i]))
        cj[labels[i], true] += 1
    for j in range(k):
        cj[j, j] = max(cj[j, j], 1)
    return cj


def slow_prune_by_noise_rate(labels, probs, cj):
    n, k = probs.shape
    flagged = set()
    for i in range(k):  # given
        members = [x for x in range(n) if labels[x] == i]
        for j in range(k):  # true
            if i == j or cj[i, j] <= 0:
                continue
            by_margin = sorted(members, key=lambda x: -(probs[x, j] - probs[x, i]))
            flagged.update(by_margin[: cj[i, j]])
    return {x for x in flagged if np.argmax(probs[x] + 1e-6 * (np.arange(k) == labels[x])) != labels[x]}


def test_thresholds_match_loop():
    labels, probs, _, _ = noisy_problem(300, 5)
    np.testing.assert_allclose(confident_thresholds(labels, probs), slow_thresholds(labels, probs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_joint_matches_loop(seed):
    labels, probs, _, _ = noisy_problem(400, 4, seed=seed)
    np.testing.assert_array_equal(
        compute_confident_joint(labels, probs, calibrate=False), slow_confident_joint(labels, probs)
    )


def test_calibrated_joint_rows_sum_to_label_counts():
    labels, probs, _, _ = noisy_problem(500, 6)
    cj = compute_confident_joint(labels, probs)
    np.testing.assert_array_equal(cj.sum(axis=1), np.bincount(labels, minlength=6))
    assert cj.sum() == len(labels)


def test_prune_by_noise_rate_matches_loop():
    labels, probs, _, _ = noisy_problem(300, 4, noise=0.2, seed=3)
    res = find_label_issues(labels, probs, method="prune_by_noise_rate")
    cj = res.confident_joint
    assert set(np.flatnonzero(res.mask)) == slow_prune_by_noise_rate(labels, probs, cj)


def test_finds_flipped_labels():
    labels, probs, flip, truth = noisy_problem(1000, 4, noise=0.1)
    res = find_label_issues(labels, probs)
    precision = (res.mask & flip).sum() / res.mask.sum()
    recall = (res.mask & flip).sum() / flip.sum()
    assert precision > 0.8 and recall > 0.6
    # Most flagged items get their true label back as the suggestion.
    assert (res.suggested[res.mask] == truth[res.mask]).mean() > 0.8
    # The ranking puts flipped items first.
    top = res.ranked[: flip.sum()]
    assert flip[top].mean() > 0.7


def test_known_answer_tiny():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7]])
    res = find_label_issues(labels, probs)
    assert np.flatnonzero(res.mask).tolist() == [2]
    assert res.ranked[0] == 2 and res.suggested[2] == 1
    assert res.issue_indices.tolist() == [2]


@pytest.mark.parametrize("method", FILTER_METHODS)
def test_every_method_runs_and_flags_only_disagreements(method):
    labels, probs, flip, _ = noisy_problem(500, 5, noise=0.2)
    res = find_label_issues(labels, probs, method=method)
    assert res.mask.shape == labels.shape and res.mask.any()
    if not method.startswith("low_"):
        assert np.all(probs[res.mask].argmax(axis=1) != labels[res.mask])
    assert (res.mask & flip).sum() / res.mask.sum() > 0.5


def test_both_is_intersection():
    labels, probs, _, _ = noisy_problem(500, 5, noise=0.2)
    a = find_label_issues(labels, probs, method="prune_by_noise_rate").mask
    b = find_label_issues(labels, probs, method="prune_by_class").mask
    c = find_label_issues(labels, probs, method="both").mask
    np.testing.assert_array_equal(c, a & b)


def test_predicted_neq_given():
    labels, probs, _, _ = noisy_problem(300, 3)
    res = find_label_issues(labels, probs, method="predicted_neq_given")
    np.testing.assert_array_equal(res.mask, probs.argmax(axis=1) != labels)


def test_frac_noise_flags_fewer():
    labels, probs, _, _ = noisy_problem(800, 4, noise=0.2)
    full = find_label_issues(labels, probs, method="prune_by_noise_rate").mask
    half = find_label_issues(labels, probs, method="prune_by_noise_rate", frac_noise=0.5).mask
    assert half.sum() < full.sum() and not (half & ~full).any()


def test_scores_known_values():
    labels = np.array([0, 1, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(get_label_quality_scores(labels, probs, method="self_confidence"), [0.7, 0.3, 0.8])
    np.testing.assert_allclose(get_label_quality_scores(labels, probs, method="normalized_margin"), [0.75, 0.4, 0.85])
    cwe = get_label_quality_scores(labels, probs, method="confidence_weighted_entropy")
    ent = -(probs * np.log(probs)).sum(axis=1) / np.log(3)
    r = ent / probs[np.arange(3), labels]
    np.testing.assert_allclose(cwe, np.log1p(r) / r)


def test_float32_stays_float32():
    labels, probs, _, _ = noisy_problem(300, 4, dtype=np.float32)
    res = find_label_issues(labels, probs)
    assert res.scores.dtype == np.float32
    res64 = find_label_issues(labels, probs.astype(np.float64))
    np.testing.assert_array_equal(res.mask, res64.mask)


def test_missing_class_and_single_class():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    res = find_label_issues(labels, probs)
    assert res.mask.shape == (4,)
    one = find_label_issues(np.zeros(3, dtype=int), np.ones((3, 1)))
    assert not one.mask.any()


def test_empty_input():
    res = find_label_issues(np.zeros(0, dtype=int), np.zeros((0, 3)))
    assert res.mask.shape == (0,) and res.ranked.shape == (0,)


@pytest.mark.parametrize(
    ("labels", "probs", "fragment"),
    [
        ([0, 1], [[0.5, 0.5]], "same number of rows"),
        ([0, 1], [[0.5, 0.5], [np.nan, 0.5]], "row 1"),
        ([0, 1], [[0.5, 0.5], [0.9, 0.5]], "row 1: probabilities must sum to 1"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], "row 1: label 2 is outside 0..1"),
        ([0, -1], [[0.5, 0.5], [0.5, 0.5]], "row 1"),
        ([0, 1], [0.5, 0.5], "2-D"),
        ([[0], [1]], [[0.5, 0.5], [0.5, 0.5]], "multi"),
    ],
)
def test_bad_input(labels, probs, fragment):
    if fragment == "multi":  # class lists are multi-label and fine
        find_label_issues(labels, probs)
        return
    with pytest.raises(InvalidInputError, match=fragment):
        find_label_issues(np.asarray(labels), np.asarray(probs))


def test_unknown_method():
    with pytest.raises(InvalidInputError, match="method"):
        find_label_issues(np.array([0]), np.array([[1.0]]), method="nope")  # type: ignore[arg-type]


# ---------------------------------------------------------------- multi-label


def test_multilabel_finds_flipped_memberships():
    rng = np.random.default_rng(1)
    n, k = 1500, 5
    truth = rng.random((n, k)) < 0.3
    probs = np.clip(truth * 0.8 + 0.1 + rng.normal(0, 0.08, (n, k)), 0, 1)
    noisy = truth.copy()
    flip = rng.random(n) < 0.05
    cls = rng.integers(0, k, n)
    noisy[flip, cls[flip]] ^= True
    as_lists = [np.flatnonzero(row).tolist() for row in noisy]
    res = find_label_issues(as_lists, probs)
    assert res.confident_joint.shape == (k, 2, 2)
    assert (res.mask & flip).sum() / res.mask.sum() > 0.9 and (res.mask & flip).sum() / flip.sum() > 0.7
    same = find_label_issues(noisy.astype(int), probs, multi_label=True)
    np.testing.assert_array_equal(same.mask, res.mask)
    assert flip[res.ranked[: flip.sum()]].mean() > 0.8


def test_multilabel_bad_class():
    with pytest.raises(InvalidInputError, match="row 1: label 3"):
        find_label_issues([[0], [3]], np.full((2, 2), 0.5))


# ---------------------------------------------------------------- properties


@st.composite
def problems(draw):
    n = draw(st.integers(2, 60))
    k = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k) * draw(st.sampled_from([0.3, 1.0, 3.0])), size=n)
    labels = rng.integers(0, k, n)
    return labels, probs, seed


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from(FILTER_METHODS))
def test_properties(problem, method):
    labels, probs, seed = problem
    res = find_label_issues(labels, probs, method=method)
    n = len(labels)
    assert sorted(res.ranked.tolist()) == list(range(n))
    assert np.all(np.diff(res.scores[res.ranked]) >= 0)
    assert np.all((res.scores >= 0) & (res.scores <= 1))
    assert res.confident_joint.sum() == n
    np.testing.assert_allclose(res.noise_matrix.sum(axis=0)[res.confident_joint.sum(axis=0) > 0], 1.0)
    # Permuting items permutes the result.
    perm = np.random.default_rng(seed).permutation(n)
    again = find_label_issues(labels[perm], probs[perm], method=method)
    np.testing.assert_array_equal(again.confident_joint, res.confident_joint)
    if method in ("confident_learning", "predicted_neq_given"):
        # (the pruning methods may break ties between equal margins differently)
        np.testing.assert_array_equal(again.mask, res.mask[perm])


@settings(max_examples=30, deadline=None)
@given(problems())
def test_confident_joint_property_matches_loop(problem):
    labels, probs, _ = problem
    np.testing.assert_array_equal(
        compute_confident_joint(labels, probs, calibrate=False), slow_confident_joint(labels, probs)
    )


# ---------------------------------------------------------------- cross-validation


class CentroidClassifier:
    """A tiny classifier with the scikit-learn surface (no sklearn needed)."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def get_params(self, deep: bool = True) -> dict[str, float]:
        return {"temperature": self.temperature}

    def set_params(self, **params: float) -> CentroidClassifier:
        self.temperature = params.get("temperature", self.temperature)
        return self

    def fit(self, features, labels):
        self.classes_ = np.unique(labels)
        self.centroids_ = np.stack([features[labels == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, features):
        d = ((features[:, None, :] - self.centroids_[None]) ** 2).sum(axis=2)
        logits = -d / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def test_cross_val_pred_probs_duck_typed():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    features = rng.normal(0, 1, (300, 2)) + np.array([[0, 0], [4, 0], [0, 4]])[truth]
    labels = truth.copy()
    labels[:20] = (labels[:20] + 1) % 3
    est = CentroidClassifier()
    probs = cross_val_pred_probs(features, labels, est, folds=5)
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert not hasattr(est, "classes_")  # the estimator itself is never fitted
    res = find_label_issues(labels, probs)
    assert res.mask[:20].mean() > 0.8 and res.mask[20:].mean() < 0.05


def test_cross_val_pred_probs_sklearn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    labels, _, _, _ = noisy_problem(200, 3)
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (200, 4)) + labels[:, None]
    probs = cross_val_pred_probs(features, labels, linear_model.LogisticRegression(max_iter=200), folds=3)
    assert probs.shape == (200, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_cross_val_pred_probs_bad_input():
    with pytest.raises(InvalidInputError, match="folds"):
        cross_val_pred_probs(np.zeros((3, 1)), np.array([0, 1, 0]), CentroidClassifier(), folds=5)
    with pytest.raises(InvalidInputError, match="same number of rows"):
        cross_val_pred_probs(np.zeros((4, 1)), np.array([0, 1, 0]), CentroidClassifier(), folds=2)


def slow_prune_by_class(labels, probs, cj, key):
    """Per class i, the n_i - C[i, i] items of lowest key, then drop items whose label tops the row."""
    n, k = probs.shape
    flagged = set()
    for i in range(k):
        members = sorted((x for x in range(n) if labels[x] == i), key=lambda x: (key[x], x))
        if len(members) <= 1:
            continue
        flagged.update(members[: len(members) - cj[i, i]])
    return {x for x in flagged if np.argmax(probs[x] + 1e-6 * (np.arange(k) == labels[x])) != labels[x]}


@pytest.mark.parametrize("method", ["prune_by_class", "prune_by_class_margin"])
def test_prune_by_class_matches_loop(method):
    labels, probs, _, _ = noisy_problem(300, 4, noise=0.2, seed=5)
    res = find_label_issues(labels, probs, method=method)
    # self-confidence, or the normalized margin (the default ranking score)
    key = probs[np.arange(300), labels] if method == "prune_by_class" else res.scores
    assert set(np.flatnonzero(res.mask)) == slow_prune_by_class(labels, probs, res.confident_joint, key)


def test_auto_is_prune_by_class_margin():
    labels, probs, _, _ = noisy_problem(300, 4, noise=0.2, seed=6)
    auto = find_label_issues(labels, probs)
    assert auto.method == "prune_by_class_margin"
    np.testing.assert_array_equal(auto.mask, find_label_issues(labels, probs, method="prune_by_class_margin").mask)


def test_float16_input():
    labels, probs, flip, _ = noisy_problem(400, 4, noise=0.1)
    res = find_label_issues(labels, probs.astype(np.float16))
    assert res.scores.dtype == np.float16
    assert (res.mask & flip).sum() / max(res.mask.sum(), 1) > 0.8


def test_stratified_folds_balance():
    from veracity.quality.label_errors.crossval import stratified_folds

    labels = np.repeat(np.arange(3), [50, 31, 7])
    fold = stratified_folds(labels, 5, random_state=1)
    for c in range(3):
        counts = np.bincount(fold[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-2, 2, width=32, allow_nan=False), min_size=0, max_size=80),
    st.sampled_from([np.float32, np.float16, np.float64]),
)
def test_stable_argsort_matches_numpy(values, dtype):
    from veracity.quality.label_errors.count import stable_argsort

    arr = np.asarray(values + values[:5], dtype=dtype)  # repeats make ties
    np.testing.assert_array_equal(stable_argsort(arr), np.argsort(arr, kind="stable"))


def test_threads_do_not_change_results(monkeypatch):
    from veracity.quality.label_errors import count

    monkeypatch.setattr(count, "_BLOCK_ELEMENTS", 64)  # many small blocks
    labels, probs, _, _ = noisy_problem(700, 4, noise=0.2, dtype=np.float32)
    one = find_label_issues(labels, probs, n_jobs=1)
    many = find_label_issues(labels, probs, n_jobs=4)
    np.testing.assert_array_equal(one.mask, many.mask)
    np.testing.assert_array_equal(one.ranked, many.ranked)
    np.testing.assert_array_equal(one.confident_joint, many.confident_joint)


def test_threaded_validation_reports_first_bad_row(monkeypatch):
    from veracity.quality.label_errors import _checks

    monkeypatch.setattr(_checks, "_BLOCK_ELEMENTS", 8)
    labels, probs, _, _ = noisy_problem(200, 4)
    probs[150, 0] = np.nan
    probs[37] = [0.9, 0.9, 0.1, 0.1]
    with pytest.raises(InvalidInputError, match="row 37: probabilities must sum to 1"):
        find_label_issues(labels, probs, n_jobs=4)


def test_cross_val_pred_probs_never_imports_sklearn():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from veracity.quality.label_errors import cross_val_pred_probs\n"
        "class Prior:\n"
        "    def fit(self, x, y):\n"
        "        self.classes_ = np.unique(y); self.p_ = np.bincount(y) / len(y); return self\n"
        "    def predict_proba(self, x):\n"
        "        return np.tile(self.p_[self.classes_], (len(x), 1))\n"
        "p = cross_val_pred_probs(np.zeros((20, 1)), np.arange(20) % 2, Prior(), folds=4)\n"
        "assert p.shape == (20, 2)\n"
        "print('sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_prune_by_noise_rate_large_class_path_matches_candidate_sort(monkeypatch):
    from veracity.quality.label_errors import filter as filt

    labels, probs, _, _ = noisy_problem(900, 4, noise=0.25, seed=8, dtype=np.float32)
    probs[:40] = probs[40]  # ties
    labels[:40] = (labels[40] + 1) % 4
    monkeypatch.setattr(filt, "_LARGE_CLASS", 10**9)  # every class through the candidate sort
    sorted_path = find_label_issues(labels, probs, method="prune_by_noise_rate").mask
    monkeypatch.setattr(filt, "_LARGE_CLASS", 2)  # every class through argpartition
    partition_path = find_label_issues(labels, probs, method="prune_by_noise_rate").mask
    np.testing.assert_array_equal(sorted_path, partition_path)
