"""Multivariate two-sample tests: kernel MMD with a permutation test and a classifier test (C2ST).

Both take ``reference`` (n, d) and ``current`` (m, d) float arrays (features or embeddings) and
return a :class:`TwoSampleTest`.

References
----------
.. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf, A. Smola, "A Kernel Two-Sample
   Test", JMLR 13(25):723-773, 2012, https://jmlr.org/papers/v13/gretton12a.html.
.. [2] D. Lopez-Paz, M. Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017,
   arXiv:1610.06545.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from veracity._checks import check_int, check_random_state
from veracity.align._table import pooled_mean_std
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, RandomState

__all__ = [
    "TwoSampleTest",
    "classifier_two_sample_test",
    "gaussian_kernel",
    "median_bandwidth",
    "mmd_test",
    "permutation_indicators",
    "permutation_p_values",
]


@dataclass(frozen=True)
class TwoSampleTest:
    """Result of a two-sample test.

    Attributes
    ----------
    method : str
        ``"mmd"`` or ``"c2st"``.
    statistic : float
        MMD² (biased V-statistic) or held-out AUC.
    p_value : float
        p-value of "no difference between the two distributions".
    details : dict
        Method-specific values (bandwidth, permutations, train/test sizes).
    """

    method: str
    statistic: float
    p_value: float
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"method": self.method, "statistic": self.statistic, "p_value": self.p_value, **self.details}


def _as_float(values: Any, name: str) -> FloatArray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def _pair(reference: Any, current: Any) -> tuple[FloatArray, FloatArray]:
    r = _as_float(reference, "reference")
    c = _as_float(current, "current")
    r = r[:, None] if r.ndim == 1 else r
    c = c[:, None] if c.ndim == 1 else c
    if r.ndim != 2 or c.ndim != 2 or r.shape[1] != c.shape[1]:
        raise InvalidInputError(
            f"reference and current must be 2-D with the same number of columns, got {r.shape} and {c.shape}"
        )
    if r.shape[0] < 2 or c.shape[0] < 2:
        raise InvalidInputError(f"reference and current need at least 2 rows each, got {r.shape[0]} and {c.shape[0]}")
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        raise InvalidInputError("reference and current must be finite (impute or drop NaN first)")
    return r, c


def median_bandwidth(pooled: FloatArray, *, n_pairs: int = 20_000, rng: np.random.Generator | None = None) -> float:
    """Median heuristic: the median squared distance between two distinct pooled points.

    Estimated on ``n_pairs`` random pairs (exact for small inputs); 1.0 when all points coincide.
    Used as ``k(x, y) = exp(-||x - y||² / bandwidth)`` (Gretton et al. 2012).
    """
    x = np.asarray(pooled, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return 1.0
    if n * (n - 1) // 2 <= n_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        gen = rng or np.random.default_rng(0)
        i = gen.integers(0, n, n_pairs)
        j = (i + gen.integers(1, n, n_pairs)) % n
    diff = x[i] - x[j]
    med = float(np.median(np.einsum("ij,ij->i", diff, diff)))
    return med if med > 0 else 1.0


def gaussian_kernel(pooled: FloatArray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel matrix ``exp(-||x_i - x_j||² / bandwidth)`` of the pooled rows, as float32.

    Computed as ``exp(2 <x_i, x_j> / b - ||x_i||² / b - ||x_j||² / b)`` with one matrix product on
    rows scaled by ``sqrt(2 / b)`` and in-place updates (a few passes over the n x n matrix).
    """
    x = np.ascontiguousarray(pooled, dtype=np.float32) * np.float32(np.sqrt(2.0 / bandwidth))
    k = x @ x.T
    half = np.float32(0.5) * np.einsum("ij,ij->i", x, x)
    k -= half[:, None]
    k -= half[None, :]
    np.minimum(k, np.float32(0.0), out=k)
    return np.exp(k, out=k)


