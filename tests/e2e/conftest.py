"""Browser end-to-end fixtures: a real ``veracity serve`` and Debian's headless Chromium.

- ``live_server``: base URL of ``veracity serve`` started as a subprocess on a free loopback port,
  on the fresh, migrated SQLite database ``live_server_db`` (check results through it).
- ``browser`` / ``page``: Playwright's sync API driving ``/usr/bin/chromium`` (never a downloaded
  browser). Each ``page`` has its own context; requests to any host but 127.0.0.1 are aborted,
  every request URL is recorded in ``page_requests``, and the test fails at teardown if any
  request left 127.0.0.1 (call ``assert_requests_local()`` to check earlier).
- ``screenshot(page, "name")`` writes ``docs/screenshots/name.png``.

Playwright's sync API keeps an asyncio loop marked as running in this thread while it is started,
which breaks ``asyncio.run``/anyio for any test that runs meanwhile. So the browser is started per
test module and stopped when the module ends; e2e modules hold only synchronous tests.
Every test in this folder is marked ``e2e``. Without Chromium they are skipped locally and fail
under ``CI=true``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from _server import LOCAL_HOST, ServerStartError, start_server

HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE.parents[1] / "docs" / "screenshots"
CHROMIUM = os.environ.get("VERACITY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
NON_NETWORK_SCHEMES = {"data", "blob", "about", "javascript"}
# Network URLs to any host but 127.0.0.1; matched inside the driver, so local requests go untouched.
EXTERNAL_URL = re.compile(r"^(?:https?|wss?|ftp)://(?!127\.0\.0\.1(?::\d+)?/)")
ACTION_TIMEOUT_MS = 10_000  # Playwright's default of 30 s per action makes a broken page slow to fail


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


# --- the server --------------------------------------------------------------------------------


@pytest.fixture
def live_server_db(sqlite_url: str) -> str:
    """URL of the fresh, migrated SQLite database that ``live_server`` serves."""
    return sqlite_url


@pytest.fixture
def live_server(live_server_db: str, tmp_path: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a ``veracity serve`` subprocess (see tests/_server.py)."""
    try:
        server = start_server(live_server_db, tmp_path)
    except ServerStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server.base_url
    server.stop()


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        reason = f"Chromium not found at {CHROMIUM}: run scripts/test (it installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: this is an error, not a skip)", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page_requests() -> list[str]:
    """Every URL the test's ``page`` requested, in order (including aborted external ones)."""
    return []


@pytest.fixture
def page(browser: Browser, page_requests: list[str]) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies), 1280x800, that cannot reach the internet."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.on("request", lambda request: page_requests.append(request.url))
    context.route(EXTERNAL_URL, lambda route: route.abort("blockedbyclient"))
    page = context.new_page()
    yield page
    context.close()
    assert_all_local(page_requests)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in NON_NETWORK_SCHEMES or parts.hostname == LOCAL_HOST


def assert_all_local(urls: list[str]) -> None:
    """Fail naming every URL that went anywhere but 127.0.0.1."""
    external = [url for url in urls if not is_local(url)]
    assert not external, f"{len(external)} request(s) left {LOCAL_HOST}: {external}"


@pytest.fixture
def assert_requests_local(page_requests: list[str]) -> Callable[[], None]:
    """Call it to fail now, naming every request so far that went anywhere but 127.0.0.1."""
    return lambda: assert_all_local(page_requests)


def save_screenshot(page: Page, name: str) -> Path:
    """Write a full-page screenshot to ``docs/screenshots/NAME.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    return save_screenshot
