"""``detect_drift``: does operational data still look like the training data, and where not?

References
----------
.. [1] A. Gretton et al., "A Kernel Two-Sample Test", JMLR 13:723-773, 2012 (MMD).
.. [2] D. Lopez-Paz, M. Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017,
   arXiv:1610.06545 (C2ST).
.. [3] P. H. Westfall, S. S. Young, "Resampling-Based Multiple Testing", Wiley 1993 (min-p
   combination calibrated by permutations).
.. [4] S. Rabanser, S. Günnemann, Z. C. Lipton, "Failing Loudly: An Empirical Study of Methods for
   Detecting Dataset Shift", NeurIPS 2019, arXiv:1810.11953.
.. [5] A. Schrab, I. Kim, M. Albert, B. Laurent, B. Guedj, A. Gretton, "MMD Aggregated Two-Sample
   Test", JMLR 24(194):1-81, 2023, https://jmlr.org/papers/v24/21-1289.html (MMD over a collection
   of bandwidths, calibrated on shared permutations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from veracity._checks import check_int, check_random_state
from veracity.align._table import Table, align_tables, design_matrix, pooled_mean_std
from veracity.align.label_shift import LabelShiftResult, estimate_label_shift
from veracity.align.multivariate import (
    TwoSampleTest,
    classifier_two_sample_test,
    gaussian_kernel,
    median_bandwidth,
    mmd_statistics,
    permutation_indicators,
    permutation_p_values,
)
from veracity.align.report import render_html
from veracity.align.slices import Slice, category_slices, cluster_slices
from veracity.align.univariate import CORRECTIONS, adjust_p_values, chi2_test, ks_test, psi_categorical, psi_numeric
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, RandomState

__all__ = ["METHODS", "DriftReport", "FeatureDrift", "detect_drift"]

#: Values of ``method`` understood by :func:`detect_drift`.
METHODS = ("auto", "univariate", "mmd", "c2st")

_HIST_BINS = 24
#: Shares of the level given to the multivariate components of the combined test; the rest is
#: split evenly over the per-feature components (weighted min-p, Westfall & Young 1993). The MMD
#: share is split over two bandwidths, aggregated as in MMDAgg (Schrab et al. 2023): the median
#: heuristic and a quarter of it (``mmd:narrow``), which sees a small new mode or a change of
#: spread that the median kernel blurs. Each bandwidth costs a product of the permutation matrix
#: with the n x n kernel, the bulk of a test's time, hence two and not a longer grid.
_WEIGHTS = {"mmd": 0.15, "mmd:narrow": 0.15, "mean": 0.15, "second_moment": 0.15}
_MAX_LEVELS_SHOWN = 12


@dataclass(frozen=True)
class FeatureDrift:
    """Drift test of one feature.

    Attributes
    ----------
    name, kind : str
        Feature name and ``"numeric"`` or ``"categorical"``.
    test : str
        ``"ks"`` (two-sample Kolmogorov-Smirnov) or ``"chi2"`` (chi-squared homogeneity).
    statistic, p_value : float
        Test statistic and raw p-value.
    p_adjusted : float
        p-value after the multiple-testing correction of the report.
    psi : float
        Population stability index.
    drift : bool
        ``p_adjusted <= alpha``.
    n_reference, n_current : int
        Non-missing values (numeric) or rows (categorical) on each side.
    histogram : dict
        Data for plots: ``{"edges", "reference", "current"}`` (shares per bin) for numbers,
        ``{"levels", "reference", "current"}`` for categories.
    """

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    psi: float
    drift: bool
    n_reference: int
    n_current: int
    histogram: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`detect_drift`.

    Attributes
    ----------
    drift : bool
        ``p_value <= alpha``.
    p_value : float
        p-value of "current rows come from the reference distribution" for the chosen ``method``.
    method : str
        Test that decided ``drift``.
    alpha : float
        Significance level.
    correction : str
        Multiple-testing correction of the per-feature p-values.
    per_feature : list of FeatureDrift
        One entry per feature, in column order.
    multivariate : dict of str to TwoSampleTest
        Multivariate tests that were run (``"combined"``, ``"mmd"``, ``"c2st"``).
    slices : list of Slice
        Groups over-represented in current data, most important first.
    label_shift : LabelShiftResult or None
        Estimated class priors of the current data, when model outputs were given.
    n_reference, n_current : int
        Rows on each side.
    """

    drift: bool
    p_value: float
    method: str
    alpha: float
    correction: str
    per_feature: list[FeatureDrift]
    multivariate: dict[str, TwoSampleTest]
    slices: list[Slice]
    label_shift: LabelShiftResult | None
    n_reference: int
    n_current: int

    @property
    def drifted_features(self) -> list[str]:
        """Names of features whose adjusted p-value is below ``alpha``, most significant first."""
        hits = [f for f in self.per_feature if f.drift]
        return [f.name for f in sorted(hits, key=lambda f: f.p_value)]

    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        """JSON-ready dict of the whole report (plot data only with ``histograms=True``)."""
        feats = []
        for f in self.per_feature:
            d = f.to_dict()
            if not histograms:
                d.pop("histogram")
            feats.append(d)
        return {
            "drift": self.drift,
            "p_value": self.p_value,
            "method": self.method,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drifted_features": self.drifted_features,
            "per_feature": feats,
            "multivariate": {k: v.to_dict() for k, v in self.multivariate.items()},
            "slices": [s.to_dict() for s in self.slices],
            "label_shift": None if self.label_shift is None else self.label_shift.to_dict(),
        }

    def to_html(self, *, title: str = "Drift report") -> str:
        """A self-contained HTML page (inline CSS and SVG, no external assets)."""
        return render_html(self, title=title)


