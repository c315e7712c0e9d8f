"""A bounded one-dimensional minimiser, so that truth inference does not import scipy.optimize.

``scipy.optimize`` takes about 0.4 s to import (it pulls in linear programming, sparse linear
algebra and f2py), which is most of a ``veracity aggregate`` start-up; the empirical-Bayes prior
strengths of :mod:`veracity.quality.aggregation.dawid_skene` and the posterior temperature of
:mod:`veracity.quality.aggregation._em` only need a one-dimensional search.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["golden_minimize"]

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # 1 / golden ratio


def golden_minimize(f: Callable[[float], float], lo: float, hi: float, xatol: float = 1e-5) -> float:
    """The point of ``[lo, hi]`` where ``f`` is smallest, by golden-section search (Kiefer 1953).

    For a unimodal ``f`` the result is within ``xatol`` of the minimiser; otherwise it is a local
    minimum. The bounds themselves are candidates, so a minimum at an end of the interval is
    found. Deterministic: the same ``f`` and bounds always give the same point.

    References
    ----------
    J. Kiefer. Sequential minimax search for a maximum. Proceedings of the American Mathematical
    Society 4(3):502-506, 1953. doi:10.1090/S0002-9939-1953-0055639-3
    """
    if not hi > lo:
        raise ValueError(f"golden_minimize: need lo < hi, got [{lo}, {hi}]")
    a, b = lo, hi
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    fc, fd = f(c), f(d)
    while b - a > xatol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = f(d)
    best_x, best_f = (c, fc) if fc <= fd else (d, fd)
    for x in (lo, hi):  # a monotone f has its minimum at an end
        fx = f(x)
        if fx < best_f:
            best_x, best_f = x, fx
    return best_x
