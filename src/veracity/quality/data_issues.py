"""Data issues beside labels: exact and near duplicates, outliers, class imbalance, in one report.

:func:`find_data_issues` runs every check the given inputs allow and returns a
:class:`DataIssues` report that renders as a Markdown table (``str(report)``,
``report.to_markdown()``) and as JSON (``report.to_dict()``, ``report.to_json()``).

The neighbour search is exact and blocked: one matrix product per block of rows gives both the
cosine similarities (near duplicates) and the Euclidean distances (k-nearest-neighbour outlier
score), so memory stays at ``block x n_items`` whatever ``n_items`` is.

References
----------
S. Ramaswamy, R. Rastogi, K. Shim, "Efficient Algorithms for Mining Outliers from Large Data
Sets", SIGMOD 2000, doi:10.1145/342009.335437 (k-nearest-neighbour distance as outlier score).
A. Z. Broder, "On the resemblance and containment of documents", Compression and Complexity of
Sequences 1997, doi:10.1109/SEQUEN.1997.666900 (near-duplicate detection).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality.label_errors import LabelIssues, find_label_issues
from veracity.quality.label_errors._checks import check_int_option, check_real_option

__all__ = ["DataIssues", "content_hashes", "find_data_issues"]

_BLOCK_CELLS = 1 << 22  # similarity cells computed at once (16 MB in float32)


@dataclass(frozen=True)
class DataIssues:
    """Report of :func:`find_data_issues`. Arrays index the items in input order.

    Attributes
    ----------
    n_items : int
    exact_duplicates : list of ndarray of int
        Groups (size >= 2, ascending indices) of items with identical content hash.
    near_duplicates : ndarray of int, shape (n_pairs, 2)
        Pairs ``i < j`` whose cosine similarity reaches ``near_duplicate_threshold`` and that are
        not exact duplicates of each other; most similar first.
    near_duplicate_similarity : ndarray of float, shape (n_pairs,)
    outlier_scores : ndarray of float, shape (n_items,) or (0,)
        Mean Euclidean distance to the ``k`` nearest other items (empty without features).
    outliers : ndarray of bool, shape (n_items,) or (0,)
        Score above the outlier threshold.
    outlier_threshold : float or None
    class_counts : ndarray of int, shape (n_classes,) or (0,)
    rare_classes : ndarray of int
        Classes whose share is below ``imbalance_threshold / n_classes``.
    imbalance_ratio : float or None
        Largest over smallest non-zero class count.
    label_issues : LabelIssues or None
        :func:`find_label_issues` result when ``labels`` and ``pred_probs`` were given.
    params : dict
        Settings used.
    """

    n_items: int
    exact_duplicates: list[npt.NDArray[np.intp]]
    near_duplicates: npt.NDArray[np.intp]
    near_duplicate_similarity: npt.NDArray[np.float64]
    outlier_scores: npt.NDArray[np.float64]
    outliers: npt.NDArray[np.bool_]
    outlier_threshold: float | None
    class_counts: npt.NDArray[np.int64]
    rare_classes: npt.NDArray[np.intp]
    imbalance_ratio: float | None
    label_issues: LabelIssues | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """One row per check: ``issue``, ``items`` (affected item count) and ``details``."""
        rows: list[dict[str, Any]] = []
        dup_items = int(sum(len(g) for g in self.exact_duplicates))
        rows.append(
            {"issue": "exact duplicates", "items": dup_items, "details": f"{len(self.exact_duplicates)} groups"}
        )
        if self.params.get("has_features"):
            near_items = int(np.unique(self.near_duplicates).size)
            cos = self.params["near_duplicate_threshold"]
            rows.append(
                {
                    "issue": "near duplicates",
                    "items": near_items,
                    "details": f"{len(self.near_duplicates)} pairs, cosine >= {cos:g}",
                }
            )
            rows.append(
                {
                    "issue": "outliers",
                    "items": int(self.outliers.sum()),
                    "details": f"mean distance to {self.params['k']} nearest > {self.outlier_threshold:.4g}",
                }
            )
        if self.class_counts.size:
            ratio = "n/a" if self.imbalance_ratio is None else f"{self.imbalance_ratio:.3g}"
            rare = ", ".join(str(c) for c in self.rare_classes.tolist()[:10]) or "none"
            rows.append(
                {
                    "issue": "class imbalance",
                    "items": int(self.class_counts[self.rare_classes].sum()),
                    "details": f"max/min count {ratio}; rare classes: {rare}",
                }
            )
        if self.label_issues is not None:
            rows.append(
                {
                    "issue": "label issues",
                    "items": self.label_issues.num_issues,
                    "details": f"method {self.label_issues.method}",
                }
            )
        return rows

    def to_markdown(self) -> str:
        """The summary as a Markdown table."""
        lines = [f"Data issues in {self.n_items} items", "", "| issue | items | details |", "|---|---:|---|"]
        lines += [f"| {r['issue']} | {r['items']} | {r['details']} |" for r in self.summary()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def to_dict(self, *, max_items: int | None = 1000) -> dict[str, Any]:
        """JSON-ready dict: the summary and the flagged items (each list cut to ``max_items``)."""

        def cut(seq: list[Any]) -> list[Any]:
            return seq if max_items is None else seq[:max_items]

        out: dict[str, Any] = {
            "n_items": self.n_items,
            "summary": self.summary(),
            "exact_duplicates": cut([g.tolist() for g in self.exact_duplicates]),
            "near_duplicates": cut(
                [
                    [int(i), int(j), round(float(s), 6)]
                    for (i, j), s in zip(
                        self.near_duplicates.tolist(), self.near_duplicate_similarity.tolist(), strict=True
                    )
                ]
            ),
            "params": {k: v for k, v in self.params.items() if isinstance(v, int | float | str | bool | None)},
        }
        if self.outliers.size:
            idx = np.flatnonzero(self.outliers)
            idx = idx[np.argsort(-self.outlier_scores[idx], kind="stable")]
            out["outliers"] = cut([[int(i), round(float(self.outlier_scores[i]), 6)] for i in idx])
            out["outlier_threshold"] = self.outlier_threshold
        if self.class_counts.size:
            out["class_counts"] = self.class_counts.tolist()
            out["rare_classes"] = self.rare_classes.tolist()
            out["imbalance_ratio"] = self.imbalance_ratio
        if self.label_issues is not None:
            li = self.label_issues
            out["label_issues"] = {
                "method": li.method,
                "count": li.num_issues,
                "ranked": cut(li.issue_indices.tolist()),
                "suggested": cut(li.suggested[li.issue_indices].tolist()),
            }
        return out

    def to_json(self, *, indent: int | None = 2, max_items: int | None = 1000) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(max_items=max_items), indent=indent)


def _hash_one(value: Any) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, np.ndarray):
        data = value.dtype.str.encode() + str(value.shape).encode() + np.ascontiguousarray(value).tobytes()
    else:
        data = json.dumps(value, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).digest()


def content_hashes(contents: Sequence[Any]) -> npt.NDArray[np.void]:
    """BLAKE2b-128 digest of each item (str as UTF-8, bytes as is, arrays by bytes, else JSON)."""
    return np.array([_hash_one(v) for v in contents], dtype="V16")


def _row_keys(features: npt.NDArray[Any]) -> npt.NDArray[np.void]:
    """One opaque key per row, equal iff the rows are byte-identical (vectorised)."""
    arr = np.ascontiguousarray(features)  # 2-D, at least one column (checked by the caller)
    if arr.dtype.kind == "f":
        arr = arr + 0.0  # -0.0 and 0.0 compare equal: make them the same bytes
        arr = np.ascontiguousarray(arr)
    return arr.view(np.dtype((np.void, arr.dtype.itemsize * arr.shape[1]))).ravel()


def _groups(keys: npt.NDArray[Any]) -> tuple[list[npt.NDArray[np.intp]], npt.NDArray[np.intp]]:
    """Groups of equal keys (size >= 2) and the group id of each item."""
    if keys.size == 0:
        return [], np.zeros(0, dtype=np.intp)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    groups = [g for g in np.split(order, bounds) if g.size >= 2]
    groups.sort(key=lambda g: int(g[0]))
    return groups, inverse


def _neighbours(
    features: npt.NDArray[np.floating[Any]],
    group_id: npt.NDArray[np.intp] | None,
    *,
    k: int,
    threshold: float,
    max_pairs: int,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Blocked exact search: near-duplicate pairs (cosine) and mean k-NN Euclidean distance."""
    n = features.shape[0]
    # Scale-safe geometry: rows scaled by their largest |value| and normalised give the cosines
    # (no overflow for 1e20 in float32 or 1e200 in float64); norms relative to the overall largest
    # |value| give the distances, ``|x - y|^2 = s^2 (b_x^2 + b_y^2 - 2 b_x b_y cos)``.
    row_max = np.abs(features).max(axis=1).astype(np.float64) if features.shape[1] else np.zeros(n)
    scale = float(row_max.max()) if n else 0.0
    scale = scale if scale > 0 else 1.0
    unit = features / np.where(row_max > 0, row_max, 1.0).astype(features.dtype)[:, None]
    unit_norm = np.sqrt(np.einsum("ij,ij->i", unit, unit, dtype=np.float64))
    unit /= np.where(unit_norm > 0, unit_norm, 1.0).astype(features.dtype)[:, None]
    rel = row_max / scale * unit_norm  # norm of each row over ``scale``
    sq = rel * rel
    knn = np.zeros(n, dtype=np.float64)
    pairs: list[npt.NDArray[np.intp]] = []
    sims: list[npt.NDArray[np.float64]] = []
    found = 0
    kk = min(k, n - 1)
    step = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, n, step):
        stop = min(start + step, n)
        cos = (unit[start:stop] @ unit.T).astype(np.float64, copy=False)
        rows = np.arange(stop - start)
        # Euclidean distances for the outlier score, self excluded.
        if kk > 0:
            dist = sq[start:stop, None] + sq[None, :] - 2.0 * (rel[start:stop, None] * rel[None, :]) * cos
            np.maximum(dist, 0.0, out=dist)
            dist[rows, rows + start] = np.inf
            near = np.partition(dist, kk - 1, axis=1)[:, :kk]
            knn[start:stop] = np.sqrt(near).mean(axis=1) * scale
        # Cosine similarity for near duplicates: only pairs i < j.
        if found < max_pairs:
            hit_i, hit_j = np.nonzero(cos >= threshold)
            hit_i = hit_i + start
            keep = hit_j > hit_i
            if group_id is not None:
                keep &= group_id[hit_i] != group_id[hit_j]
            hit_i, hit_j = hit_i[keep], hit_j[keep]
            if hit_i.size:
                pairs.append(np.column_stack([hit_i, hit_j]).astype(np.intp))
                sims.append(cos[hit_i - start, hit_j])
                found += hit_i.size
    if pairs:
        all_pairs = np.concatenate(pairs)
        all_sims = np.concatenate(sims)
        order = np.lexsort((all_pairs[:, 1], all_pairs[:, 0], -all_sims))[:max_pairs]
        return all_pairs[order], np.minimum(all_sims[order], 1.0), knn
    return np.zeros((0, 2), dtype=np.intp), np.zeros(0), knn


