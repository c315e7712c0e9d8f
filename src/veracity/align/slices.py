"""Coverage slices: groups of rows frequent in operations but rare in training, ranked.

Slices are the levels of each categorical feature and the clusters of k-means run on the pooled,
standardised numeric features or embeddings. A slice is reported when its share of current rows
exceeds its share of reference rows; slices are ranked by their contribution to the KL divergence
``KL(current || reference)``, ``share_cur * log(share_cur / share_ref)``, so that a large slice
that is nearly absent from training comes first: those are the rows to label next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from veracity.align._table import category_array, level_counts
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, IntArray, RandomState

__all__ = ["Slice", "category_slices", "cluster_slices", "kmeans"]

_SMOOTH = 0.5  # pseudo-count added to each slice count before taking shares


@dataclass(frozen=True)
class Slice:
    """One over-represented group of current rows.

    Attributes
    ----------
    kind : str
        ``"category"`` or ``"cluster"``.
    feature : str
        Categorical feature name, or ``"cluster"``.
    value : str
        Category, or cluster number.
    description : str
        Human-readable summary (for clusters: the most distinctive centre coordinates).
    n_reference, n_current : int
        Rows of the slice on each side.
    share_reference, share_current : float
        Fraction of the rows of each side in the slice.
    ratio : float
        ``share_current / share_reference`` with a pseudo-count of 0.5 rows.
    score : float
        ``share_current * log(ratio)``: the ranking key.
    p_value : float
        One-sided two-proportion z-test of "no larger share in current than in reference".
    """

    kind: str
    feature: str
    value: str
    description: str
    n_reference: int
    n_current: int
    share_reference: float
    share_current: float
    ratio: float
    score: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


def _slice_stats(n_ref: int, n_cur: int, a: float, b: float) -> tuple[float, float, float, float, float]:
    sr, sc = a / n_ref, b / n_cur
    ratio = ((b + _SMOOTH) / (n_cur + _SMOOTH)) / ((a + _SMOOTH) / (n_ref + _SMOOTH))
    score = sc * float(np.log(ratio))
    pooled = (a + b) / (n_ref + n_cur)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    p = float(stats.norm.sf((sc - sr) / se)) if se > 0 else (0.0 if sc > sr else 1.0)
    return sr, sc, ratio, score, p


def category_slices(feature: str, reference: Any, current: Any) -> list[Slice]:
    """Slices of one categorical feature whose current share exceeds the reference share."""
    r, c = category_array(reference), category_array(current)
    out: list[Slice] = []
    levels, ref_counts, cur_counts = level_counts(r, c)
    for v, a, b in zip(levels.tolist(), ref_counts.tolist(), cur_counts.tolist(), strict=True):
        sr, sc, ratio, score, p = _slice_stats(r.size, c.size, a, b)
        if sc > sr:
            out.append(Slice("category", feature, str(v), f"{feature} = {v}", a, b, sr, sc, ratio, score, p))
    return out


def kmeans(
    data: Any,
    n_clusters: int,
    *,
    n_init: int = 3,
    max_iter: int = 100,
    tol: float = 1e-6,
    random_state: RandomState = 0,
) -> tuple[FloatArray, IntArray]:
    """Lloyd's k-means with k-means++ seeding; returns ``(centres (k, d), labels (n,))``.

    The run with the smallest within-cluster sum of squares among ``n_init`` seedings is kept
    (Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful seeding", SODA).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 10]
    >>> centres, labels = kmeans(x, 2, random_state=0)
    >>> sorted(np.bincount(labels).tolist())
    [5, 5]
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise InvalidInputError(f"k-means data must be a finite 2-D array, got shape {x.shape}")
    n = x.shape[0]
    k = int(n_clusters)
    if not 1 <= k <= n:
        raise InvalidInputError(f"n_clusters must be in 1..{n} (number of rows), got {n_clusters!r}")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    sq = (x * x).sum(1)
    best: tuple[float, FloatArray, IntArray] | None = None
    for _ in range(max(1, int(n_init))):
        centres = np.empty((k, x.shape[1]))
        centres[0] = x[rng.integers(n)]
        d2 = np.maximum(sq - 2 * x @ centres[0] + centres[0] @ centres[0], 0.0)
        for j in range(1, k):
            total = d2.sum()
            idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
            centres[j] = x[idx]
            d2 = np.minimum(d2, np.maximum(sq - 2 * x @ centres[j] + centres[j] @ centres[j], 0.0))
        labels = np.zeros(n, dtype=np.int64)
        for _it in range(int(max_iter)):
            dist = sq[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
            labels = dist.argmin(1)
            counts = np.bincount(labels, minlength=k)
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, x)
            new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            shift = float(np.max(np.abs(new - centres)))
            centres = new
            if shift <= tol:
                break
        dist = sq[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
        labels = dist.argmin(1)
        inertia = float(np.maximum(dist[np.arange(n), labels], 0).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres, labels.astype(np.int64))
    assert best is not None
    return best[1], best[2]


def cluster_slices(
    reference: Any,
    current: Any,
    *,
    n_clusters: int = 8,
    feature_names: list[str] | None = None,
    random_state: RandomState = 0,
) -> list[Slice]:
    """Slices from k-means clusters of the pooled rows (features already standardised, or embeddings).

    Each over-represented cluster is described by its three centre coordinates furthest from 0 (in
    standard deviations of the pooled data).
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    pooled = np.vstack([r, c])
    if pooled.shape[1] == 0 or pooled.shape[0] < 2:
        return []
    mu, sd = pooled.mean(0), pooled.std(0)
    z = (pooled - mu) / np.where(sd > 0, sd, 1.0)
    k = min(int(n_clusters), pooled.shape[0])
    centres, labels = kmeans(z, k, random_state=random_state)
    names = feature_names or [f"e{j}" for j in range(z.shape[1])]
    lr, lc = labels[: r.shape[0]], labels[r.shape[0] :]
    out: list[Slice] = []
    for j in range(k):
        a, b = int(np.sum(lr == j)), int(np.sum(lc == j))
        sr, sc, ratio, score, p = _slice_stats(r.shape[0], c.shape[0], a, b)
        if sc > sr:
            top = np.argsort(-np.abs(centres[j]))[:3]
            desc = ", ".join(f"{names[t]} {centres[j, t]:+.2f} sd" for t in top)
            out.append(Slice("cluster", "cluster", str(j), desc, a, b, sr, sc, ratio, score, p))
    return out
