"""Leases expire: a server with ``VERACITY_LEASE_SECONDS=1``, driven through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import start_server
from veracity.client import Client, Task
from veracity.errors import ConflictError
from veracity.services.users import create_user
from veracity.storage import Database

PETS = {"kind": "classification", "labels": ["cat", "dog"]}


@pytest.fixture
def clients(db_url: str, tmp_path: Path) -> Iterator[tuple[Client, Client, Client]]:
    """(admin, ann1, ann2) on a server whose leases last one second."""
    db = Database(db_url)
    tokens = [create_user(db, name, role)[1] for name, role in
              (("admin", "admin"), ("ann1", "annotator"), ("ann2", "annotator"))]
    db.dispose()
    server = start_server(db_url, tmp_path, env={"VERACITY_LEASE_SECONDS": "1"})
    made = [Client(server.base_url, t, timeout=30) for t in tokens]
    try:
        yield made[0], made[1], made[2]
    finally:
        for c in made:
            c.close()
        server.stop()


def wait_for_task(client: Client, project_id: int, timeout: float = 20.0) -> Task:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.next_task(project_id)
        if task is not None:
            return task
        time.sleep(0.2)
    raise AssertionError(f"no task came back to the queue within {timeout:.0f}s")


def test_abandoned_lease_returns_to_the_queue(clients: tuple[Client, Client, Client]) -> None:
    admin, ann1, ann2 = clients
    pid = admin.create_project("Leases", PETS, overlap=1)["id"]
    admin.add_member(pid, "ann1", "annotator")
    admin.add_member(pid, "ann2", "annotator")
    admin.import_items(pid, [{"id": "only", "text": "meow"}])

    held = ann1.next_task(pid)
    assert held is not None and held["item"]["external_id"] == "only"
    # ann1 walks away. Once the lease has run out the slot goes back to the queue, to ann2.
    taken = wait_for_task(ann2, pid)
    assert taken["task_id"] == held["task_id"]
    with pytest.raises(ConflictError, match="expired"):
        ann1.submit_annotation(held["task_id"], "cat")
    assert ann1.next_task(pid) is None  # nobody is served the same item twice, expired or not
    rows = admin.list_items(pid).rows  # the expired lease stored nothing
    assert [(r["external_id"], r["n_annotations"], r["label"]) for r in rows] == [("only", 0, None)]
    # (ann2's own one-second lease may run out too on a busy machine, so its label is not checked here.)