def permutation_indicators(n_ref: int, n_cur: int, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Bool matrix (n_permutations + 1, n_ref + n_cur): True = row belongs to the reference sample.

    Row 0 is the observed split (reference first); the others are uniform random relabellings.
    """
    base = np.zeros(n_ref + n_cur, dtype=bool)
    base[:n_ref] = True
    perms = rng.permuted(np.tile(base, (n_permutations, 1)), axis=1)
    return np.vstack([base[None, :], perms])


def permutation_p_values(stats_matrix: FloatArray) -> FloatArray:
    """Permutation p-values of every row of ``stats_matrix`` (n_perm + 1, n_components).

    ``p[b, j] = #{b' : T[b', j] >= T[b, j]} / (n_perm + 1)`` (each row counts itself), so row 0 gives
    the observed p-values and the other rows give the null distribution used to calibrate a
    combination of components (min-p, Westfall & Young 1993).
    """
    t = np.asarray(stats_matrix, dtype=np.float64)
    b = t.shape[0]
    out = np.empty_like(t)
    for j in range(t.shape[1]):
        col = t[:, j]
        s = np.sort(col)
        out[:, j] = (b - np.searchsorted(s, col - 1e-12 * np.maximum(1.0, np.abs(col)), side="left")) / b
    return out


#: MMD² values below this are float32 rounding noise of a (near) constant kernel and are set to 0:
#: the kernel's entries are at most 1 and the weights sum to 0 in absolute value 2, so a
#: statistic computed in float32 carries an absolute error of a few float32 epsilons (measured
#: below 5e-8), while a real MMD² of n rows is of order 1 / n (above 1e-5 up to 10^5 rows).
_MMD_NOISE = 4.0 * float(np.finfo(np.float32).eps)


def mmd_statistics(kernel: FloatArray, indicators: np.ndarray) -> FloatArray:
    """Biased MMD² for every row of ``indicators`` with one matrix product (kernel reused).

    Values within float32 rounding noise of 0 (``< 4 * eps(float32)``; MMD² is never negative)
    are returned as exactly 0, so that identical samples tie with every relabelling instead of
    ranking on noise.
    """
    n_ref = int(indicators[0].sum())
    n_cur = indicators.shape[1] - n_ref
    w = np.where(indicators, np.float32(1.0 / n_ref), np.float32(-1.0 / n_cur)).astype(np.float32)
    kw = w @ kernel  # (B, N); the kernel is symmetric
    t = np.einsum("bn,bn->b", kw, w, dtype=np.float64)
    t[t < _MMD_NOISE] = 0.0
    return t


def mmd_test(
    reference: Any,
    current: Any,
    *,
    n_permutations: int = 99,
    bandwidth: float | None = None,
    random_state: RandomState = None,
) -> TwoSampleTest:
    """Kernel maximum mean discrepancy test with a Gaussian kernel and a permutation p-value.

    The statistic is the biased estimate ``MMD² = mean k(r, r') + mean k(c, c') - 2 mean k(r, c)``
    with ``k(x, y) = exp(-||x - y||² / bandwidth)``, the bandwidth set by the median heuristic
    unless given. The kernel matrix of the pooled rows is computed once; all permutations are
    evaluated with one matrix product, and the p-value is ``(1 + #{perm >= observed}) /
    (1 + n_permutations)`` (exact level under exchangeability).

    Parameters
    ----------
    reference : array-like, shape (n, d)
    current : array-like, shape (m, d)
    n_permutations : int
        Random relabellings of the pooled rows.
    bandwidth : float, optional
        Kernel bandwidth (squared length scale); default: median squared pairwise distance.
    random_state : int, Generator or None
        Seed of the permutations.

    References
    ----------
    A. Gretton et al., "A Kernel Two-Sample Test", JMLR 13:723-773, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = mmd_test(rng.normal(size=(200, 3)), rng.normal(1.0, size=(200, 3)), random_state=0)
    >>> res.p_value  # the smallest value 99 permutations can give
    0.01
    """
    r, c = _pair(reference, current)
    n_permutations = check_int("n_permutations", n_permutations, 1)
    rng = check_random_state(random_state)
    pooled = np.vstack([r, c])
    if bandwidth is not None and (isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, np.number))):
        raise InvalidInputError(f"bandwidth must be a number > 0, got {bandwidth!r}")
    bw = median_bandwidth(pooled, rng=rng) if bandwidth is None else float(bandwidth)
    if not (np.isfinite(bw) and bw > 0):
        raise InvalidInputError(f"bandwidth must be > 0, got {bandwidth!r}")
    ind = permutation_indicators(r.shape[0], c.shape[0], int(n_permutations), rng)
    t = mmd_statistics(gaussian_kernel(pooled, bw), ind)
    p = float(permutation_p_values(t[:, None])[0, 0])
    return TwoSampleTest("mmd", float(t[0]), p, {"bandwidth": bw, "n_permutations": int(n_permutations)})


def _fit_logistic(features: FloatArray, target: FloatArray, weights: FloatArray, l2: float) -> FloatArray:
    """L2-penalised weighted logistic regression by L-BFGS; returns coefficients with the intercept last."""
    x = np.hstack([features, np.ones((features.shape[0], 1))])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    wsum = weights.sum()

    def loss(beta: FloatArray) -> tuple[float, FloatArray]:
        z = x @ beta
        # log(1 + exp(z)) - y z, weighted mean, plus ridge on the slopes
        nll = np.logaddexp(0.0, z) - target * z
        val = float(weights @ nll) / wsum + 0.5 * float(penalty @ (beta * beta))
        grad = x.T @ (weights * (special.expit(z) - target)) / wsum + penalty * beta
        return val, grad

    res = optimize.minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return np.asarray(res.x)


def classifier_two_sample_test(
    reference: Any,
    current: Any,
    *,
    test_size: float = 0.5,
    l2: float = 1e-3,
    quadratic: bool = True,
    random_state: RandomState = None,
) -> TwoSampleTest:
    """Classifier two-sample test: can a classifier tell current rows from reference rows?

    A logistic regression (on standardised features and, with ``quadratic``, their squares, so that
    changes of spread are visible too) is trained on a random ``1 - test_size`` share of the pooled
    rows, with class weights balancing the two samples, and scored on the held-out rest. The
    statistic is the held-out AUC (0.5 = indistinguishable); its p-value is the one-sided
    Mann-Whitney test of current scores above reference scores, valid because the held-out rows
    were not used for training (Lopez-Paz & Oquab 2017).

    References
    ----------
    D. Lopez-Paz, M. Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017, arXiv:1610.06545.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = classifier_two_sample_test(rng.normal(size=(300, 2)), rng.normal(0.5, size=(300, 2)), random_state=0)
    >>> res.statistic > 0.6, res.p_value < 0.01
    (True, True)
    """
    r, c = _pair(reference, current)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.number)) or not 0 < test_size < 1:
        raise InvalidInputError(f"test_size must be in (0, 1), got {test_size!r}")
    rng = check_random_state(random_state)
    pooled = np.vstack([r, c])
    scale, mu, sd = pooled_mean_std(pooled, axis=0)
    z = ((pooled / scale if scale != 1.0 else pooled) - mu) / sd
    feats = np.hstack([z, z * z - 1.0]) if quadratic else z
    target = np.r_[np.zeros(r.shape[0]), np.ones(c.shape[0])]
    test = np.zeros(target.size, dtype=bool)
    for side in (0.0, 1.0):  # stratified split
        idx = np.flatnonzero(target == side)
        test[rng.choice(idx, max(1, round(idx.size * float(test_size))), replace=False)] = True
    train = ~test
    if target[train].min() == target[train].max():
        raise InvalidInputError("too few rows to train the classifier two-sample test")
    n1 = float(target[train].sum())
    n0 = float(train.sum()) - n1
    weights = np.where(target[train] == 1.0, 0.5 / n1, 0.5 / n0)
    beta = _fit_logistic(feats[train], target[train], weights, float(l2))
    score = feats[test] @ beta[:-1]
    cur_s, ref_s = score[target[test] == 1.0], score[target[test] == 0.0]
    u = stats.mannwhitneyu(cur_s, ref_s, alternative="greater")
    auc = float(u.statistic) / (cur_s.size * ref_s.size)
    details = {"n_train": int(train.sum()), "n_test": int(test.sum()), "quadratic": bool(quadratic)}
    return TwoSampleTest("c2st", auc, float(u.pvalue), details)
