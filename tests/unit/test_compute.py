"""Executors: the same EM run over task shards, locally or on Dask, gives the local result."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.compute import LocalExecutor, get_executor
from veracity.errors import InvalidInputError
from veracity.quality import Responses, aggregate


def crowd(seed: int = 0) -> Responses:
    rng = np.random.default_rng(seed)
    n_tasks, n_workers, k = 600, 25, 4
    truth = rng.integers(0, k, n_tasks)
    t = np.repeat(np.arange(n_tasks), 4)
    w = rng.integers(0, n_workers, t.size)
    skill = rng.uniform(0.3, 0.95, n_workers)
    lab = np.where(rng.random(t.size) < skill[w], truth[t], rng.integers(0, k, t.size))
    return Responses.from_codes(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=k)


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace", "auto"])
def test_sharded_local_run_equals_single_shard(method: str) -> None:
    r = crowd()
    gold = (np.arange(15), np.zeros(15, dtype=np.int64))
    one = aggregate(r, method=method, gold=gold, random_state=0)
    many = aggregate(r, method=method, gold=gold, random_state=0, executor=LocalExecutor(n_shards=7))
    np.testing.assert_array_equal(one.label_idx, many.label_idx)
    np.testing.assert_allclose(one.probas, many.probas, atol=1e-9)
    np.testing.assert_allclose(one.worker_accuracy, many.worker_accuracy, atol=1e-9)


def test_get_executor_rejects_unknown_kind() -> None:
    with pytest.raises(InvalidInputError, match="'local' or 'dask'"):
        get_executor("ray-on-mars")


def test_dask_run_equals_local_run() -> None:
    pytest.importorskip("dask.distributed")
    r = crowd(1)
    local = aggregate(r, method="ds", random_state=0, executor=LocalExecutor(n_shards=4))
    with get_executor("dask", n_workers=2, n_shards=4, processes=False) as ex:
        remote = aggregate(r, method="ds", random_state=0, executor=ex)
    np.testing.assert_array_equal(local.label_idx, remote.label_idx)
    np.testing.assert_array_equal(local.probas, remote.probas)