def _check_finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInputError(f"{name} must be a finite number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def find_data_issues(
    features: Any = None,
    *,
    labels: Any = None,
    pred_probs: Any = None,
    contents: Sequence[Any] | None = None,
    near_duplicate_threshold: float = 0.98,
    k: int = 10,
    outlier_threshold: float | None = None,
    outlier_iqr_factor: float = 3.0,
    imbalance_threshold: float = 0.2,
    max_near_duplicate_pairs: int = 100_000,
    label_issues_method: str = "auto",
) -> DataIssues:
    """Check a data set for duplicates, near duplicates, outliers, class imbalance and label issues.

    Parameters
    ----------
    features : array-like of float, shape (n_items, n_features), optional
        Features or embeddings. Enables near duplicates, outliers and (without ``contents``)
        exact duplicates by identical rows.
    labels : array-like of int, shape (n_items,), optional
        Given classes; enables the class-imbalance check (and label issues with ``pred_probs``).
    pred_probs : array-like of float, shape (n_items, n_classes), optional
        Out-of-sample predicted probabilities; with ``labels`` runs :func:`find_label_issues`.
    contents : sequence, optional
        Raw items (str, bytes, arrays or JSON-able records); exact duplicates by content hash.
    near_duplicate_threshold : float, default 0.98
        Cosine similarity from which two items are near duplicates.
    k : int, default 10
        Neighbours in the outlier score (mean Euclidean distance to the k nearest other items).
    outlier_threshold : float, optional
        Score above which an item is an outlier; default Tukey's far-out fence
        ``Q3 + outlier_iqr_factor * (Q3 - Q1)`` of the scores.
    outlier_iqr_factor : float, default 3.0
    imbalance_threshold : float, default 0.2
        A class is rare when its share is below ``imbalance_threshold / n_classes``.
    max_near_duplicate_pairs : int, default 100000
        Stop collecting near-duplicate pairs beyond this many (the most similar are kept).
    label_issues_method : str, default "auto"
        ``method`` passed to :func:`find_label_issues`.

    Returns
    -------
    DataIssues

    Examples
    --------
    >>> import numpy as np
    >>> feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.99, 0.01], [0.0, 1.0], [0.5, 0.9]])
    >>> rep = find_data_issues(feats, k=1)
    >>> [g.tolist() for g in rep.exact_duplicates]
    [[0, 1]]
    >>> rep.near_duplicates.tolist()
    [[0, 2], [1, 2]]
    """
    n_items: int | None = None
    feats: npt.NDArray[np.floating[Any]] | None = None
    if features is not None:
        arr = np.asarray(features)
        if arr.dtype.kind not in "fiub":
            raise InvalidInputError(f"features must be numeric, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise InvalidInputError(
                f"features must be 2-D (n_items, n_features) with n_features >= 1, got shape {arr.shape}"
            )
        feats = arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
        if bad.size:
            raise InvalidInputError(f"features row {bad[0]}: values must be finite")
        n_items = feats.shape[0]
    for name, value in (("contents", contents), ("labels", labels), ("pred_probs", pred_probs)):
        if value is None:
            continue
        if isinstance(value, str | bytes) or not hasattr(value, "__len__") or getattr(value, "ndim", 1) == 0:
            raise InvalidInputError(f"{name} must be a sequence or array of items, got {type(value).__name__}")
        size = len(value)
        if n_items is not None and size != n_items:
            raise InvalidInputError(f"{name} must have {n_items} items like the other inputs, got {size}")
        n_items = size
    if n_items is None:
        raise InvalidInputError("give at least one of features, contents, labels")
    if check_real_option("near_duplicate_threshold", near_duplicate_threshold, 0.0, 1.0) == 0.0:
        raise InvalidInputError(f"near_duplicate_threshold must lie in (0, 1], got {near_duplicate_threshold}")
    k = check_int_option("k", k, 1)
    if outlier_threshold is not None:
        _check_finite_number("outlier_threshold", outlier_threshold)
    check_real_option("outlier_iqr_factor", outlier_iqr_factor, 0.0)
    check_real_option("imbalance_threshold", imbalance_threshold, 0.0, 1.0)
    max_near_duplicate_pairs = check_int_option("max_near_duplicate_pairs", max_near_duplicate_pairs, 0)
    if pred_probs is not None and np.ndim(pred_probs) != 2:
        raise InvalidInputError(f"pred_probs must be 2-D (n_items, n_classes), got shape {np.shape(pred_probs)}")

    if contents is not None:
        groups, group_id = _groups(content_hashes(contents))
    elif feats is not None:
        groups, group_id = _groups(_row_keys(feats))
    else:
        groups, group_id = [], None

    near = np.zeros((0, 2), dtype=np.intp)
    near_sim = np.zeros(0)
    scores = np.zeros(0)
    outliers = np.zeros(0, dtype=bool)
    threshold: float | None = None
    if feats is not None and n_items > 1:
        near, near_sim, scores = _neighbours(
            feats, group_id, k=k, threshold=near_duplicate_threshold, max_pairs=max_near_duplicate_pairs
        )
        if outlier_threshold is None:
            q1, q3 = np.quantile(scores, [0.25, 0.75])
            threshold = float(q3 + outlier_iqr_factor * (q3 - q1))
        else:
            threshold = float(outlier_threshold)
        outliers = scores > threshold

    counts = np.zeros(0, dtype=np.int64)
    rare = np.zeros(0, dtype=np.intp)
    ratio: float | None = None
    label_res: LabelIssues | None = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim == 1 and lab.size == 0:
            lab = lab.astype(np.intp)  # [] arrives as float64
        if lab.ndim != 1 or lab.dtype.kind not in "iu":
            raise InvalidInputError(
                f"labels must be 1-D integer class indices, got shape {lab.shape}, dtype {lab.dtype}"
            )
        if lab.size and lab.min() < 0:
            raise InvalidInputError(f"labels row {int(np.argmin(lab))}: label {lab.min()} is negative")
        n_classes = int(lab.max()) + 1 if lab.size else 0
        if pred_probs is not None:
            n_classes = max(n_classes, np.shape(pred_probs)[1])
        counts = np.bincount(lab, minlength=n_classes).astype(np.int64)
        if n_classes:
            share = counts / max(lab.size, 1)
            rare = np.flatnonzero(share < imbalance_threshold / n_classes)
            present = counts[counts > 0]
            ratio = float(present.max() / present.min()) if present.size else None
        if pred_probs is not None:
            label_res = find_label_issues(lab, pred_probs, method=label_issues_method)  # type: ignore[arg-type]

    return DataIssues(
        n_items=int(n_items),
        exact_duplicates=groups,
        near_duplicates=near,
        near_duplicate_similarity=near_sim,
        outlier_scores=scores,
        outliers=outliers,
        outlier_threshold=threshold,
        class_counts=counts,
        rare_classes=rare,
        imbalance_ratio=ratio,
        label_issues=label_res,
        params={
            "has_features": feats is not None,
            "near_duplicate_threshold": near_duplicate_threshold,
            "k": k,
            "outlier_iqr_factor": outlier_iqr_factor,
            "imbalance_threshold": imbalance_threshold,
        },
    )
