"""The bounded 1-D minimiser of truth inference, cross-checked against scipy.optimize."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from veracity.quality._optimize import golden_minimize

bounds = st.tuples(st.floats(-50, 50), st.floats(0.1, 60)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=200, deadline=None)
@given(bounds, st.floats(0, 1), st.floats(0.1, 10))
def test_finds_the_minimum_of_a_unimodal_function(b: tuple[float, float], where: float, width: float) -> None:
    lo, hi = b
    centre = lo + where * (hi - lo)

    def f(x: float) -> float:
        return math.log1p(((x - centre) / width) ** 2)

    x = golden_minimize(f, lo, hi, xatol=1e-6)
    assert lo <= x <= hi
    assert abs(x - centre) <= 1e-5 * max(1.0, hi - lo)
    ref = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8})
    assert f(x) <= f(float(ref.x)) + 1e-9


@given(bounds, st.booleans())
def test_a_monotone_function_gives_the_end_of_the_interval(b: tuple[float, float], rising: bool) -> None:
    lo, hi = b
    x = golden_minimize((lambda v: v) if rising else (lambda v: -v), lo, hi, xatol=0.25)
    assert x == (lo if rising else hi)


def test_empty_interval_is_an_error() -> None:
    with pytest.raises(ValueError, match="lo < hi"):
        golden_minimize(abs, 1.0, 1.0)
