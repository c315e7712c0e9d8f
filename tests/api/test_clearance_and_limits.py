"""The screens and the REST API hold the same line: items above a caller's clearance stay hidden
whatever the way in, ids and counts out of range are 422s rather than server errors, and settings
such as the lease length apply to every call that leases."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from veracity.config import Settings
from veracity.errors import InvalidInputError
from veracity.services import ingest as ingest_service
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.services.audit import list_events
from veracity.services.users import authenticate_token, create_user
from veracity.storage import Database
from veracity.storage.models import Assignment, Item, Review, Task
from veracity.web.app import create_app

pytestmark = pytest.mark.anyio

SCHEMA = {"kind": "classification", "labels": ["public", "covert"]}
TOO_BIG = 2**63


def _hidden_project(api: Any) -> int:
    """Project P: item ``pub-1`` (no marking) and ``SECRET-1`` (sensitivity 5), both labelled by two
    annotators with clearance 9 (``covert`` on the secret one); viewer ``vic`` and reviewer ``rev``
    have clearance 0."""
    boss = api.person("boss", "manager", clearance=9)
    annotators = [api.person(n, "annotator", clearance=9) for n in ("a1", "a2")]
    api.person("vic", "viewer")
    api.person("rev", "reviewer")
    view = project_service.create_project(api.db, boss, name="P", schema=SCHEMA, overlap=2)
    for name, role in (("a1", "annotator"), ("a2", "annotator"), ("vic", "viewer"), ("rev", "reviewer")):
        project_service.add_member(api.db, boss, view.id, name, role)
    project_service.import_items(api.db, boss, view.id, [
        {"id": "pub-1", "text": "an open item"},
        {"id": "SECRET-1", "text": "a marked item", "sensitivity": 5},
    ])
    for actor in annotators:
        while (task := task_service.next_task(api.db, actor, view.id)) is not None:
            value = "covert" if task["item"]["external_id"] == "SECRET-1" else "public"
            task_service.submit_annotation(api.db, actor, task["task_id"], value)
    return view.id


async def test_dashboard_counts_only_cleared_items(api: Any) -> None:
    pid = _hidden_project(api)
    r = await api.client.get(f"/api/v1/projects/{pid}/consensus", headers=api.auth("vic"))
    assert [row["label"] for row in r.json()] == ["public"]
    await api.sign_in("vic")
    html = (await api.client.get(f"/projects/{pid}/dashboard")).text
    assert "Consensus labels: public 1" in html
    assert "covert" not in html.split("Consensus labels:")[1].split("</")[0]
    await api.sign_in("boss")  # clearance 9 sees both
    html = (await api.client.get(f"/projects/{pid}/dashboard")).text
    assert re.search(r"Consensus labels: (public 1, covert 1|covert 1, public 1)", html)


async def test_version_diff_leaves_out_items_above_clearance(api: Any) -> None:
    boss = api.person("boss", "manager", clearance=9)
    api.person("vic", "viewer")
    view = project_service.create_project(api.db, boss, name="P", schema=SCHEMA)
    ingest_service.create_version(api.db, "project:P", actor=boss, note="empty")
    project_service.import_items(api.db, boss, view.id, [
        {"id": "pub-1", "text": "an open item"},
        {"id": "SECRET-1", "text": "a marked item", "sensitivity": 5},
    ])
    ingest_service.create_version(api.db, "project:P", actor=boss, note="after")
    full = ingest_service.diff_versions(api.db, "project:P", 1, 2)  # the local CLI sees everything
    assert sorted(a["external_id"] for a in full.added) == ["SECRET-1", "pub-1"]
    await api.sign_in("vic")
    r = await api.client.get("/datasets/project:P?v1=1&v2=2")
    assert r.status_code == 200
    assert "pub-1" in r.text and "SECRET-1" not in r.text


async def test_review_and_decisions_by_id_do_not_reach_hidden_items(api: Any) -> None:
    pid = _hidden_project(api)
    with api.db.transaction(write=False) as s:
        hidden, shown = (s.execute(select(Task.id).join(Item, Item.id == Task.item_id)
                                   .where(Item.external_id == ext)).scalar_one() for ext in ("SECRET-1", "pub-1"))
    r = await api.client.post(f"/api/v1/tasks/{hidden}/review", json={"verdict": "accept"}, headers=api.auth("rev"))
    assert r.status_code == 404 and "covert" not in r.text
    token = await api.sign_in("rev")
    r = await api.client.post(f"/projects/{pid}/review/{hidden}", data={"decision": 'correct:"public"',
                                                                         "csrf_token": token})
    assert r.status_code == 404
    r = await api.client.post(f"/api/v1/tasks/{shown}/review", json={"verdict": "accept"}, headers=api.auth("rev"))
    assert r.status_code == 200
    with api.db.transaction(write=False) as s:
        assert s.execute(select(Review.task_id)).scalars().all() == [shown]


async def test_ids_and_counts_out_of_range_are_422(api: Any) -> None:
    boss = api.person("boss", "manager")
    api.person("ann", "annotator")
    view = project_service.create_project(api.db, boss, name="P", schema=SCHEMA)
    project_service.import_items(api.db, boss, view.id, [{"text": "x"}])
    project_service.add_member(api.db, boss, view.id, "ann", "annotator")
    token = await api.sign_in("ann")
    headers = {"x-csrf-token": token, "accept": "application/json"}
    for method, url, body in (
        ("GET", f"/projects/{TOO_BIG}/label", None),
        ("GET", f"/projects/{TOO_BIG}/dashboard", None),
        ("POST", f"/ui/api/projects/{view.id}/submit", {"task_id": TOO_BIG, "value": "public"}),
        ("POST", f"/ui/api/projects/{view.id}/ahead", {"holding": [TOO_BIG]}),
        ("POST", f"/ui/api/projects/{view.id}/submit", {"task_id": 1, "value": "public", "duration_ms": 2**40}),
        ("GET", f"/datasets/project:P?v1=1&v2={TOO_BIG}", None),
    ):
        r = await api.client.request(method, url, json=body, headers=headers)
        assert r.status_code == 422, (url, body, r.status_code, r.text[:200])
    r = await api.client.post(f"/api/v1/projects/{view.id}/members", json={"user": "ann", "role": "annotator",
                                                                          "quota": TOO_BIG}, headers=api.auth("boss"))
    assert r.status_code == 422
    task = await api.client.get(f"/api/v1/projects/{view.id}/next", headers=api.auth("ann"))
    r = await api.client.post(f"/api/v1/tasks/{task.json()['task_id']}/annotations",
                              json={"value": "public", "duration_ms": TOO_BIG}, headers=api.auth("ann"))
    assert r.status_code == 422
    ann = authenticate_token(api.db, api.tokens["ann"])
    with pytest.raises(InvalidInputError, match="duration_ms: expected an integer from 0 to 2147483647, got -1"):
        task_service.submit_annotation(api.db, ann, task.json()["task_id"], "public", duration_ms=-1)


async def test_project_names_and_rating_scales_are_checked_before_storing(api: Any) -> None:
    api.person("boss", "manager")
    token = await api.sign_in("boss")
    limit = project_service.MAX_PROJECT_NAME
    form = {"kind": "classification", "label_name": ["a", "b"], "csrf_token": token}
    r = await api.client.post("/projects/new", data={**form, "name": "n" * (limit + 1)})
    assert r.status_code == 422 and f"at most {limit} characters" in r.text
    r = await api.client.post("/projects/new", data={**form, "name": "n" * limit})
    assert r.status_code == 303  # the longest name fits its dataset's name column on both databases
    for rating_max in ("nan", "inf", "1e308"):
        r = await api.client.post("/projects/new", data={"name": f"R {rating_max}", "kind": "rating",
                                                         "rating_max": rating_max, "csrf_token": token})
        assert r.status_code == 422 and "schema.min/max/step" in r.text, rating_max
    r = await api.client.post("/api/v1/projects", content='{"name": "R", "schema": {"kind": "rating", "max": NaN}}',
                              headers={**api.auth("boss"), "content-type": "application/json"})
    assert r.status_code == 422 and "schema.min/max/step" in r.text
    names = [p["name"] for p in (await api.client.get("/api/v1/projects", headers=api.auth("boss"))).json()]
    assert names == ["n" * limit]


async def test_rest_undo_leases_for_the_configured_time(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    app = create_app(Settings(db=db_url, data_dir=tmp_path, lease_seconds=60), database=db, migrate=False)
    _, boss_token = create_user(db, "boss", "manager")
    _, token = create_user(db, "ann", "annotator")
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/api/v1/projects", headers={"Authorization": f"Bearer {boss_token}"},
                              json={"name": "P", "schema": SCHEMA})
        pid = r.json()["id"]
        await client.post(f"/api/v1/projects/{pid}/items", headers={"Authorization": f"Bearer {boss_token}"},
                          json=[{"text": "x"}])
        await client.post(f"/api/v1/projects/{pid}/members", headers={"Authorization": f"Bearer {boss_token}"},
                          json={"user": "ann", "role": "annotator"})
        task = (await client.get(f"/api/v1/projects/{pid}/next", headers=auth)).json()
        await client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=auth, json={"value": "public"})
        r = await client.post(f"/api/v1/projects/{pid}/undo", headers=auth)
        assert r.status_code == 200 and r.json()["previous_value"] == "public"
    with db.transaction(write=False) as s:
        leased_at, expires_at = s.execute(select(Assignment.leased_at, Assignment.expires_at)).one()
    assert expires_at - leased_at == dt.timedelta(seconds=60)
    db.dispose()


async def test_assignments_are_audited(api: Any) -> None:
    boss = api.person("boss", "manager")
    api.person("ann", "annotator")
    view = project_service.create_project(api.db, boss, name="P", schema=SCHEMA)
    project_service.import_items(api.db, boss, view.id, [{"text": "x"}, {"text": "y"}])
    project_service.add_member(api.db, boss, view.id, "ann", "annotator")
    r = await api.client.post(f"/api/v1/projects/{view.id}/assignments", headers=api.auth("boss"),
                              json={"user": "ann", "item_ids": [1, 2]})
    assert r.status_code == 201
    [event] = [e for e in list_events(api.db, limit=20) if e["action"] == "project.assign"]
    assert event["actor"] == "boss" and event["payload"] == {"user": "ann", "n_items": 2}


async def test_assignments_do_not_reach_hidden_items(api: Any) -> None:
    """A manager cleared for less than an item's marking cannot assign it to an annotator, and the
    answer is the one for an item that does not exist (before: 201, ``assigned: 1``)."""
    pid = _hidden_project(api)
    api.person("mo", "manager")  # clearance 0
    boss = authenticate_token(api.db, api.tokens["boss"])
    project_service.add_member(api.db, boss, pid, "mo", "manager")
    with api.db.transaction(write=False) as s:
        hidden, shown = (s.execute(select(Item.id).where(Item.external_id == ext)).scalar_one()
                         for ext in ("SECRET-1", "pub-1"))
    url = f"/api/v1/projects/{pid}/assignments"
    answers = [await api.client.post(url, headers=api.auth("mo"), json={"user": "a1", "item_ids": [i]})
               for i in (hidden, 10**6)]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json()["error"] == answers[1].json()["error"]
    r = await api.client.post(url, headers=api.auth("mo"), json={"user": "a1", "item_ids": [shown, hidden]})
    assert r.status_code == 404  # all or nothing
    with api.db.transaction(write=False) as s:
        assert set(s.execute(select(Task.assignee_id)).scalars()) == {None}
    r = await api.client.post(url, headers=api.auth("mo"), json={"user": "a1", "item_ids": [shown]})
    assert r.status_code == 201 and r.json()["assigned"] == 1
    r = await api.client.post(url, headers=api.auth("boss"), json={"user": "a1", "item_ids": [hidden]})
    assert r.status_code == 201  # clearance 9 may


async def test_exports_are_audited(api: Any, tmp_path: Path) -> None:
    """Every export, REST (streamed or written to a file) or ``veracity export``, is an audit event
    naming who exported what, in which format and at which clearance."""
    pid = _hidden_project(api)
    for fmt in ("jsonl", "csv", "parquet"):
        r = await api.client.get(f"/api/v1/projects/{pid}/export?format={fmt}", headers=api.auth("vic"))
        assert r.status_code == 200
    r = await api.client.get(f"/api/v1/projects/{pid}/export", headers=api.auth("a1"))
    assert r.status_code == 403  # refused: nothing exported, nothing recorded
    ingest_service.export_dataset(api.db, "project:P", "jsonl", tmp_path / "p.jsonl")  # the local CLI
    events = [e for e in list_events(api.db, limit=50) if e["action"].endswith(".export")]
    assert [(e["actor"], e["action"], e["payload"]["format"], e["payload"]["clearance"])
            for e in reversed(events)] == [
        ("vic", "project.export", "jsonl", 0), ("vic", "project.export", "csv", 0),
        ("vic", "project.export", "parquet", 0), ("cli", "dataset.export", "jsonl", None),
    ]
    assert {e["object_id"] for e in events[1:]} == {str(pid)}