def _histogram(kind: str, r: np.ndarray, c: np.ndarray) -> dict[str, list[Any]]:
    if kind == "numeric":
        rf, cf = r[np.isfinite(r)], c[np.isfinite(c)]
        pooled = np.concatenate([rf, cf])
        if pooled.size == 0:
            return {"edges": [], "reference": [], "current": []}
        lo, hi = np.quantile(pooled, [0.005, 0.995])
        if hi <= lo:
            lo, hi = float(pooled.min()) - 0.5, float(pooled.max()) + 0.5
        edges = np.linspace(lo, hi, _HIST_BINS + 1)
        rh = np.histogram(np.clip(rf, lo, hi), edges)[0] / max(rf.size, 1)
        ch = np.histogram(np.clip(cf, lo, hi), edges)[0] / max(cf.size, 1)
        return {"edges": edges.tolist(), "reference": rh.tolist(), "current": ch.tolist()}
    levels, counts = np.unique(np.concatenate([r, c]), return_counts=True)
    keep = levels[np.argsort(-counts, kind="stable")[:_MAX_LEVELS_SHOWN]]
    return {
        "levels": [str(v) for v in keep],
        "reference": [float(np.mean(r == v)) for v in keep],
        "current": [float(np.mean(c == v)) for v in keep],
    }


def _per_feature(ref: Table, cur: Table, alpha: float, correction: str) -> list[FeatureDrift]:
    raw: list[tuple[str, str, str, float, float, float, int, int, dict[str, list[Any]]]] = []
    for name, kind in ref.kinds.items():
        r, c = ref.columns[name], cur.columns[name]
        if kind == "numeric":
            stat, p = ks_test(r, c)
            psi = psi_numeric(r, c)
            nr, nc = int(np.isfinite(r).sum()), int(np.isfinite(c).sum())
            test = "ks"
        else:
            stat, p, _levels, rc, cc = chi2_test(r, c)
            psi = psi_categorical(rc, cc)
            nr, nc = r.size, c.size
            test = "chi2"
        raw.append((name, kind, test, stat, p, psi, nr, nc, _histogram(kind, r, c)))
    adjusted = adjust_p_values([x[4] for x in raw], correction)
    return [
        FeatureDrift(n, k, t, s, p, float(a), psi, bool(a <= alpha), nr, nc, h)
        for (n, k, t, s, p, psi, nr, nc, h), a in zip(raw, adjusted, strict=True)
    ]


