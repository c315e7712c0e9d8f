"""Where heavy engine work runs: in this process by default, or on a Dask cluster.

An *executor* has ``map(fn, shards) -> list`` (see :class:`veracity.types.Executor`) and an
``n_shards`` hint. The quality engines split their work into task shards, map a function over
them and reduce the results, so the same algorithm gives the same result locally and on Dask::

    from veracity.compute import get_executor
    with get_executor("dask", n_workers=2) as ex:
        res = aggregate(answers, method="ds", executor=ex)

Dask is optional (``pip install veracity[dask]``) and imported only when a Dask executor starts.
"""

from __future__ import annotations

from typing import Any

from veracity.compute.local import LocalExecutor
from veracity.errors import InvalidInputError

__all__ = ["LocalExecutor", "get_executor"]


def get_executor(kind: str = "local", **options: Any) -> Any:
    """An executor by name: ``"local"`` or ``"dask"`` (a ``LocalCluster`` or ``address=...``)."""
    if kind == "local":
        return LocalExecutor(**options)
    if kind == "dask":
        from veracity.compute.dask import DaskExecutor  # optional dependency, imported on demand

        return DaskExecutor(**options)
    raise InvalidInputError(f"executor must be 'local' or 'dask', got {kind!r}")
