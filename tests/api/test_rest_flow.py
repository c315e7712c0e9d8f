"""The REST contract of ARCHITECTURE.md end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from veracity.storage.models import Annotation, Item, Task

pytestmark = pytest.mark.anyio

SCHEMA = {"kind": "classification", "labels": ["cat", "dog"], "input": "text"}


async def _project(api, name: str = "Pets", overlap: int = 2) -> int:  # type: ignore[no-untyped-def]
    r = await api.client.post("/api/v1/projects", headers=api.auth("admin"),
                              json={"name": name, "schema": SCHEMA, "overlap": overlap, "gold_rate": 0})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["schema"]["labels"] == ["cat", "dog"]
    return int(body["id"])


async def test_create_import_next_annotate_consensus_export(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    for name in ("ann1", "ann2"):
        api.add_user(name, "annotator")
        r = await api.client.post(f"/api/v1/projects/{pid}/members", headers=api.auth("admin"),
                                  json={"user": name, "role": "annotator"})
        assert r.status_code == 201, r.text

    items = [{"id": "a", "text": "meow"}, {"id": "b", "text": "woof"}, {"id": "c", "text": "purr"}]
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"), json=items)
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 3 and r.json()["duplicates"] == 0 and r.json()["errors"] == []

    truth = {"meow": "cat", "woof": "dog", "purr": "cat"}
    labelled: dict[str, set[str]] = {"ann1": set(), "ann2": set()}
    for name in ("ann1", "ann2"):
        while True:
            r = await api.client.get(f"/api/v1/projects/{pid}/next", headers=api.auth(name))
            if r.status_code == 204:
                break
            assert r.status_code == 200, r.text
            task = r.json()
            text = task["item"]["data"]["text"]
            assert text not in labelled[name], "an annotator was served the same item twice"
            labelled[name].add(text)
            r = await api.client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=api.auth(name),
                                      json={"value": truth[text], "idempotency_key": f"{name}-{text}"})
            assert r.status_code == 201, r.text
    assert labelled["ann1"] == labelled["ann2"] == set(truth)

    r = await api.client.get(f"/api/v1/projects/{pid}/consensus", headers=api.auth("admin"))
    assert r.status_code == 200
    rows = {row["external_id"]: row for row in r.json()}
    assert {k: v["label"] for k, v in rows.items()} == {"a": "cat", "b": "dog", "c": "cat"}
    assert all(v["confidence"] == 1.0 and v["n_labels"] == 2 for v in rows.values())

    r = await api.client.get(f"/api/v1/projects/{pid}/consensus?label=dog", headers=api.auth("admin"))
    assert [row["external_id"] for row in r.json()] == ["b"]

    r = await api.client.get(f"/api/v1/projects/{pid}/export?format=jsonl", headers=api.auth("admin"))
    assert r.status_code == 200
    records = [json.loads(line) for line in r.text.splitlines()]
    assert [rec["external_id"] for rec in records] == ["a", "b", "c"]
    assert [rec["label"] for rec in records] == ["cat", "dog", "cat"]
    assert sorted(a["annotator"] for a in records[1]["annotations"]) == ["ann1", "ann2"]
    assert records[0]["data"] == {"text": "meow"}

    r = await api.client.get(f"/api/v1/projects/{pid}/export?format=csv", headers=api.auth("admin"))
    rows_csv = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["label"] for row in rows_csv] == ["cat", "dog", "cat"]
    assert json.loads(rows_csv[2]["data"]) == {"text": "purr"}


async def test_consensus_pages_with_a_cursor(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api, overlap=1)
    await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"),
                          json=[{"text": f"t{i}"} for i in range(5)])
    for _ in range(5):
        task = (await api.client.get(f"/api/v1/projects/{pid}/next", headers=api.auth("admin"))).json()
        await api.client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=api.auth("admin"),
                              json={"value": "cat"})
    seen, cursor = [], 0
    while True:
        r = await api.client.get(f"/api/v1/projects/{pid}/consensus?limit=2&cursor={cursor}", headers=api.auth("admin"))
        seen += [row["item_id"] for row in r.json()]
        if "X-Next-Cursor" not in r.headers:
            break
        cursor = int(r.headers["X-Next-Cursor"])
    assert len(seen) == 5 == len(set(seen))


async def _count(api, model) -> int:  # type: ignore[no-untyped-def]
    with api.db.transaction(write=False) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


async def test_malformed_ndjson_line_is_named_and_nothing_is_stored(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    body = '{"text": "ok"}\n{"text": "also ok"}\n{"text": broken}\n'
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers={**api.auth("admin"),
                              "Content-Type": "application/x-ndjson"}, content=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert "line 3" in err["message"] and "malformed JSON" in err["message"]
    assert err["details"][0]["line"] == 3
    assert await _count(api, Item) == 0


async def test_unknown_label_names_index_and_field(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    items = [{"text": "a", "label": "cat"}, {"text": "b", "label": "cow"}]
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"), json=items)
    assert r.status_code == 422
    err = r.json()["error"]
    assert "index 1.label" in err["message"] and "unknown label 'cow'" in err["message"]
    assert err["details"] == [{"index": 1, "field": "label", "message": err["details"][0]["message"]}]
    assert await _count(api, Item) == 0 and await _count(api, Task) == 0 and await _count(api, Annotation) == 0


async def test_missing_field_names_line_in_ndjson(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    body = '{"text": "fine"}\n\n{"title": "no text here"}\n'
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers={**api.auth("admin"),
                              "Content-Type": "application/x-ndjson"}, content=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["details"][0]["line"] == 3 and err["details"][0]["field"] == "text"
    assert "missing field 'text'" in err["message"]
    assert await _count(api, Item) == 0


async def test_rejected_batch_keeps_what_was_stored_before(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"), json=[{"text": "first"}])
    assert r.status_code == 201
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"),
                              json=[{"text": "second"}, {"text": 1, "label": "bird"}])
    assert r.status_code == 422
    assert await _count(api, Item) == 1


async def test_exact_duplicates_are_reported_not_stored_twice(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"), json=[{"text": "same"}])
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"),
                              json=[{"text": "same"}, {"text": "new"}, {"text": "new"}])
    assert r.status_code == 201
    assert r.json()["imported"] == 1 and r.json()["duplicates"] == 2
    assert await _count(api, Item) == 2


async def test_auth_and_roles(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    r = await api.client.get("/api/v1/projects")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = await api.client.get("/api/v1/projects", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    api.add_user("outsider", "annotator")
    r = await api.client.get(f"/api/v1/projects/{pid}/next", headers=api.auth("outsider"))
    assert r.status_code == 404  # a project you are not a member of does not exist for you
    assert (await api.client.get("/api/v1/projects", headers=api.auth("outsider"))).json() == []
    await api.client.post(f"/api/v1/projects/{pid}/members", headers=api.auth("admin"),
                          json={"user": "outsider", "role": "annotator"})
    r = await api.client.get(f"/api/v1/projects/{pid}/consensus", headers=api.auth("outsider"))
    assert r.status_code == 403  # blind labelling: annotators never see others' labels
    r = await api.client.post("/api/v1/projects", headers=api.auth("outsider"),
                              json={"name": "x", "schema": SCHEMA})
    assert r.status_code == 403


async def test_idempotent_retry_stores_one_annotation(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api, overlap=1)
    await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"), json=[{"text": "x"}])
    task = (await api.client.get(f"/api/v1/projects/{pid}/next", headers=api.auth("admin"))).json()
    for _ in range(3):
        r = await api.client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=api.auth("admin"),
                                  json={"value": "dog", "idempotency_key": "k1"})
        assert r.status_code == 201
    assert await _count(api, Annotation) == 1


async def test_openapi_and_health(api) -> None:  # type: ignore[no-untyped-def]
    r = await api.client.get("/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True
    spec = (await api.client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/projects", "/api/v1/projects/{project_id}/items", "/api/v1/projects/{project_id}/next",
                 "/api/v1/tasks/{task_id}/annotations", "/api/v1/projects/{project_id}/consensus",
                 "/api/v1/projects/{project_id}/export", "/api/v1/projects/{project_id}/members"):
        assert path in spec["paths"], path


async def test_export_parquet_and_coco_and_yolo(api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    import pyarrow.parquet as pq

    pid = await _project(api, overlap=1)
    await api.client.post(f"/api/v1/projects/{pid}/items", headers=api.auth("admin"),
                          json=[{"id": "a", "text": "meow"}, {"id": "b", "text": "woof"}])
    for value in ("cat", "dog"):
        task = (await api.client.get(f"/api/v1/projects/{pid}/next", headers=api.auth("admin"))).json()
        await api.client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=api.auth("admin"),
                              json={"value": value})
    r = await api.client.get(f"/api/v1/projects/{pid}/export?format=parquet", headers=api.auth("admin"))
    assert r.status_code == 200
    (tmp_path / "x.parquet").write_bytes(r.content)
    table = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert sorted((row["id"], row["label"], row["text"]) for row in table) == [("a", "cat", "meow"),
                                                                              ("b", "dog", "woof")]

    r = await api.client.post("/api/v1/projects", headers=api.auth("admin"), json={
        "name": "Boxes", "schema": {"kind": "boxes", "labels": ["car"]}, "overlap": 1})
    bid = r.json()["id"]
    from PIL import Image

    Image.new("RGB", (100, 80)).save(tmp_path / "street.png")
    await api.client.post(f"/api/v1/projects/{bid}/items", headers=api.auth("admin"),
                          json=[{"id": "img1", "image": str(tmp_path / "street.png")}])
    task = (await api.client.get(f"/api/v1/projects/{bid}/next", headers=api.auth("admin"))).json()
    box = {"x": 10, "y": 20, "w": 30, "h": 40, "label": "car"}
    await api.client.post(f"/api/v1/tasks/{task['task_id']}/annotations", headers=api.auth("admin"),
                          json={"value": [box]})
    r = await api.client.get(f"/api/v1/projects/{bid}/export?format=coco", headers=api.auth("admin"))
    assert r.status_code == 200
    coco = r.json()
    assert [c["name"] for c in coco["categories"]] == ["car"]
    assert [a["bbox"] for a in coco["annotations"]] == [[10, 20, 30, 40]]
    r = await api.client.get(f"/api/v1/projects/{bid}/export?format=yolo", headers=api.auth("admin"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    (tmp_path / "y.zip").write_bytes(r.content)
    names = zipfile.ZipFile(tmp_path / "y.zip").namelist()
    assert any(n.endswith(".txt") for n in names)


async def test_non_finite_numbers_are_named_not_a_server_error(api) -> None:  # type: ignore[no-untyped-def]
    pid = await _project(api)
    r = await api.client.post(f"/api/v1/projects/{pid}/items", headers={**api.auth("admin"),
                              "Content-Type": "application/json"}, content='[{"text": "ok"}, {"score": NaN}]')
    assert r.status_code == 422 and "index 1" in r.json()["error"]["message"]
    assert await _count(api, Item) == 0
