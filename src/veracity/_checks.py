"""Argument checks shared by the engines (``quality``, ``align``, ``decide``), which may not import
one another: a seed turned into a Generator, and whole-number arguments."""

from __future__ import annotations

from typing import Any

import numpy as np

from veracity.errors import InvalidInputError
from veracity.types import RandomState

__all__ = ["check_int", "check_random_state"]


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from ``None``, an int seed or a Generator (never global)."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise InvalidInputError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None, *, hint: str = "") -> int:
    """``value`` as an int in ``minimum .. maximum``; a whole-number float is accepted, a bool is not.

    ``hint`` is added to the message after the bound (e.g. what 0 means).
    """
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    ok = ok or (isinstance(value, (float, np.floating)) and float(value).is_integer())
    if not ok or int(value) < minimum or (maximum is not None and int(value) > maximum):
        bound = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum}"
        raise InvalidInputError(f"{name} must be {bound}{hint} (a whole number), got {value!r}")
    return int(value)
