"""The REST surface through the SDK (``veracity.client``) against a real ``veracity serve``.

One server per backend (SQLite, PostgreSQL) serves the whole module; every test makes its own
users and projects, so tests stay independent. Outcomes are checked through the API and, where
the API must not tell (how many rows a retry stored), in the database itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

import veracity.client._async as async_module
import veracity.client._sync as sync_module
from _server import LiveServer, free_port, scoped_database, start_server
from veracity.client import ApiError, AsyncClient, Client
from veracity.client._calls import Call
from veracity.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaValidationError,
)
from veracity.services.users import create_user
from veracity.storage import Database
from veracity.storage.models import Annotation, Project

pytestmark = pytest.mark.db

PETS = {"kind": "classification", "labels": ["cat", "dog"], "input": "text"}
NOTES = {"kind": "text"}
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@dataclass
class Env:
    """The module's server, a handle on its database, and helpers to make users and clients."""

    server: LiveServer
    db: Database
    admin: Client
    admin_token: str
    clients: list[Client] = field(default_factory=list)

    def client(self, token: str, base_url: str | None = None, **kwargs: Any) -> Client:
        c = Client(base_url or self.server.base_url, token, timeout=30, **kwargs)
        self.clients.append(c)
        return c

    def user(self, role: str = "annotator", prefix: str = "user") -> tuple[str, Client]:
        name = unique(prefix)
        _, token = create_user(self.db, name, role)
        return name, self.client(token)

    def token(self, role: str = "annotator") -> tuple[str, str]:
        name = unique("user")
        _, token = create_user(self.db, name, role)
        return name, token

    def project(self, schema: dict[str, Any] = PETS, **kwargs: Any) -> int:
        return int(self.admin.create_project(unique("project"), schema, **kwargs)["id"])

    def members(self, project_id: int, n: int, role: str = "annotator") -> list[tuple[str, Client]]:
        out = []
        for _ in range(n):
            name, client = self.user(role)
            self.admin.add_member(project_id, name, role)
            out.append((name, client))
        return out

    def count_annotations(self, **where: Any) -> int:
        with self.db.transaction(write=False) as s:
            q = select(func.count()).select_from(Annotation)
            for key, value in where.items():
                q = q.where(getattr(Annotation, key) == value)
            return int(s.execute(q).scalar_one())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp(f"sdk-{request.param}")
    with scoped_database(request, request.param, folder) as url:
        db = Database(url)
        server = start_server(url, folder)
        try:
            _, token = create_user(db, "admin", "admin")
            result = Env(server, db, Client(server.base_url, token, timeout=30), token)
            yield result
            for c in [result.admin, *result.clients]:
                c.close()
        finally:
            server.stop()
            db.dispose()


def label_all(client: Client, project_id: int, answer: Any) -> list[dict[str, Any]]:
    """Label every task the queue gives ``client``; ``answer(task)`` picks the value. Returns the tasks."""
    served = []
    while (task := client.next_task(project_id)) is not None:
        served.append(dict(task))
        client.submit_annotation(task["task_id"], answer(task))
    return served


def walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from walk_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_keys(v)