def _ks_permutation_stats(values: np.ndarray, ind: np.ndarray) -> FloatArray:
    """KS statistic of every relabelling in ``ind`` (B, N); NaN is one more value, above all numbers."""
    v = np.where(np.isfinite(values), values, np.inf)
    order = np.argsort(v, kind="stable")
    vs = v[order]
    ends = np.flatnonzero(np.r_[vs[1:] != vs[:-1], True])
    n_ref = int(ind[0].sum())
    n_cur = ind.shape[1] - n_ref
    cum_ref = np.cumsum(ind[:, order], axis=1, dtype=np.int32)
    if ends.size < v.size:
        cum_ref = cum_ref[:, ends]
    # F_ref - F_cur = cum_ref / n_ref - (position - cum_ref) / n_cur
    diff = cum_ref.astype(np.float32) * np.float32(1.0 / n_ref + 1.0 / n_cur)
    diff -= ((ends + 1) / n_cur).astype(np.float32)[None, :]
    return np.abs(diff).max(axis=1).astype(np.float64)


def _chi2_permutation_stats(values: np.ndarray, ind: np.ndarray) -> FloatArray:
    """Chi-squared homogeneity statistic of every relabelling in ``ind`` (B, N)."""
    _levels, codes = np.unique(values, return_inverse=True)
    onehot = np.eye(_levels.size, dtype=np.float32)[codes]
    n_ref = float(ind[0].sum())
    n = float(ind.shape[1])
    tot = onehot.sum(0, dtype=np.float64)
    a = ind.astype(np.float32) @ onehot
    e_ref = n_ref * tot / n
    e_cur = (n - n_ref) * tot / n
    return ((a - e_ref) ** 2 / e_ref + ((tot - a) - e_cur) ** 2 / e_cur).sum(axis=1)


def _gamma_log_sf(values: FloatArray) -> FloatArray:
    """Log survival function of a gamma distribution matched to the mean and variance of ``values``."""
    mean = float(values.mean())
    var = float(values.var())
    if not (mean > 0 and var > 0):
        return np.where(values > mean, -np.inf, 0.0)
    return stats.gamma.logsf(values, mean * mean / var, scale=var / mean)


def _quadratic_form_log_sf(values: FloatArray, data: FloatArray, scale: float) -> FloatArray:
    """Log survival function of ``||mean_ref(data) - mean_cur(data)||²`` under random relabelling.

    The difference of means has covariance ``scale * S`` (``S`` the sample covariance of the pooled
    rows, ``scale = 1/n + 1/m``); its squared norm is matched to a gamma by its mean ``tr(C)`` and
    variance ``2 tr(C²)`` (Satterthwaite 1946).
    """
    cov = np.atleast_2d(np.cov(data, rowvar=False)) * scale
    mean = float(np.trace(cov))
    var = 2.0 * float(np.sum(cov * cov))
    if not (mean > 0 and var > 0):
        return np.zeros_like(values)
    return stats.gamma.logsf(values, mean * mean / var, scale=var / mean)


def _components(
    ref: Table,
    cur: Table,
    matrix: FloatArray,
    numeric: FloatArray,
    ind: np.ndarray,
    rng: np.random.Generator,
) -> tuple[dict[str, FloatArray], FloatArray, float]:
    """Every component statistic on every relabelling in ``ind``, and its log approximate p-value.

    Returns ``(statistics by name, log_p (B + 1, n_components) in the same order, MMD bandwidth)``.
    """
    n_ref, n_cur = ref.n_rows, cur.n_rows
    comps: dict[str, FloatArray] = {}
    for name, kind in ref.kinds.items():
        pooled = np.concatenate([ref.columns[name], cur.columns[name]])
        if kind == "numeric":
            comps[f"ks:{name}"] = _ks_permutation_stats(pooled, ind)
        else:
            comps[f"chi2:{name}"] = _chi2_permutation_stats(pooled, ind)
    w = np.where(ind, 1.0 / n_ref, -1.0 / n_cur)
    if numeric.shape[1]:
        comps["mean"] = ((w @ numeric) ** 2).sum(axis=1)
        comps["second_moment"] = ((w @ (numeric * numeric)) ** 2).sum(axis=1)
    bandwidth = median_bandwidth(matrix, rng=rng)
    kernel = gaussian_kernel(matrix, bandwidth)
    comps["mmd"] = mmd_statistics(kernel, ind)
    # exp(-d / (b / 4)) = exp(-d / b) ** 4: the narrow kernel by squaring twice, in place
    np.multiply(kernel, kernel, out=kernel)
    np.multiply(kernel, kernel, out=kernel)
    comps["mmd:narrow"] = mmd_statistics(kernel, ind)
    # Put every component on one scale before combining: the log of a continuous approximate
    # p-value. KS: asymptotic Kolmogorov distribution; chi-squared: chi2(levels - 1); moment
    # statistics: a gamma with the exact permutation mean and variance of a sum of squared
    # (asymptotically normal) mean differences (Satterthwaite); MMD: a gamma fitted by moments to
    # the permutation distribution (Gretton et al. 2009). Each transform is a fixed function of
    # the statistic given the pooled data, so calibrating the combination by the same
    # permutations is exact (Westfall & Young 1993).
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    scale = 1.0 / n_ref + 1.0 / n_cur
    columns = []
    for k, values in comps.items():
        if k.startswith("ks:"):
            columns.append(stats.kstwobign.logsf(values * np.sqrt(n_eff)))
        elif k.startswith("chi2:"):
            dof = max(len(np.unique(np.concatenate([ref.columns[k[5:]], cur.columns[k[5:]]]))) - 1, 1)
            columns.append(stats.chi2.logsf(values, dof))
        elif k == "mean":
            columns.append(_quadratic_form_log_sf(values, numeric, scale))
        elif k == "second_moment":
            columns.append(_quadratic_form_log_sf(values, numeric * numeric, scale))
        else:
            columns.append(_gamma_log_sf(values))
    return comps, np.column_stack(columns), bandwidth


