"""SDK behaviour that needs no server: ids, and exports to a path that fail midway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from veracity.client import AsyncClient, Client
from veracity.client import _calls as calls
from veracity.errors import InvalidInputError


@pytest.mark.parametrize("good", [7, np.int64(7), 7.0, np.float32(7)])
def test_whole_number_ids_are_sent_as_integers(good: object) -> None:
    assert calls.get_project(good).path.endswith("/projects/7")  # type: ignore[arg-type]
    assert calls.assign_items(1, "ann", [good, 8]).json == {"user": "ann", "item_ids": [7, 8]}  # type: ignore[list-item]


@pytest.mark.parametrize("bad", [3.7, True, "3", None, float("nan")])
def test_other_ids_are_refused_not_truncated(bad: object) -> None:
    with pytest.raises(InvalidInputError, match=r"project_id: expected an integer id"):
        calls.get_project(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"item_ids\[1\]: expected an integer id"):
        calls.assign_items(1, "ann", [2, bad])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match=r"task_id: expected an integer id"):
        calls.skip_task(bad)  # type: ignore[arg-type]


class _Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An export body that breaks off after its first chunk."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"id": 1}\n'
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"id": 1}\n'
        raise httpx.ReadError("connection reset")


def _cut(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=_Cut())


def test_an_export_cut_midway_leaves_nothing_at_the_path(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with (
        Client("http://veracity.test", "vr_x", transport=httpx.MockTransport(_cut), retries=0) as client,
        pytest.raises(httpx.ReadError),
    ):
        client.export(1, path=target)
    assert list(tmp_path.iterdir()) == []

    async def run() -> None:
        async with AsyncClient("http://veracity.test", "vr_x", transport=httpx.MockTransport(_cut), retries=0) as ac:
            with pytest.raises(httpx.ReadError):
                await ac.export(1, path=target)

    asyncio.run(run())
    assert list(tmp_path.iterdir()) == []
    target.write_text("kept\n")  # an older export at the path stays as it was
    with (
        Client("http://veracity.test", "vr_x", transport=httpx.MockTransport(_cut), retries=0) as client,
        pytest.raises(httpx.ReadError),
    ):
        client.export(1, path=target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"] and target.read_text() == "kept\n"