# --------------------------------------------------------------------------- the main flow
def test_projects_items_labels_consensus_export(env: Env, tmp_path: Path) -> None:
    assert env.admin.health()["ok"] is True
    pid = env.project(overlap=2)
    project = env.admin.get_project(pid)
    assert project["schema"]["labels"] == ["cat", "dog"] and project["overlap"] == 2
    (a1, c1), (a2, c2) = env.members(pid, 2)
    rev, _ = env.user("reviewer")
    assert env.admin.add_member(pid, rev, "reviewer")["role"] == "reviewer"
    assert {m["user"]: m["role"] for m in env.admin.list_members(pid)} == {
        "admin": "manager", a1: "annotator", a2: "annotator", rev: "reviewer"}

    items = [{"id": f"i{n}", "text": text} for n, text in enumerate(["meow", "woof", "purr", "bark", "hiss"])]
    assert env.admin.import_items(pid, items)["imported"] == 5
    again = env.admin.import_items(pid, items)
    assert (again["imported"], again["duplicates"]) == (0, 5)
    assert env.admin.import_ndjson(pid, b'{"id": "i5", "text": "growl"}\n\n')["imported"] == 1
    path = tmp_path / "more.ndjson"
    path.write_text('{"id": "i6", "text": "yowl"}\n')
    assert env.admin.import_ndjson(pid, path)["imported"] == 1

    truth = {"meow": "cat", "woof": "dog", "purr": "cat", "bark": "dog", "hiss": "cat", "growl": "dog", "yowl": "cat"}
    served1 = label_all(c1, pid, lambda t: truth[t["item"]["data"]["text"]])
    served2 = label_all(c2, pid, lambda t: truth[t["item"]["data"]["text"]])
    for served in (served1, served2):
        texts = [t["item"]["data"]["text"] for t in served]
        assert sorted(texts) == sorted(truth)  # every item once, none twice
    assert all(t["schema"]["kind"] == "classification" for t in served1)

    rows = list(env.admin.iter_consensus(pid, page_size=2))
    assert {r["external_id"]: r["label"] for r in rows} == {f"i{n}": truth[t["text"]] for n, t in
                                                           enumerate([*items, {"text": "growl"}, {"text": "yowl"}])}
    assert all(r["n_labels"] == 2 and r["confidence"] == 1.0 for r in rows)
    first = env.admin.list_consensus(pid, limit=3)
    assert len(first) == 3 and first.next_cursor is not None
    rest = env.admin.list_consensus(pid, cursor=first.next_cursor, limit=100)
    assert [r["task_id"] for r in [*first, *rest]] == [r["task_id"] for r in rows] and rest.next_cursor is None
    assert sorted(r["external_id"] for r in env.admin.list_consensus(pid, label="dog")) == ["i1", "i3", "i5"]

    assert sorted(r["external_id"] for r in env.admin.iter_items(pid, label="cat", page_size=2)) == [
        "i0", "i2", "i4", "i6"]
    assert [r["data"]["text"] for r in env.admin.list_items(pid, text="WOO")] == ["woof"]
    assert len(list(env.admin.iter_items(pid, annotator=a1, page_size=3))) == 7
    assert {r["status"] for r in env.admin.iter_items(pid)} == {"complete"}
    assert list(env.admin.iter_items(pid, status="open")) == []

    summary = {p["id"]: p for p in c1.list_projects()}
    assert summary[pid]["n_tasks"] == 7 and summary[pid]["n_annotations"] == 14

    records = [json.loads(line) for line in env.admin.export(pid).splitlines()]
    assert [r["external_id"] for r in records] == [f"i{n}" for n in range(7)]
    assert all(sorted(a["annotator"] for a in r["annotations"]) == sorted([a1, a2]) for r in records)
    out = env.admin.export(pid, "csv", path=tmp_path / "export.csv")
    with out.open(newline="") as fh:
        assert [row["label"] for row in csv.DictReader(fh)] == [r["label"] for r in records]

    refit = env.admin.refit(pid, method="ds")
    assert refit["method"] == "ds" and refit["n_answers"] == 14 and refit["n_tasks"] == 7


