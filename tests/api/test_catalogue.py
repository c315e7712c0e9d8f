"""The dataset catalogue over REST and in the server-rendered screens: datasets, items, near
duplicates, lineage, item images, and who may read them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from veracity.errors import InvalidInputError
from veracity.services import ingest as ingest_service

pytestmark = pytest.mark.anyio

FOX = "The quick brown fox jumps over the lazy dog by the river bank at dawn"
ROWS = [
    {"id": "fox-1", "text": FOX + "."},
    {"id": "fox-2", "text": FOX + "!"},
    {"id": "tea", "text": "An entirely different sentence about kettles, tea and biscuits."},
    {"id": "tea-again", "text": "An entirely different sentence about kettles, tea and biscuits."},  # exact dup
    {"id": "solo", "text": "Nothing like the others: quarterly revenue rose by four percent."},
]



def import_rows(api: Any, tmp_path: Path, rows: list[dict[str, Any]], name: str = "reviews") -> Path:
    src = tmp_path / f"{name.replace('/', '_')}.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ingest_service.import_source(api.db, src, dataset=name)
    return src



async def test_catalogue_lists_datasets_with_items_versions_and_batches(api: Any, tmp_path: Path) -> None:
    api.person("vera", "viewer")
    src = import_rows(api, tmp_path, ROWS)
    ingest_service.create_version(api.db, "reviews", note="first cut")
    r = await api.client.get("/api/v1/datasets", headers=api.auth("vera"))
    assert r.status_code == 200, r.text
    [ds] = r.json()
    assert ds["name"] == "reviews" and ds["n_items"] == 4 and ds["n_batches"] == 1
    [version] = ds["versions"]
    assert (version["number"], version["n_items"], version["note"]) == (1, 4, "first cut")
    [batch] = ds["batches"]
    assert batch["source"] == str(src.resolve()) and batch["format"] == "jsonl"
    assert (batch["rows"], batch["imported"], batch["duplicates"], batch["rejected"]) == (5, 4, 1, 0)
    r = await api.client.get("/api/v1/datasets/reviews", headers=api.auth("vera"))
    assert r.json()["batches"] == ds["batches"]
    r = await api.client.get("/api/v1/datasets/nope", headers=api.auth("vera"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_dataset_items_are_keyset_paginated_with_provenance(api: Any, tmp_path: Path) -> None:
    import_rows(api, tmp_path, ROWS)
    seen: list[dict[str, Any]] = []
    cursor = 0
    while True:
        r = await api.client.get(f"/api/v1/datasets/reviews/items?limit=3&cursor={cursor}", headers=api.auth("admin"))
        assert r.status_code == 200
        seen += r.json()
        if "X-Next-Cursor" not in r.headers:
            break
        cursor = int(r.headers["X-Next-Cursor"])
    assert [i["external_id"] for i in seen] == ["fox-1", "fox-2", "tea", "solo"]
    assert [i["source_row"] for i in seen] == [1, 2, 3, 5]
    assert all(len(i["content_hash"]) == 64 and i["batch_id"] == seen[0]["batch_id"] for i in seen)
    assert seen[0]["snippet"] == FOX + "."


async def test_duplicates_endpoint_clusters_near_texts_and_lists_reported_exact_ones(api: Any, tmp_path: Path) -> None:
    import_rows(api, tmp_path, ROWS)
    r = await api.client.get("/api/v1/datasets/reviews/duplicates?threshold=0.7", headers=api.auth("admin"))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert [[m["external_id"] for m in c["items"]] for c in rep["clusters"]] == [["fox-1", "fox-2"]]
    assert rep["clusters"][0]["items"][1]["snippet"] == FOX + "!"
    assert (rep["n_items"], rep["compared"], rep["truncated"]) == (4, 4, False)
    assert rep["exact_total"] == 1
    [exact] = rep["exact"]
    assert exact["row"] == 4 and exact["duplicate_of"]["row"] == 3
    r = await api.client.get("/api/v1/datasets/reviews/duplicates?limit=2", headers=api.auth("admin"))
    assert r.json()["truncated"] is True and r.json()["compared"] == 2
    r = await api.client.get("/api/v1/datasets/reviews/duplicates?threshold=0.7&clusters=0", headers=api.auth("admin"))
    assert r.json()["n_clusters"] == 1 and r.json()["clusters"] == []


async def test_lineage_endpoint_matches_the_service(api: Any, tmp_path: Path) -> None:
    api.person("vera", "viewer")
    import_rows(api, tmp_path, [{"id": "x", "text": "labelled", "label": "pos"}])
    r = await api.client.get("/api/v1/datasets/reviews/items", headers=api.auth("vera"))
    item_id = r.json()[0]["item_id"]
    r = await api.client.get(f"/api/v1/items/{item_id}/lineage", headers=api.auth("vera"))
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(ingest_service.item_lineage(api.db, item_id), default=str))
    body = r.json()
    assert body["import_batch"]["importer_version"] == ingest_service.IMPORTER_VERSION
    [label] = body["source_labels"]
    assert label["value"] == "pos" and label["import_batch"] == body["import_batch"]["id"]
    r = await api.client.get("/api/v1/items/999999/lineage", headers=api.auth("vera"))
    assert r.status_code == 404


async def test_annotators_cannot_read_the_catalogue_and_clearance_hides_items(api: Any, tmp_path: Path) -> None:
    api.person("ann", "annotator", clearance=5)
    api.person("low", "viewer", clearance=0)
    import_rows(api, tmp_path, ROWS)
    item_id = (await api.client.get("/api/v1/datasets/reviews/items", headers=api.auth("admin"))).json()[0]["item_id"]
    for path in ("/api/v1/datasets", "/api/v1/datasets/reviews", "/api/v1/datasets/reviews/items",
                 "/api/v1/datasets/reviews/duplicates", f"/api/v1/items/{item_id}/lineage"):
        r = await api.client.get(path, headers=api.auth("ann"))
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "permission_denied"
    from sqlalchemy import update

    from veracity.storage.models import Item

    with api.db.transaction() as s:
        s.execute(update(Item).where(Item.id == item_id).values(sensitivity=3))
    rows = (await api.client.get("/api/v1/datasets/reviews/items", headers=api.auth("low"))).json()
    assert item_id not in [i["item_id"] for i in rows] and len(rows) == 3
    assert (await api.client.get(f"/api/v1/items/{item_id}/lineage", headers=api.auth("low"))).status_code == 404
    rep = (await api.client.get("/api/v1/datasets/reviews/duplicates", headers=api.auth("low"))).json()
    assert rep["clusters"] == [] and rep["n_items"] == 3  # fox-1 is hidden, so fox-2 has no twin


async def test_catalogue_screens_show_datasets_duplicates_and_lineage(api: Any, tmp_path: Path) -> None:
    api.person("vera", "viewer")
    api.person("ann", "annotator")
    src = import_rows(api, tmp_path, ROWS)
    ingest_service.create_version(api.db, "reviews")
    ingest_service.create_version(api.db, "reviews")
    await api.sign_in("vera")
    r = await api.client.get("/")
    assert 'href="/datasets"' in r.text
    r = await api.client.get("/datasets")
    assert r.status_code == 200 and "reviews" in r.text and str(src.resolve()) in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    r = await api.client.get("/datasets/reviews?v1=1&v2=2")
    assert r.status_code == 200 and "diff v1 → v2" in r.text and "0 added" in r.text
    assert "fox-1" in r.text and "Next" not in r.text
    r = await api.client.get("/datasets/reviews/duplicates?threshold=0.7")
    assert r.status_code == 200
    assert "1 cluster of near duplicates" in r.text and "Exact duplicates reported at import: 1" in r.text
    item_id = int(re.search(r'href="/items/(\d+)">item \d+</a> <span class="chip">fox-1', r.text).group(1))  # type: ignore[union-attr]
    r = await api.client.get(f"/items/{item_id}")
    assert r.status_code == 200
    for fact in (str(src.resolve()), "Row / line", ingest_service.IMPORTER_VERSION, "v1:", "v2:"):
        assert fact in r.text, fact
    await api.sign_in("ann")
    r = await api.client.get("/")
    assert 'href="/datasets"' not in r.text
    for path in ("/datasets", "/datasets/reviews", "/datasets/reviews/duplicates", f"/items/{item_id}"):
        r = await api.client.get(path)
        assert r.status_code == 403, path


async def test_item_images_are_served_only_from_the_import_folder(api: Any, tmp_path: Path) -> None:
    api.person("vera", "viewer")
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "red.png")
    ingest_service.import_source(api.db, folder, dataset="pics", format="images")
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    (rows_dir / "link.png").symlink_to(outside)  # a link out of the import's folder
    Image.new("RGB", (4, 4)).save(rows_dir / "beside.png")  # named by a JSONL row: not read by its importer
    import_rows(api, rows_dir, [{"id": "sneaky", "image": str(outside)}, {"id": "etc", "image": "/etc/passwd"},
                                {"id": "link", "image": str(rows_dir / "link.png")},
                                {"id": "dots", "image": str(rows_dir / ".." / "secret.png")},
                                {"id": "beside", "image": str(rows_dir / "beside.png")}], name="sneaky")
    await api.sign_in("vera")
    pics = (await api.client.get("/api/v1/datasets/pics/items", headers=api.auth("vera"))).json()
    assert pics[0]["image"] is True
    r = await api.client.get(f"/items/{pics[0]['item_id']}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    for row in (await api.client.get("/api/v1/datasets/sneaky/items", headers=api.auth("vera"))).json():
        r = await api.client.get(f"/items/{row['item_id']}/image")
        assert r.status_code == 404, row
    sneaky = (await api.client.get("/api/v1/datasets/sneaky/items", headers=api.auth("vera"))).json()
    assert len(sneaky) == 5
    media = tmp_path / "media"  # the server's data_dir/media: always served from
    media.mkdir()
    Image.new("RGB", (4, 4)).save(media / "m.png")
    import_rows(api, rows_dir, [{"id": "m", "image": str(media / "m.png")}], name="media")
    [m] = (await api.client.get("/api/v1/datasets/media/items", headers=api.auth("vera"))).json()
    assert (await api.client.get(f"/items/{m['item_id']}/image")).status_code == 200


def _gradient(corner: int) -> Image.Image:
    img = Image.new("L", (32, 32))
    img.putdata([(x * 8 + y) % 256 for y in range(32) for x in range(32)])
    img.putpixel((0, 0), corner)
    return img


async def test_image_duplicates_open_only_files_the_server_may_serve(api: Any, tmp_path: Path) -> None:
    """Rows that merely name files (``/etc/passwd``, twins outside any image import) are not
    opened on a user's request, so the answer does not reveal whether such files exist."""
    api.person("vera", "viewer")
    folder = tmp_path / "pics"
    folder.mkdir()
    for name, corner in (("a.png", 0), ("b.png", 9)):  # one pixel apart: one near-duplicate cluster
        _gradient(corner).save(folder / name)
    ingest_service.import_source(api.db, folder, dataset="pics", format="images")
    r = await api.client.get("/api/v1/datasets/pics/duplicates", headers=api.auth("vera"))
    assert r.status_code == 200
    assert [c["size"] for c in r.json()["clusters"]] == [2]
    rows_dir = tmp_path / "rows"
    rows_dir.mkdir()
    for name, corner in (("c.png", 0), ("d.png", 9)):
        _gradient(corner).save(rows_dir / name)
    import_rows(api, rows_dir, [{"id": "etc", "image": "/etc/passwd"},
                                {"id": "c", "image": str(rows_dir / "c.png")},
                                {"id": "d", "image": str(rows_dir / "d.png")}], name="named")
    r = await api.client.get("/api/v1/datasets/named/duplicates", headers=api.auth("vera"))
    assert r.status_code == 200, r.text  # not 422 "cannot be decoded": /etc/passwd is never opened
    assert r.json()["clusters"] == []
    # the CLI's service call (no actor) compares every local image the rows name
    with pytest.raises(InvalidInputError, match="passwd"):
        ingest_service.near_duplicates(api.db, "named", field="image")


