"""The dataset catalogue in Debian's headless Chromium: from the datasets list to a near-duplicate
cluster and on to an item's lineage, against a real ``veracity serve``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from veracity.services import ingest as ingest_service
from veracity.services.users import create_user
from veracity.storage import Database

Shot = Callable[[Page, str], Path]
PASSWORD = "secret-pw"
KETTLE = "The kettle stopped working after two weeks and the lid never closed properly"
ROWS = [
    {"id": "k-1", "text": KETTLE + ".", "label": "negative"},
    {"id": "k-2", "text": KETTLE + "!!", "label": "negative"},
    {"id": "tea", "text": "Lovely tea set, arrived quickly and well packed.", "label": "positive"},
    {"id": "tea-copy", "text": "Lovely tea set, arrived quickly and well packed.", "label": "positive"},
    {"id": "mug", "text": "The mug is smaller than the photos suggest.", "label": "neutral"},
]


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """Fail on an uncaught script error or a Content-Security-Policy violation in the page."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def db(live_server_db: str) -> Iterator[Database]:
    database = Database(live_server_db)
    yield database
    database.dispose()


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state("domcontentloaded")


def test_follow_a_near_duplicate_cluster_to_an_items_lineage(
    page: Page, live_server: str, db: Database, tmp_path: Path, screenshot: Shot
) -> None:
    create_user(db, "vera", "viewer", password=PASSWORD)
    create_user(db, "ann", "annotator", password=PASSWORD)
    source = tmp_path / "reviews.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    report = ingest_service.import_source(db, source, dataset="shop-reviews")
    assert (report.imported, report.duplicates) == (4, 1)
    ingest_service.create_version(db, "shop-reviews", note="first cut")
    later = tmp_path / "more.jsonl"
    later.write_text(json.dumps({"id": "pan", "text": "The pan heats evenly.", "label": "positive"}) + "\n")
    ingest_service.import_source(db, later, dataset="shop-reviews")
    ingest_service.create_version(db, "shop-reviews", note="with the pan")

    sign_in(page, live_server, "vera")
    page.get_by_role("link", name="Datasets").click()
    expect(page).to_have_url(f"{live_server}/datasets")
    row = page.get_by_role("row").filter(has_text="shop-reviews")
    expect(row).to_contain_text(str(source.resolve()))
    expect(row).to_contain_text("5 rows · 1 duplicate")
    screenshot(page, "datasets")

    row.get_by_role("link", name="Duplicates").click()
    expect(page).to_have_url(f"{live_server}/datasets/shop-reviews/duplicates")
    expect(page.get_by_role("heading", name="1 cluster of near duplicates")).to_be_visible()
    cluster = page.get_by_role("article", name="Cluster 1")
    expect(cluster).to_contain_text("k-1")
    expect(cluster).to_contain_text("k-2")
    expect(cluster).to_contain_text(KETTLE + "!!")
    expect(cluster).not_to_contain_text("mug")
    expect(page.get_by_role("heading", name="Exact duplicates reported at import: 1")).to_be_visible()
    screenshot(page, "duplicates")

    cluster.get_by_role("link", name=re.compile(r"^item \d+$")).first.click()
    expect(page).to_have_url(re.compile(rf"{live_server}/items/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("(k-1)")
    lineage = page.locator("table.lineage")

    def fact(name: str) -> Locator:
        return lineage.locator("tr", has=page.get_by_role("rowheader", name=name, exact=True))

    expect(fact("Source")).to_contain_text(str(source.resolve()))
    expect(fact("Row / line").locator("td")).to_have_text("1")
    expect(fact("Content hash")).to_contain_text(re.compile("[0-9a-f]{64}"))
    expect(fact("Import batch")).to_contain_text(
        f"{report.batch_id}: jsonl"
    )
    expect(fact("Importer version")).to_contain_text(
        ingest_service.IMPORTER_VERSION
    )
    labels = page.get_by_role("table").filter(has_text="Labels carried by the source")
    expect(labels).to_contain_text('"negative"')
    expect(labels).to_contain_text(str(report.batch_id))
    expect(page.get_by_text('v1: label "negative"')).to_be_visible()
    screenshot(page, "item-lineage")
    item_url = page.url

    page.get_by_role("link", name="shop-reviews").click()
    expect(page.get_by_role("heading", name="shop-reviews", level=1)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="k-2")).to_contain_text("reviews.jsonl · 2")
    page.get_by_role("link", name="diff v1 → v2").click()
    diff = page.locator("section").filter(has=page.get_by_role("heading", name="v1 → v2"))
    expect(diff).to_contain_text("1 added · 0 removed · 0 relabelled")
    expect(diff).to_contain_text("pan")
    screenshot(page, "dataset")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "ann")
    expect(page.get_by_role("link", name="Datasets")).to_have_count(0)
    for path in ("/datasets", "/datasets/shop-reviews/duplicates", item_url.removeprefix(live_server)):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 403, path