def test_review_predictions_and_label_issues(env: Env) -> None:
    pid = env.project(overlap=2)
    (_a1, c1), (_a2, c2) = env.members(pid, 2)
    rev, crev = env.user("reviewer")
    env.admin.add_member(pid, rev, "reviewer")
    texts = ["meow", "woof", "purr", "bark", "hiss", "growl", "mew", "yip"]
    truth = dict(zip(texts, ["cat", "dog"] * 4, strict=True))
    env.admin.import_items(pid, [{"id": t, "text": t} for t in texts])
    label_all(c1, pid, lambda t: truth[t["item"]["data"]["text"]])
    # a2 disagrees on "meow": the only task with split votes
    label_all(c2, pid, lambda t: "dog" if t["item"]["data"]["text"] == "meow" else truth[t["item"]["data"]["text"]])

    queue = crev.review_queue(pid)
    assert [q["item"]["external_id"] for q in queue] == ["meow"]
    assert sorted(a["value"] for a in queue[0]["annotations"]) == ["cat", "dog"]
    with pytest.raises(PermissionDeniedError):
        c1.review_task(queue[0]["task_id"], "accept")  # no self-review, and annotators may not review
    verdict = crev.review_task(queue[0]["task_id"], "correct", value="cat", comment="it meows")
    assert verdict["status"] == "reviewed" and verdict["value"] == "cat"
    assert crev.review_queue(pid) == []
    meow = next(r for r in env.admin.iter_consensus(pid) if r["external_id"] == "meow")
    assert (meow["label"], meow["confidence"], meow["method"]) == ("cat", 1.0, "review")

    # the model agrees everywhere except on "bark", which it is sure is a cat
    preds = [{"external_id": t, "probabilities": [0.99, 0.01] if t == "bark" or truth[t] == "cat" else [0.05, 0.95]}
             for t in texts]
    assert env.admin.import_predictions(pid, preds, model="m", model_version="1")["imported"] == 8
    flagged = env.admin.flag_label_issues(pid, model="m")
    assert flagged["checked"] == 7  # the reviewed task is settled
    issues = crev.list_label_issues(pid)
    assert flagged["flagged"] == len(issues) >= 1
    bark = next(i for i in issues if i["item"]["external_id"] == "bark")
    assert (bark["given"], bark["suggested"]) == ("dog", "cat")
    assert crev.resolve_label_issue(bark["task_id"], "keep")["verdict"] == "keep"
    assert all(i["item"]["external_id"] != "bark" for i in crev.list_label_issues(pid))


def test_decisions_through_the_sdk(env: Env) -> None:
    """Policy, run, queue and verdicts through the client, as the decision screen does them."""
    pid = env.project(overlap=1)
    [(_ann, cann)] = env.members(pid, 1)
    analyst, cana = env.user("reviewer")
    env.admin.add_member(pid, analyst, "reviewer")
    texts = [f"text {n}" for n in range(60)]
    env.admin.import_items(pid, [{"id": t, "text": t} for t in texts])
    truth = {t: ["cat", "dog"][n % 2] for n, t in enumerate(texts)}
    # sure and right on most items, unsure on every fifth
    preds = [{"external_id": t, "probabilities": [0.55, 0.45] if n % 5 == 0 else
              ([0.95, 0.05] if truth[t] == "cat" else [0.05, 0.95])} for n, t in enumerate(texts)]
    env.admin.import_predictions(pid, preds, model="net", model_version="2")
    for _ in range(30):  # trusted labels for calibration
        task = cann.next_task(pid)
        assert task is not None
        cann.submit_annotation(task["task_id"], truth[task["item"]["external_id"]])
    with pytest.raises(InvalidInputError):
        env.admin.set_decision_policy(pid, coverage=1.5)
    policy = env.admin.set_decision_policy(pid, coverage=0.9, threshold=0.8, calibration="none")
    assert policy == {"coverage": 0.9, "score": "lac", "threshold": 0.8, "class_conditional": False,
                      "calibration": "none"}
    run = env.admin.run_decisions(pid, model="net")
    assert run["decided"] == 30 and run["accepted"] + run["review"] == 30 and run["review"] >= 5
    queue = cana.decision_queue(pid)
    assert len(queue) == run["review"] and all(q["status"] == "pending" for q in queue)
    first = queue[0]
    assert set(first["probabilities"]) == {"cat", "dog"} and first["model_version"] == "2" and first["evidence"]
    with pytest.raises(InvalidInputError):
        cana.record_decision(first["id"], "override", label="dog")  # an override needs a reason
    done = cana.record_decision(first["id"], "override", label="dog", reason="ears")
    assert (done["status"], done["label"], done["analyst"]) == ("decided", "dog", analyst)
    assert cana.record_decision(queue[1]["id"], "escalate", reason="unsure")["status"] == "escalated"
    assert [q["id"] for q in cana.decision_queue(pid, status="escalated")] == [queue[1]["id"]]
    assert len(cana.decision_queue(pid)) == run["review"] - 2
    assert env.admin.run_decisions(pid, model="net")["decided"] == 0  # a retried run decides nothing twice


