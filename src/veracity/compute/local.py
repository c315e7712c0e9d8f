"""The in-process executor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs ``fn`` over the shards one after another in this process.

    Parameters
    ----------
    n_shards : int, default 1
        How many task shards the engines should cut their work into (useful to check that a
        sharded run equals the unsharded one, or to bound the memory of one step).
    """

    def __init__(self, n_shards: int = 1) -> None:
        self.n_shards = n_shards

    def map(self, fn: Callable[[Any], Any], shards: Iterable[Any]) -> list[Any]:
        return [fn(s) for s in shards]

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
