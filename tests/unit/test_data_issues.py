"""find_data_issues: duplicates, near duplicates, outliers, imbalance, rendering; against brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veracity.errors import InvalidInputError
from veracity.quality import find_data_issues
from veracity.quality.data_issues import DataIssues


def brute_force(features: np.ndarray, k: int, threshold: float) -> tuple[set[tuple[int, int]], np.ndarray]:
    """Every pair, one at a time: near-duplicate pairs and mean k-NN distance."""
    n = len(features)
    pairs = set()
    knn = np.zeros(n)
    for i in range(n):
        dists = []
        for j in range(n):
            if i == j:
                continue
            a, b = features[i], features[j]
            dists.append(float(np.sqrt(((a - b) ** 2).sum())))
            cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            if j > i and cos >= threshold and not np.array_equal(a, b):
                pairs.add((i, j))
        knn[i] = np.mean(sorted(dists)[:k])
    return pairs, knn


def test_matches_brute_force():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(120, 6))
    feats[50] = feats[3] * 1.001
    feats[77] = feats[3] + 0.002
    feats[90] = feats[10]
    rep = find_data_issues(feats, k=4, near_duplicate_threshold=0.99)
    pairs, knn = brute_force(feats, 4, 0.99)
    assert {tuple(p) for p in rep.near_duplicates.tolist()} == pairs
    np.testing.assert_allclose(rep.outlier_scores, knn, rtol=1e-6, atol=1e-6)
    assert [g.tolist() for g in rep.exact_duplicates] == [[10, 90]]


def test_blocked_search_equals_one_block(monkeypatch):
    from veracity.quality import data_issues

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 32)).astype(np.float32)
    feats[200:210] = feats[0:10] + 1e-4
    whole = find_data_issues(feats, k=3)
    monkeypatch.setattr(data_issues, "_BLOCK_CELLS", 7 * 300)  # 7 rows per block
    blocked = find_data_issues(feats, k=3)
    np.testing.assert_array_equal(whole.near_duplicates, blocked.near_duplicates)
    np.testing.assert_allclose(whole.outlier_scores, blocked.outlier_scores, rtol=1e-5)
    assert len(whole.near_duplicates) == 10


def test_outlier_is_found():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(500, 32))
    feats[123] += 25.0
    rep = find_data_issues(feats)
    assert np.flatnonzero(rep.outliers).tolist() == [123]
    assert rep.outlier_scores.argmax() == 123


def test_content_hash_duplicates():
    contents = ["a cat", "a dog", "a cat", b"bytes", b"bytes", {"x": 1, "y": 2}, {"y": 2, "x": 1}, "a cat"]
    rep = find_data_issues(contents=contents)
    assert [g.tolist() for g in rep.exact_duplicates] == [[0, 2, 7], [3, 4], [5, 6]]
    assert rep.summary()[0] == {"issue": "exact duplicates", "items": 7, "details": "3 groups"}


def test_class_imbalance_and_label_issues():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 500 + [1] * 480 + [2] * 20)
    probs = np.full((1000, 3), 0.05)
    probs[np.arange(1000), labels] = 0.9
    probs[:10] = [0.05, 0.9, 0.05]  # labelled 0, predicted 1
    rep = find_data_issues(labels=labels, pred_probs=probs)
    assert rep.class_counts.tolist() == [500, 480, 20]
    assert rep.rare_classes.tolist() == [2]
    assert rep.imbalance_ratio == pytest.approx(25.0)
    assert rep.label_issues is not None
    assert set(rep.label_issues.issue_indices.tolist()) == set(range(10))
    d = rep.to_dict()
    assert d["label_issues"]["count"] == 10 and d["label_issues"]["suggested"] == [1] * 10
    assert rng is not None


def test_renders_table_and_json():
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(50, 3))
    feats[1] = feats[0]
    rep = find_data_issues(feats, labels=rng.integers(0, 2, 50), k=3)
    text = str(rep)
    assert text == rep.to_markdown()
    assert "| exact duplicates | 2 | 1 groups |" in text
    assert "| near duplicates |" in text and "| outliers |" in text and "| class imbalance |" in text
    back = json.loads(rep.to_json())
    assert back["n_items"] == 50
    assert back["exact_duplicates"] == [[0, 1]]
    assert [row["issue"] for row in back["summary"]] == [
        "exact duplicates",
        "near duplicates",
        "outliers",
        "class imbalance",
    ]


def test_bad_input():
    with pytest.raises(InvalidInputError, match="at least one"):
        find_data_issues()
    with pytest.raises(InvalidInputError, match="must have 3 items"):
        find_data_issues(np.zeros((3, 2)), labels=np.array([0, 1]))
    with pytest.raises(InvalidInputError, match="row 1"):
        find_data_issues(np.array([[0.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(InvalidInputError, match="2-D"):
        find_data_issues(np.zeros(3))


def test_single_item_and_zero_vectors():
    rep = find_data_issues(np.zeros((1, 4)))
    assert isinstance(rep, DataIssues) and rep.n_items == 1
    rep = find_data_issues(np.zeros((3, 2)), k=1)
    assert [g.tolist() for g in rep.exact_duplicates] == [[0, 1, 2]]
    assert rep.near_duplicates.shape == (0, 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 25), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_property_permutation_and_symmetry(n, d, seed):
    rng = np.random.default_rng(seed)
    feats = rng.integers(-2, 3, size=(n, d)).astype(np.float64)  # small grid: many duplicates
    rep = find_data_issues(feats, k=2, near_duplicate_threshold=0.95)
    perm = rng.permutation(n)
    again = find_data_issues(feats[perm], k=2, near_duplicate_threshold=0.95)
    np.testing.assert_allclose(again.outlier_scores, rep.outlier_scores[perm], atol=1e-9)
    groups = {frozenset(g.tolist()) for g in rep.exact_duplicates}
    groups_perm = {frozenset(perm[g].tolist()) for g in again.exact_duplicates}
    assert groups == groups_perm
    pairs = {frozenset(p) for p in rep.near_duplicates.tolist()}
    pairs_perm = {frozenset(perm[p].tolist()) for p in again.near_duplicates}
    assert pairs == pairs_perm
    assert all(i < j for i, j in rep.near_duplicates.tolist())
    assert np.all(rep.near_duplicate_similarity >= 0.95 - 1e-12)