def test_assign_skip_undo(env: Env) -> None:
    pid = env.project(overlap=1)
    (_a1, c1), (a2, c2) = env.members(pid, 2)
    env.admin.import_items(pid, [{"id": t, "text": t} for t in ("meow", "woof", "purr")])
    purr = next(r for r in env.admin.iter_items(pid) if r["external_id"] == "purr")
    assert env.admin.assign_items(pid, a2, [purr["item_id"]]) == {"assigned": 1, "user": a2}
    task = c2.next_task(pid)
    assert task is not None and task["item"]["external_id"] == "purr"  # assigned items come first
    assert c2.next_task(pid) == task  # asking again returns the lease held, not a new one

    c2.skip_task(task["task_id"])
    seen = [t["item"]["external_id"] for t in label_all(c2, pid, lambda t: "cat")]
    assert "purr" not in seen and sorted(seen) == ["meow", "woof"]

    undone = c2.undo(pid)
    assert undone["item"]["external_id"] == seen[-1]
    assert env.count_annotations(task_id=undone["task_id"], status="active") == 0
    c2.submit_annotation(undone["task_id"], "dog")
    row = next(r for r in env.admin.iter_consensus(pid) if r["external_id"] == seen[-1])
    assert row["label"] == "dog"
    with pytest.raises(ConflictError):
        c2.submit_annotation(undone["task_id"], "cat")  # the lease was used
    # purr went back to the queue when a2 skipped it; a1 gets it
    assert [t["item"]["external_id"] for t in label_all(c1, pid, lambda t: "cat")] == ["purr"]


# --------------------------------------------------------------------------- errors
def test_errors_map_to_classes_and_name_the_field(env: Env) -> None:
    with pytest.raises(SchemaValidationError) as exc:
        env.admin.create_project(unique("p"), {"kind": "nope"})
    assert exc.value.code == "schema_validation" and exc.value.message.startswith("schema.kind:")

    with pytest.raises(InvalidInputError) as exc:
        env.admin.create_project(unique("p"), PETS, overlap=0)
    assert exc.value.code == "invalid_input" and [d["field"] for d in exc.value.details] == ["overlap"]

    pid = env.project()
    with pytest.raises(ConflictError):
        env.admin.create_project(env.admin.get_project(pid)["name"], PETS)

    with pytest.raises(InvalidInputError) as exc:
        env.admin.import_items(pid, [{"text": "fine"}, {"text": "meow", "label": "horse"}, {"id": "no-data"}])
    assert [(d["index"], d["field"]) for d in exc.value.details] == [(1, "label"), (2, None)]
    assert "index 1.label: unknown label 'horse'" in exc.value.message
    with pytest.raises(InvalidInputError) as exc:
        env.admin.import_ndjson(pid, b'{"text": "a"}\n{"text": \n')
    assert exc.value.details[0]["line"] == 2
    assert env.admin.list_items(pid).rows == []  # all-or-nothing: nothing imported

    (_, c1), = env.members(pid, 1)
    env.admin.import_items(pid, [{"text": "meow"}])
    task = c1.next_task(pid)
    assert task is not None
    with pytest.raises(SchemaValidationError) as exc:
        c1.submit_annotation(task["task_id"], "horse")
    assert exc.value.message.startswith("value: unknown label 'horse'")
    with pytest.raises(InvalidInputError) as exc:
        c1.submit_annotation(task["task_id"], "cat", duration_ms=-1)
    assert [d["field"] for d in exc.value.details] == ["duration_ms"]

    with pytest.raises(NotFoundError):
        env.admin.get_project(10**9)
    with pytest.raises(NotFoundError):
        c1.submit_annotation(10**9, "cat")
    with pytest.raises(PermissionDeniedError) as denied:
        c1.create_project(unique("p"), PETS)
    assert denied.value.code == "permission_denied"
    with pytest.raises(AuthenticationError) as unauth:
        env.client("vr_not-a-token").list_projects()
    assert unauth.value.code == "unauthenticated" and isinstance(unauth.value, PermissionDeniedError)


# --------------------------------------------------------------------------- gold and blindness
ANNOTATOR_FORBIDDEN = ("list_consensus", "list_items", "export", "review_queue", "list_label_issues", "list_members")


def assert_annotator_locked_out(client: Client, project_id: int) -> None:
    for method in ANNOTATOR_FORBIDDEN:
        with pytest.raises(PermissionDeniedError):
            getattr(client, method)(project_id)


