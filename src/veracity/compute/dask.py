"""Dask executor: the engines' shard map runs as Dask tasks (``LocalCluster`` or a scheduler).

``dask.distributed`` is imported when a :class:`DaskExecutor` is created, never at import time.
Shards are scattered to the workers once and reused by every EM iteration (they are keyed by
object identity for the executor's lifetime), so each iteration ships only the small parameter
arrays and the per-shard statistics.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from veracity.errors import InvalidInputError

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """Run shard maps on Dask.

    Parameters
    ----------
    address : str, optional
        Scheduler address; by default a ``LocalCluster`` is started (and closed with the executor).
    n_workers : int, default 2
        Workers of the local cluster (processes).
    threads_per_worker : int, default 1
    n_shards : int, optional
        Task shards the engines should cut work into; default ``2 * n_workers``.
    processes : bool, default True
        ``LocalCluster(processes=...)``; ``False`` keeps workers in this process (threads).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        n_shards: int | None = None,
        processes: bool = True,
    ) -> None:
        try:
            distributed = importlib.import_module("dask.distributed")
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise InvalidInputError("the Dask executor needs dask[distributed]: pip install 'veracity[dask]'") from exc
        self._cluster = None
        if address is None:
            self._cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=None,
            )
            self.client = distributed.Client(self._cluster)
        else:
            self.client = distributed.Client(address)
        self.n_shards = n_shards if n_shards is not None else 2 * n_workers
        self._scattered: dict[int, tuple[Any, Any]] = {}

    def _future(self, shard: Any) -> Any:
        key = id(shard)
        hit = self._scattered.get(key)
        if hit is None or hit[0] is not shard:
            future = self.client.scatter(shard, hash=False)
            hit = (shard, future)
            self._scattered[key] = hit
        return hit[1]

    def map(self, fn: Callable[[Any], Any], shards: Iterable[Any]) -> list[Any]:
        """``[fn(s) for s in shards]`` computed on the cluster, in order."""
        futures = [self.client.submit(fn, self._future(s), pure=False) for s in shards]
        return list(self.client.gather(futures))

    def close(self) -> None:
        """Release scattered data, the client and (when started here) the local cluster."""
        self._scattered.clear()
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
