"""Shared type aliases and protocols (a leaf module: imports nothing from Veracity)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["Executor", "FloatArray", "IntArray", "JSONValue", "RandomState", "Record"]

IntArray: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]
JSONValue: TypeAlias = Any
Record: TypeAlias = dict[str, Any]
RandomState: TypeAlias = int | np.random.Generator | None


class Executor(Protocol):
    """Runs a function over shards and returns the results in order (see ``veracity.compute``)."""

    def map(self, fn: Callable[[Any], Any], shards: Iterable[Any]) -> list[Any]: ...