def test_gold_answers_never_reach_annotators(env: Env) -> None:
    pid = env.project(NOTES, overlap=1, gold_rate=1.0)  # gold first while any is left
    (_ann, client), = env.members(pid, 1)
    gold = [{"id": f"g{n}", "text": f"gold question {n}", "gold": f"SECRET-GOLD-{n}"} for n in range(3)]
    plain = [{"id": f"p{n}", "text": f"plain question {n}"} for n in range(3)]
    assert env.admin.import_items(pid, gold + plain)["imported"] == 6

    seen: list[Any] = [client.get_project(pid), client.list_projects()]
    served = []
    while (task := client.next_task(pid)) is not None:
        seen.append(task)
        served.append(task["item"]["external_id"])
        seen.append(client.submit_annotation(task["task_id"], f"my answer to {task['item']['data']['text']}"))
    seen.append(client.undo(pid))
    assert sorted(served) == ["g0", "g1", "g2", "p0", "p1", "p2"]  # gold tasks were served, hidden
    text = json.dumps(seen)
    assert "SECRET-GOLD" not in text
    assert not [k for k in walk_keys(seen) if "gold" in k.lower() and k != "gold_rate"]  # nor is_gold, gold_value
    assert_annotator_locked_out(client, pid)
    # the manager sees which were gold (so the check above was not vacuous)
    records = [json.loads(line) for line in env.admin.export(pid).splitlines()]
    assert sorted(r["external_id"] for r in records if r["gold"]) == ["g0", "g1", "g2"]


def test_blind_labelling(env: Env) -> None:
    pid = env.project(NOTES, overlap=2)
    (_alice, ca), (_bob, cb) = env.members(pid, 2)
    env.admin.import_items(pid, [{"id": f"t{n}", "text": f"note {n}"} for n in range(3)])
    label_all(ca, pid, lambda t: f"ALICE-PRIVATE-{t['item']['external_id']}")
    seen: list[Any] = [cb.list_projects(), cb.get_project(pid)]
    while (task := cb.next_task(pid)) is not None:
        seen.append(task)
        seen.append(cb.submit_annotation(task["task_id"], "bob's own answer"))
    seen.append(cb.undo(pid))
    assert len([s for s in seen if isinstance(s, dict) and "lease_expires_at" in s]) == 4  # 3 tasks + undo
    assert "ALICE-PRIVATE" not in json.dumps(seen)
    assert_annotator_locked_out(ca, pid)
    assert_annotator_locked_out(cb, pid)
    # the labels are there, for those allowed to see them
    records = [json.loads(line) for line in env.admin.export(pid).splitlines()]
    assert all(any(a["value"].startswith("ALICE-PRIVATE") for a in r["annotations"]) for r in records)


# --------------------------------------------------------------------------- concurrency
def test_overlap_holds_under_concurrent_requests(env: Env) -> None:
    pid = env.project(overlap=2)
    annotators = env.members(pid, 8)
    env.admin.import_items(pid, [{"id": f"x{n}", "text": f"item {n}"} for n in range(10)])
    start = threading.Barrier(len(annotators))

    def work(client: Client) -> list[int]:
        got = []
        start.wait()
        while (task := client.next_task(pid)) is not None:
            got.append(task["task_id"])
            client.submit_annotation(task["task_id"], "cat")
        return got

    with ThreadPoolExecutor(len(annotators)) as pool:
        results = list(pool.map(work, [c for _, c in annotators]))
    for got in results:
        assert len(got) == len(set(got)), "an annotator was served the same task twice"
    assert sum(len(got) for got in results) == 20
    records = [json.loads(line) for line in env.admin.export(pid).splitlines()]
    per_item = [[a["annotator"] for a in r["annotations"]] for r in records]
    assert all(len(names) == len(set(names)) == 2 for names in per_item)


def test_same_key_twice_stores_one_annotation(env: Env) -> None:
    pid = env.project(overlap=1)
    (_, client), = env.members(pid, 1)
    env.admin.import_items(pid, [{"text": "meow"}, {"text": "woof"}])
    task = client.next_task(pid)
    assert task is not None
    first = client.submit_annotation(task["task_id"], "cat", idempotency_key="k-1")
    again = client.submit_annotation(task["task_id"], "cat", idempotency_key="k-1")
    assert (first["replayed"], again["replayed"]) == (False, True) and first["id"] == again["id"]
    assert env.count_annotations(task_id=task["task_id"]) == 1
    with pytest.raises(ConflictError):  # a key names one submission, not one per task
        other = client.next_task(pid)
        assert other is not None
        client.submit_annotation(other["task_id"], "dog", idempotency_key="k-1")