def _weights(names: list[str]) -> FloatArray:
    """Shares of the level per component: ``_WEIGHTS`` for the multivariate ones, the rest split
    evenly over the per-feature ones."""
    weights = np.array([_WEIGHTS.get(k, 0.0) for k in names])
    per_feature = weights == 0
    weights[per_feature] = (1.0 - weights.sum()) / max(int(per_feature.sum()), 1)
    if not per_feature.any():
        weights = weights / weights.sum()
    return weights


def _combined_test(
    ref: Table,
    cur: Table,
    matrix: FloatArray,
    numeric: FloatArray,
    n_permutations: int,
    rng: np.random.Generator,
) -> tuple[TwoSampleTest, TwoSampleTest]:
    """Min-p combination of per-feature and multivariate statistics, calibrated by one set of permutations."""
    ind = permutation_indicators(ref.n_rows, cur.n_rows, n_permutations, rng)
    comps, log_p, bandwidth = _components(ref, cur, matrix, numeric, ind, rng)
    names = list(comps)
    min_log_p = (log_p - np.log(_weights(names))).min(axis=1)
    combined_p = float(np.mean(min_log_p <= min_log_p[0] + 1e-9))
    pv = permutation_p_values(np.column_stack([comps[k] for k in names]))
    details = {
        "n_permutations": n_permutations,
        "components": {k: float(pv[0, j]) for j, k in enumerate(names)},
    }
    combined = TwoSampleTest("combined", float(np.exp(min_log_p[0])), combined_p, details)
    j = names.index("mmd")
    mmd = TwoSampleTest(
        "mmd", float(comps["mmd"][0]), float(pv[0, j]), {"bandwidth": bandwidth, "n_permutations": n_permutations}
    )
    return combined, mmd


def _embedding_pair(reference_embeddings: Any, current_embeddings: Any) -> tuple[FloatArray, FloatArray] | None:
    if reference_embeddings is None and current_embeddings is None:
        return None
    if reference_embeddings is None or current_embeddings is None:
        raise InvalidInputError("give both reference_embeddings and current_embeddings, or neither")
    er = _float_array(reference_embeddings, "reference_embeddings")
    ec = _float_array(current_embeddings, "current_embeddings")
    if er.ndim != 2 or ec.ndim != 2 or er.shape[1] != ec.shape[1]:
        raise InvalidInputError(f"embeddings must be 2-D with the same width, got {er.shape} and {ec.shape}")
    if not (np.isfinite(er).all() and np.isfinite(ec).all()):
        raise InvalidInputError("embeddings must be finite")
    scale, mu, sd = pooled_mean_std(np.vstack([er, ec]), axis=0)
    if scale != 1.0:
        er, ec = er / scale, ec / scale
    return (er - mu) / sd, (ec - mu) / sd


