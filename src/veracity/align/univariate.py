"""Per-feature drift tests: Kolmogorov-Smirnov, chi-squared, population stability index, corrections.

References
----------
.. [1] S. Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scand. J. Statist. 6(2),
   1979, https://www.jstor.org/stable/4615733.
.. [2] Y. Benjamini, Y. Hochberg, "Controlling the False Discovery Rate", JRSS B 57(1), 1995,
   doi:10.1111/j.2517-6161.1995.tb02031.x.
.. [3] B. Yurdakul, "Statistical Properties of Population Stability Index", PhD thesis, Western
   Michigan University, 2018 (PSI).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from veracity.align._table import category_array, level_counts
from veracity.errors import InvalidInputError
from veracity.types import FloatArray

__all__ = ["CORRECTIONS", "adjust_p_values", "chi2_test", "ks_test", "psi_categorical", "psi_numeric"]

#: Multiple-testing corrections understood by :func:`adjust_p_values`.
CORRECTIONS = ("holm", "bh", "bonferroni", "none")

PSI_EPS = 1e-4


def adjust_p_values(p_values: Any, method: str = "holm") -> FloatArray:
    """Adjust p-values for multiple testing.

    ``"holm"`` (default) controls the family-wise error rate under any dependence (Holm 1979):
    rejecting adjusted p-values below ``alpha`` gives at most ``alpha`` chance of any false alarm.
    ``"bh"`` controls the false discovery rate (Benjamini & Hochberg 1995; valid for independent or
    positively dependent tests); ``"bonferroni"`` multiplies by the number of tests; ``"none"``
    returns them unchanged.

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_p_values([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    if method not in CORRECTIONS:
        raise InvalidInputError(f"correction must be one of {', '.join(map(repr, CORRECTIONS))}, got {method!r}")
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(ps * (m - np.arange(m)))
    else:  # bh
        adj = np.minimum.accumulate((ps * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def ks_test(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (``scipy.stats.ks_2samp``), NaN dropped."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    r, c = r[np.isfinite(r)], c[np.isfinite(c)]
    if r.size == 0 or c.size == 0:
        return 0.0, 1.0
    res = stats.ks_2samp(r, c)
    return float(res.statistic), float(res.pvalue)


def chi2_test(reference: Any, current: Any) -> tuple[float, float, list[str], FloatArray, FloatArray]:
    """Chi-squared test of homogeneity of two categorical samples (``scipy.stats.chi2_contingency``).

    Returns ``(statistic, p_value, levels, reference_counts, current_counts)``. Levels are those seen
    on either side. With one level only there is nothing to compare (statistic 0, p 1).
    """
    levels, ref_counts, cur_counts = level_counts(category_array(reference), category_array(current))
    rc, cc = ref_counts.astype(np.float64), cur_counts.astype(np.float64)
    if levels.size < 2:
        return 0.0, 1.0, levels.tolist(), rc, cc
    res = stats.chi2_contingency(np.vstack([rc, cc]), correction=False)
    return float(res.statistic), float(res.pvalue), levels.tolist(), rc, cc


def psi_numeric(reference: Any, current: Any, *, n_bins: int = 10) -> float:
    """Population stability index over ``n_bins`` quantile bins of the reference (NaN dropped).

    ``PSI = sum (c_b - r_b) * ln(c_b / r_b)`` over bin shares, each floored at 1e-4. Rules of thumb:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> psi_numeric(rng.normal(size=5000), rng.normal(size=5000)) < 0.02
    True
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    r, c = r[np.isfinite(r)], c[np.isfinite(c)]
    if r.size == 0 or c.size == 0:
        return 0.0
    edges = np.unique(np.quantile(r, np.linspace(0, 1, int(n_bins) + 1)[1:-1]))
    rb = np.bincount(np.searchsorted(edges, r, side="right"), minlength=edges.size + 1) / r.size
    cb = np.bincount(np.searchsorted(edges, c, side="right"), minlength=edges.size + 1) / c.size
    return _psi(rb, cb)


def psi_categorical(reference_counts: Any, current_counts: Any) -> float:
    """Population stability index of two count vectors over the same categories."""
    rc = np.asarray(reference_counts, dtype=np.float64)
    cc = np.asarray(current_counts, dtype=np.float64)
    return _psi(rc / max(rc.sum(), 1.0), cc / max(cc.sum(), 1.0))


def _psi(r: FloatArray, c: FloatArray) -> float:
    r = np.maximum(r, PSI_EPS)
    c = np.maximum(c, PSI_EPS)
    return float(np.sum((c - r) * np.log(c / r)))
