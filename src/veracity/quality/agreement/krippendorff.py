"""Krippendorff's alpha for nominal, ordinal, interval and ratio data, with missing values."""

from __future__ import annotations

import numpy as np

from veracity.errors import InvalidInputError
from veracity.quality.agreement.kappa import unit_counts
from veracity.quality.responses import Responses
from veracity.types import FloatArray

__all__ = ["LEVELS", "krippendorff_alpha"]

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _numeric(classes: np.ndarray, level: str) -> FloatArray:
    """Class values as float64: finite numbers, and not negative for the ratio level."""
    try:
        values = np.asarray(classes, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{level} Krippendorff's alpha needs numeric labels, got {classes[:5].tolist()}"
        ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise InvalidInputError(
            f"{level} Krippendorff's alpha needs finite numeric labels, got {_item(classes[bad][0])!r}"
        )
    if level == "ratio" and (values < 0).any():
        raise InvalidInputError(
            f"ratio Krippendorff's alpha needs non-negative labels, got {_item(classes[values < 0][0])!r}"
        )
    return values


def _item(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _delta2(classes: np.ndarray, level: str, n_c: FloatArray) -> FloatArray:
    """Squared difference function between every pair of values, shape (K, K)."""
    k = classes.shape[0]
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":
        # values are ranked by class code (sorted label order)
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        i = np.arange(k)
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from lo to hi inclusive
        d = between - (n_c[:, None] + n_c[None, :]) / 2.0
        return d**2
    v = _numeric(classes, level)
    top = float(np.abs(v).max()) if v.size else 0.0
    if top > 0:
        v = v / top  # alpha is a ratio of disagreements: scaling is exact and avoids overflow
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ratio":  # values are >= 0 (checked), so s == 0 only for the pair (0, 0)
        s = v[:, None] + v[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(s == 0, 0.0, (v[:, None] - v[None, :]) / s)
        return d**2
    raise InvalidInputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def krippendorff_alpha(responses: Responses, *, level: str = "nominal") -> float:
    r"""Krippendorff's alpha reliability coefficient.

    Builds the coincidence matrix :math:`o_{ck} = \sum_u \frac{\#\{c\text{-}k \text{ pairs in } u\}}{m_u - 1}`
    over units (tasks) with :math:`m_u \ge 2` values, and returns
    :math:`\alpha = 1 - (n - 1) \frac{\sum_{ck} o_{ck} \delta^2_{ck}}{\sum_{ck} n_c n_k \delta^2_{ck}}`.
    Missing values are simply absent answers. Ordinal ranks follow the sorted label order; interval
    and ratio need finite numeric labels, and ratio non-negative ones.

    Parameters
    ----------
    responses : Responses
    level : {"nominal", "ordinal", "interval", "ratio"}

    References
    ----------
    K. Krippendorff. Computing Krippendorff's Alpha-Reliability. 2011.
    https://repository.upenn.edu/asc_papers/43 ; K. Krippendorff, Content Analysis: An
    Introduction to Its Methodology, 4th ed., Sage, 2018.

    Examples
    --------
    >>> r = Responses.from_arrays(task=[1, 1, 2, 2, 3, 3], worker=[1, 2] * 3, label=[0, 0, 1, 1, 2, 2])
    >>> krippendorff_alpha(r)
    1.0
    """
    if level not in LEVELS:
        raise InvalidInputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    counts = unit_counts(responses)
    m = np.asarray(counts.sum(axis=1)).ravel()
    pairable = m >= 2
    if not pairable.any():
        raise InvalidInputError("Krippendorff's alpha needs at least one task with two or more answers")
    c = counts[pairable]
    inv = 1.0 / (m[pairable] - 1.0)
    weighted = c.multiply(inv[:, None]).tocsr()
    o = np.asarray((c.T @ weighted).todense()) - np.diag(np.asarray(weighted.sum(axis=0)).ravel())
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        raise InvalidInputError("Krippendorff's alpha needs at least two pairable values")
    d2 = _delta2(responses.classes, level, n_c)
    expected = float((np.outer(n_c, n_c) * d2).sum())
    if expected == 0.0:
        return 1.0  # a single value used throughout: no disagreement is possible
    return 1.0 - (float(n) - 1.0) * float((o * d2).sum()) / expected