def _float_array(values: Any, name: str) -> FloatArray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"alpha must be a number in (0, 1), got {alpha!r}")
    a = float(alpha)
    if not 0 < a < 1:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha!r}")
    return a


def detect_drift(
    reference: Any,
    current: Any,
    method: str = "auto",
    alpha: float = 0.05,
    *,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    feature_names: Sequence[str] | None = None,
    correction: str = "holm",
    n_permutations: int = 99,
    reference_embeddings: Any = None,
    current_embeddings: Any = None,
    n_clusters: int = 8,
    reference_probs: Any = None,
    reference_labels: Any = None,
    current_probs: Any = None,
    label_shift_method: str = "bbse",
    random_state: RandomState = 0,
) -> DriftReport:
    """Compare ``current`` (operational) data with ``reference`` (training) data.

    Parameters
    ----------
    reference, current : array-like (n, d), mapping of columns, pandas/polars DataFrame or pyarrow Table
        The two samples, with the same columns. Numeric columns are tested with the two-sample
        Kolmogorov-Smirnov test, others (strings, booleans, and numeric columns named in
        ``categorical``) with the chi-squared test of homogeneity; every feature also gets a
        population stability index.
    method : {"auto", "univariate", "mmd", "c2st"}
        Test that decides ``report.drift``:

        - ``"auto"`` (default): one permutation test that combines, by a weighted minimum of their
          p-values, the per-feature KS and chi-squared statistics, the distance between the mean
          vectors and between the second-moment vectors of the standardised numeric features, and
          the Gaussian kernel MMD (Gretton et al. 2012) of all features at two bandwidths (the
          median heuristic and a quarter of it, aggregated as in MMDAgg, Schrab et al. 2023: the
          narrow kernel sees a small new mode or a change of spread that the median one blurs).
          The MMD gets 30% of the level (15% per bandwidth), each moment statistic 15%, and the
          per-feature statistics share the remaining 40%.
          All components are recomputed on the same ``n_permutations`` relabellings, so the
          combination has level ``alpha`` exactly (Westfall & Young 1993), while each kind of shift
          is seen by the statistic best suited to it (location, spread, a new mode, a category).
        - ``"univariate"``: the smallest corrected per-feature p-value.
        - ``"mmd"``: the MMD permutation test alone (median-heuristic bandwidth).
        - ``"c2st"``: classifier two-sample test, held-out AUC of a logistic regression on the
          standardised features and their squares (Lopez-Paz & Oquab 2017).
    alpha : float
        Significance level; ``drift`` is ``p_value <= alpha``. A permutation p-value
        ``(1 + #{relabellings at least as extreme}) / (1 + n_permutations)`` is at most ``k / (1 +
        n_permutations)`` with probability exactly that under no drift, so rejecting at ``<=`` is a
        test of level exactly ``alpha`` when ``alpha * (1 + n_permutations)`` is a whole number
        (99 permutations, alpha 0.05); ``<`` would test at 0.04 and lose power for nothing
        (Phipson & Smyth 2010, "Permutation P-values Should Never Be Zero", SAGMB 9(1)).
    features : sequence of str, optional
        Columns to compare (default: all; both sides must then have the same columns).
    categorical : sequence of str
        Numeric columns to treat as categories.
    feature_names : sequence of str, optional
        Names of the columns of plain 2-D arrays (default ``x0, x1, ...``).
    correction : {"holm", "bh", "bonferroni", "none"}
        Multiple-testing correction of the per-feature p-values: Holm (default; family-wise error
        rate) or Benjamini-Hochberg (false discovery rate).
    n_permutations : int
        Relabellings for the permutation tests; p-values are multiples of ``1 / (n_permutations +
        1)``.
    reference_embeddings, current_embeddings : array-like (n, e), optional
        Embeddings of the same rows; when given, the multivariate tests and the clusters use them
        instead of the features.
    n_clusters : int
        k-means clusters for coverage slices (0 disables them).
    reference_probs, reference_labels, current_probs : array-like, optional
        Model probabilities on held-out labelled reference rows and on current rows; when given,
        ``report.label_shift`` estimates the current class priors (``label_shift_method``: ``"bbse"``
        of Lipton et al. 2018 or ``"em"`` of Saerens et al. 2002).
    random_state : int, Generator or None
        Seed of permutations, data splits and k-means.

    Returns
    -------
    DriftReport
        ``.drift``, ``.p_value``, ``.per_feature``, ``.slices``, ``.to_dict()``, ``.to_html()``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(500, 3))
    >>> cur = rng.normal(size=(500, 3)) * [1.0, 1.0, 1.6]
    >>> report = detect_drift(ref, cur, random_state=0)
    >>> report.drift, report.drifted_features
    (True, ['x2'])
    """
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if correction not in CORRECTIONS:
        raise InvalidInputError(f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {correction!r}")
    a = _check_alpha(alpha)
    n_permutations = check_int("n_permutations", n_permutations, 1)
    n_clusters = check_int("n_clusters", n_clusters, 0, hint=" (0 turns cluster slices off)")
    rng = check_random_state(random_state)
    ref, cur = align_tables(reference, current, features=features, categorical=categorical, feature_names=feature_names)
    per_feature = _per_feature(ref, cur, a, correction)
    matrix_r, matrix_c, names, num_r, num_c = design_matrix(ref, cur)
    emb = _embedding_pair(reference_embeddings, current_embeddings)
    if emb is not None:
        if emb[0].shape[0] != ref.n_rows or emb[1].shape[0] != cur.n_rows:
            raise InvalidInputError(
                f"embeddings must have one row per data row: reference {emb[0].shape[0]} vs {ref.n_rows}, "
                f"current {emb[1].shape[0]} vs {cur.n_rows}"
            )
        matrix_r, matrix_c = emb
        num_r, num_c = emb
        names = [f"e{j}" for j in range(matrix_r.shape[1])]
    multivariate: dict[str, TwoSampleTest] = {}
    if method == "auto":
        combined, mmd = _combined_test(
            ref, cur, np.vstack([matrix_r, matrix_c]), np.vstack([num_r, num_c]), int(n_permutations), rng
        )
        multivariate["combined"] = combined
        multivariate["mmd"] = mmd
        p_value = combined.p_value
    elif method == "mmd":
        ind = permutation_indicators(ref.n_rows, cur.n_rows, int(n_permutations), rng)
        pooled = np.vstack([matrix_r, matrix_c])
        bw = median_bandwidth(pooled, rng=rng)
        t = mmd_statistics(gaussian_kernel(pooled, bw), ind)
        p_mmd = float(permutation_p_values(t[:, None])[0, 0])
        multivariate["mmd"] = TwoSampleTest(
            "mmd", float(t[0]), p_mmd, {"bandwidth": bw, "n_permutations": int(n_permutations)}
        )
        p_value = p_mmd
    elif method == "c2st":
        multivariate["c2st"] = classifier_two_sample_test(matrix_r, matrix_c, random_state=rng)
        p_value = multivariate["c2st"].p_value
    else:
        p_value = min((f.p_adjusted for f in per_feature), default=1.0)

    slices: list[Slice] = []
    for name, kind in ref.kinds.items():
        if kind == "categorical":
            slices.extend(category_slices(name, ref.columns[name], cur.columns[name]))
    cluster_r, cluster_c = emb if emb is not None else (num_r, num_c)
    if int(n_clusters) > 0 and cluster_r.shape[1] > 0:
        cluster_names = names if emb is not None else [n for n, k in ref.kinds.items() if k == "numeric"]
        slices.extend(
            cluster_slices(
                cluster_r, cluster_c, n_clusters=int(n_clusters), feature_names=cluster_names, random_state=rng
            )
        )
    slices.sort(key=lambda s: (-s.score, s.p_value))

    label_shift = None
    if reference_probs is not None or current_probs is not None or reference_labels is not None:
        if reference_probs is None or current_probs is None or reference_labels is None:
            raise InvalidInputError("label shift needs reference_probs, reference_labels and current_probs together")
        label_shift = estimate_label_shift(reference_probs, reference_labels, current_probs, method=label_shift_method)

    return DriftReport(
        drift=bool(p_value <= a),
        p_value=float(p_value),
        method=method,
        alpha=a,
        correction=correction,
        per_feature=per_feature,
        multivariate=multivariate,
        slices=slices,
        label_shift=label_shift,
        n_reference=ref.n_rows,
        n_current=cur.n_rows,
    )