def test_same_key_concurrently_stores_one_annotation(env: Env) -> None:
    pid = env.project(overlap=1)
    name, token = env.token()
    env.admin.add_member(pid, name, "annotator")
    env.admin.import_items(pid, [{"text": "meow"}])
    clients = [env.client(token) for _ in range(8)]
    task = clients[0].next_task(pid)
    assert task is not None
    start = threading.Barrier(len(clients))

    def submit(client: Client) -> dict[str, Any]:
        start.wait()
        return dict(client.submit_annotation(task["task_id"], "cat", idempotency_key="same-key"))

    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(submit, clients))  # none fails: the losers of the race replay the winner
    assert env.count_annotations(task_id=task["task_id"]) == 1
    assert len({r["id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False] + [True] * 7


class LoseResponses(httpx.BaseTransport):
    """Sends each request to the server, then throws the first ``n`` answers away and says 502
    instead, as a proxy would when the upstream connection drops after the server did the work."""

    def __init__(self, n: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = n
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        response = self.inner.handle_request(request)
        response.read()
        if self.lose > 0:
            self.lose -= 1
            response.close()
            return httpx.Response(502, text="bad gateway")
        return response

    def close(self) -> None:
        self.inner.close()


class Counting(httpx.BaseTransport):
    """The real transport, counting the requests sent (to a server, or to a port where none listens)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_client_retries_are_safe(env: Env) -> None:
    pid = env.project(overlap=1)
    name, token = env.token()
    env.admin.add_member(pid, name, "annotator")
    env.admin.import_items(pid, [{"text": "meow"}])

    lossy = LoseResponses(2)
    client = env.client(token, transport=lossy, backoff=0.01)
    task = client.next_task(pid)  # retried twice: the lease already held is handed back
    assert task is not None and lossy.sent == 3
    lossy.lose = 2
    result = client.submit_annotation(task["task_id"], "cat")  # auto key: retried, replayed
    assert result["replayed"] is True and lossy.sent == 6
    assert env.count_annotations(task_id=task["task_id"]) == 1

    lossy.lose = 2
    assert env.admin.import_items(pid, [{"text": "woof"}])["imported"] == 1
    again = env.client(env.admin_token, transport=lossy, backoff=0.01).import_items(pid, [{"text": "purr"}])
    assert (again["imported"], lossy.sent) == (0, 9)  # the lost first try imported it; retries saw a duplicate
    assert sorted(r["data"]["text"] for r in env.admin.iter_items(pid)) == ["meow", "purr", "woof"]

    lossy.lose = 1
    admin2 = env.client(env.admin_token, transport=lossy, backoff=0.01)
    title = unique("never-twice")
    with pytest.raises(ApiError) as exc:
        admin2.create_project(title, PETS)  # not idempotent: no retry after the request was sent
    assert exc.value.status_code == 502 and lossy.sent == 10
    with env.db.transaction(write=False) as s:
        assert s.execute(select(func.count()).where(Project.name == title)).scalar_one() == 1

    refused = Counting()  # nothing listens on the port: every connection is refused
    dead = Client(f"http://127.0.0.1:{free_port()}", token, transport=refused, retries=2, backoff=0.01)
    with pytest.raises(httpx.ConnectError):
        dead.create_project(unique("p"), PETS)  # never sent: retried even though not idempotent
    assert refused.sent == 3
    dead.close()


def test_numpy_and_pandas_values_are_sent_as_json(env: Env) -> None:
    pid = int(env.admin.create_project(unique("np"), PETS, overlap=np.int64(1), gold_rate=np.float32(0))["id"])
    frame = pd.DataFrame({"id": ["f1", "f2"], "text": ["meow", "woof"], "n": np.array([1, 2], dtype=np.int64)})
    assert env.admin.import_items(pid, frame)["imported"] == 2  # a DataFrame: its rows are the items
    items = [{"id": "n1", "text": "purr", "n": np.int64(3), "score": np.float32(0.5), "ok": np.bool_(True),
              "vec": np.arange(2)}]
    assert env.admin.import_items(pid, items)["imported"] == 1
    rows = {r["external_id"]: r for r in env.admin.iter_items(pid, page_size=np.int64(2))}
    assert rows["f2"]["data"] == {"text": "woof", "n": 2}
    assert rows["n1"]["data"] == {"text": "purr", "n": 3, "score": 0.5, "ok": True, "vec": [0, 1]}

    ids = np.array([rows[k]["item_id"] for k in ("f1", "f2", "n1")], dtype=np.int64)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    preds = [{"item_id": i, "probabilities": p} for i, p in zip(ids, probs, strict=True)]
    assert env.admin.import_predictions(pid, preds, model="m")["imported"] == 3
    table = pd.DataFrame({"item_id": ids, "value": ["cat", "dog", "cat"]})
    assert env.admin.import_predictions(pid, table, model="m2")["imported"] == 3
    name, _ = env.token()
    env.admin.add_member(pid, name, "annotator", quota=np.int64(5))
    assert env.admin.assign_items(pid, name, ids[:2])["assigned"] == 2

    counting = Counting()
    client = env.client(env.admin_token, transport=counting)
    with pytest.raises(InvalidInputError, match=r"^predictions\[1\]\.probabilities\[0\]: expected a finite number"):
        client.import_predictions(pid, [preds[0], {"item_id": ids[1], "probabilities": np.array([np.nan, 1.0])}],
                                  model="m")
    with pytest.raises(InvalidInputError, match=r"^items\[0\]\.score: expected a finite number"):
        client.import_items(pid, pd.DataFrame({"text": ["x"], "score": [np.inf]}))
    with pytest.raises(TypeError, match=r"^items\[0\]\.obj: cannot send a object as JSON"):
        client.import_items(pid, [{"text": "y", "obj": object()}])
    with pytest.raises(TypeError, match=r"^items\[0\]: expected an object"):
        client.import_items(pid, ["just text"])  # type: ignore[list-item]
    assert counting.sent == 0  # refused before sending, naming the field


def test_base_url_may_be_the_api_root(env: Env) -> None:
    for suffix in ("/", "/api/v1", "/api/v1/"):
        client = env.client(env.admin_token, base_url=env.server.base_url + suffix)
        assert client.health()["ok"] is True
        assert isinstance(client.list_projects(), list)


class ProxyError(httpx.BaseTransport):
    """A reverse proxy in front of the server that answers its own HTML error page."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, n: int = 10**9) -> None:
        self.inner = httpx.HTTPTransport()
        self.status, self.headers, self.left, self.sent = status, headers or {}, n, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.left > 0:
            self.left -= 1
            return httpx.Response(self.status, headers=self.headers, html=f"<html><h1>{self.status}</h1>nginx</html>")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_errors_name_the_request(env: Env) -> None:
    with pytest.raises(NotFoundError) as missing:
        env.admin.get_project(10**9)
    err = missing.value
    assert (err.message, err.status_code, err.method, err.path) == (  # type: ignore[attr-defined]
        f"project {10**9} not found", 404, "GET", f"/api/v1/projects/{10**9}")

    proxy = env.client(env.admin_token, transport=ProxyError(502), retries=0)
    with pytest.raises(ApiError) as bad:
        proxy.list_projects()
    assert bad.value.status_code == 502
    assert str(bad.value).startswith("GET /api/v1/projects -> HTTP 502 Bad Gateway: <html>")

    with pytest.raises(NotFoundError) as route:
        env.admin._run(Call("GET", "/api/v1/no-such-route", lambda r: r))
    assert str(route.value) == "GET /api/v1/no-such-route -> HTTP 404: Not Found"
    assert env.admin_token not in repr(env.admin._http.headers)


def test_rate_limits_are_waited_out(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []
    monkeypatch.setattr(sync_module.time, "sleep", waited.append)
    pid = env.project(overlap=1)
    name, token = env.token()
    env.admin.add_member(pid, name, "annotator")
    env.admin.import_items(pid, [{"text": "meow"}])

    limited = ProxyError(429, {"Retry-After": "2"}, n=1)
    client = env.client(token, transport=limited)
    task = client.next_task(pid)
    assert task is not None and limited.sent == 2 and waited[0] >= 2
    limited.left = 1
    assert client.submit_annotation(task["task_id"], "cat")["replayed"] is False
    assert env.count_annotations(task_id=task["task_id"]) == 1

    limited.left = 1
    with pytest.raises(ApiError) as exc:  # not safe to repeat: the 429 is the answer
        env.client(env.admin_token, transport=limited).create_project(unique("p"), PETS)
    assert exc.value.status_code == 429


# --------------------------------------------------------------------------- async
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class AsyncRateLimited(httpx.AsyncBaseTransport):
    """The real server behind a rate limiter that turns the first ``n`` requests away with a 429."""

    def __init__(self, n: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.left, self.sent = n, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.left > 0:
            self.left -= 1
            return httpx.Response(429, headers={"Retry-After": "3"}, html="<html>slow down</html>")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.anyio
async def test_async_client_same_inputs_errors_and_retries(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(async_module.asyncio, "sleep", no_wait)
    limited = AsyncRateLimited(1)
    async with AsyncClient(env.server.base_url + "/api/v1/", env.admin_token, transport=limited) as vc:
        assert isinstance(await vc.list_projects(), list)
        assert limited.sent == 2 and waited and waited[0] >= 3  # rate limited, then retried
        pid = (await vc.create_project(unique("anp"), PETS, overlap=np.int64(1)))["id"]
        frame = pd.DataFrame({"text": ["meow", "woof"], "n": np.array([1, 2], dtype=np.int64)})
        assert (await vc.import_items(pid, frame))["imported"] == 2
        ids = np.array([r["item_id"] async for r in vc.iter_items(pid)], dtype=np.int64)
        preds = [{"item_id": i, "probabilities": np.array([0.7, 0.3], dtype=np.float32)} for i in ids]
        assert (await vc.import_predictions(pid, preds, model="m"))["imported"] == 2
        with pytest.raises(InvalidInputError, match=r"^predictions\[0\]\.probabilities\[1\]: expected a finite"):
            await vc.import_predictions(pid, [{"item_id": ids[0], "probabilities": [0.5, np.float32("nan")]}],
                                        model="m")
        with pytest.raises(NotFoundError) as missing:
            await vc.get_project(10**9)
        assert (missing.value.status_code, missing.value.method) == (404, "GET")  # type: ignore[attr-defined]

    def bad_gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, html="<html>bad gateway</html>")

    async with AsyncClient(env.server.base_url, env.admin_token, transport=httpx.MockTransport(bad_gateway),
                           retries=0) as proxy:
        with pytest.raises(ApiError) as bad:
            await proxy.list_projects()
        assert str(bad.value) == "GET /api/v1/projects -> HTTP 502 Bad Gateway: <html>bad gateway</html>"


@pytest.mark.anyio
async def test_async_client_same_surface(env: Env, tmp_path: Path) -> None:
    _name, token = env.token("manager")
    async with AsyncClient(env.server.base_url, token) as vc:
        assert (await vc.health())["ok"] is True
        project = await vc.create_project(unique("async"), PETS, overlap=1)
        pid = project["id"]
        assert (await vc.import_items(pid, [{"id": f"a{n}", "text": f"t{n}"} for n in range(5)]))["imported"] == 5
        n = 0
        while (task := await vc.next_task(pid)) is not None:
            result = await vc.submit_annotation(task["task_id"], "dog" if n % 2 else "cat")
            assert result["replayed"] is False
            n += 1
        assert n == 5
        rows = [r async for r in vc.iter_consensus(pid, page_size=2)]
        assert [r["label"] for r in rows] == ["cat", "dog", "cat", "dog", "cat"]
        dogs = [r["external_id"] async for r in vc.iter_items(pid, label="dog", page_size=1)]
        assert dogs == ["a1", "a3"]
        out = await vc.export(pid, path=tmp_path / "a.jsonl")
        assert [json.loads(line)["label"] for line in out.read_text().splitlines()] == [r["label"] for r in rows]
        with pytest.raises(NotFoundError):
            await vc.get_project(10**9)