async def test_sdk_reads_the_catalogue_sync_and_async(api: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from veracity.client import AsyncClient, Client
    from veracity.errors import PermissionDeniedError

    import_rows(api, tmp_path, ROWS, name="team a/reviews")  # a name that needs quoting in a URL
    token = api.tokens["admin"]
    transport = api.client._transport
    async with AsyncClient("http://testserver", token, transport=transport) as ac:  # type: ignore[arg-type]
        [ds] = await ac.list_datasets()
        assert ds["name"] == "team a/reviews" and ds["n_items"] == 4
        assert (await ac.get_dataset("team a/reviews"))["batches"] == ds["batches"]
        items = [i async for i in ac.iter_dataset_items("team a/reviews", page_size=3)]
        assert [i["external_id"] for i in items] == ["fox-1", "fox-2", "tea", "solo"]
        report = await ac.dataset_duplicates("team a/reviews", threshold=0.7)
        assert [[m["external_id"] for m in c["items"]] for c in report["clusters"]] == [["fox-1", "fox-2"]]
        lineage = await ac.item_lineage(items[2]["item_id"])
        assert lineage["external_id"] == "tea" and lineage["source_row"] == 3
    ann_token = api.add_user("ann2", "annotator")
    class ViaTestClient(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            r = tc.request(request.method, str(request.url), headers=dict(request.headers), content=request.read())
            return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    tc = TestClient(transport.app)  # type: ignore[attr-defined]
    with tc, Client("http://testserver", token, transport=ViaTestClient()) as sc:
        page = sc.list_dataset_items("team a/reviews", limit=2)
        assert len(page) == 2 and page.next_cursor == page[1]["item_id"]
        assert [i["item_id"] for i in sc.iter_dataset_items("team a/reviews")] == [i["item_id"] for i in items]
        assert sc.dataset_duplicates("team a/reviews", limit=2)["truncated"] is True
        assert sc.item_lineage(items[0]["item_id"])["content_hash"] == items[0]["content_hash"]
        annotator = Client("http://testserver", ann_token, transport=ViaTestClient())
        with annotator, pytest.raises(PermissionDeniedError):
            annotator.list_datasets()


async def test_catalogue_endpoints_are_described_with_examples(api: Any) -> None:
    spec = (await api.client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/datasets", "/api/v1/datasets/{name}", "/api/v1/datasets/{name}/items",
                 "/api/v1/datasets/{name}/duplicates", "/api/v1/items/{item_id}/lineage"):
        example = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"]
        assert example, path
    dup = spec["paths"]["/api/v1/datasets/{name}/duplicates"]["get"]["responses"]["200"]["content"]
    assert set(dup["application/json"]["example"]) >= {"clusters", "exact", "truncated", "compared", "n_clusters"}


async def test_media_files_need_a_session_and_clearance(api: Any, tmp_path: Path) -> None:
    """``/media`` (item images the screens load, e.g. the demo's) is no public folder: a visitor who
    is not signed in, a path out of the folder, and the image of an item above the caller's
    clearance all get no file."""
    from veracity.services import projects as project_service

    boss = api.person("boss", "manager", clearance=9)
    api.person("ann", "annotator")
    media = tmp_path / "media"
    (media / "shots").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(media / "shots" / "open.png")
    Image.new("RGB", (4, 4)).save(media / "shots" / "secret.png")
    (tmp_path / "outside.png").write_bytes((media / "shots" / "open.png").read_bytes())
    (media / "shots" / "out.png").symlink_to(tmp_path / "outside.png")
    view = project_service.create_project(api.db, boss, name="Shots",
                                          schema={"kind": "boxes", "labels": ["car"]})
    project_service.add_member(api.db, boss, view.id, "ann", "annotator")
    project_service.import_items(api.db, boss, view.id, [
        {"id": "open", "image": "/media/shots/open.png"},
        {"id": "secret", "image": "/media/shots/secret.png", "sensitivity": 5},
    ])
    anonymous = await api.client.get("/media/shots/open.png")
    assert anonymous.status_code in (303, 401) and anonymous.content[:4] != b"\x89PNG"
    await api.sign_in("ann")
    shown = await api.client.get("/media/shots/open.png")
    assert shown.status_code == 200 and shown.content[:4] == b"\x89PNG"
    assert shown.headers["x-content-type-options"] == "nosniff"
    for path in ("/media/shots/secret.png", "/media/shots/./secret.png", "/media/shots//secret.png",
                 "/media/shots/out.png", "/media/shots/%2E%2E/%2E%2E/outside.png", "/media/shots/nothing.png"):
        r = await api.client.get(path)
        assert r.status_code == 404 and r.content[:4] != b"\x89PNG", path
    await api.sign_in("boss")  # clearance 9 sees the marked item's image
    assert (await api.client.get("/media/shots/secret.png")).status_code == 200


async def test_item_images_named_by_their_media_url_are_shown(api: Any, tmp_path: Path) -> None:
    """Items whose ``image`` is the ``/media/...`` URL the labelling screen loads (as the demo's are)
    get their thumbnail on the dataset and item screens, and take part in image near-duplicates."""
    from veracity.services import projects as project_service

    boss = api.person("boss", "manager")
    (tmp_path / "media" / "shots").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        _gradient(0).save(tmp_path / "media" / "shots" / name)
    view = project_service.create_project(api.db, boss, name="Shots", schema={"kind": "boxes", "labels": ["car"]})
    project_service.import_items(api.db, boss, view.id, [{"id": "a", "image": "/media/shots/a.png"},
                                                         {"id": "b", "image": "/media/shots/b.png"},
                                                         {"id": "gone", "image": "/media/shots/none.png"}])
    await api.sign_in("boss")
    rows = (await api.client.get("/api/v1/datasets/project:Shots/items", headers=api.auth("boss"))).json()
    by_id = {row["external_id"]: row["item_id"] for row in rows}
    for ext in ("a", "b"):
        r = await api.client.get(f"/items/{by_id[ext]}/image")
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG", ext
    assert (await api.client.get(f"/items/{by_id['gone']}/image")).status_code == 404
    r = await api.client.get("/datasets/project:Shots/duplicates")
    assert r.status_code == 200 and f"/items/{by_id['a']}/image" in r.text and f"/items/{by_id['b']}/image" in r.text
