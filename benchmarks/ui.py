"""Web UI latency in headless Chromium on the demo data (writes its section of benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/ui.py [--items 200] [--loads 30]

Builds the demo workspace in a temporary folder, adds a labelling project of the demo's review
texts with enough items for the run, starts ``veracity serve`` on a free loopback port and drives
Debian's Chromium (``/usr/bin/chromium``) through Playwright:

- *interactive*: navigation start to the labelling screen showing its first item with key handlers
  attached (the page's own ``performance.now()`` when it marks itself ready, after the next frame);
  measured over ``--loads`` fresh navigations.
- *next item*: a label key pressed to the next item painted (``performance.now()`` in the page at
  the keydown and in the first animation frame after the new item is in the DOM); measured over
  ``--items`` consecutive items. The wall time seen by the driver (key press sent to the new task
  id observed, including Playwright's round trips) is reported alongside.

Targets (issue 6): interactive under 300 ms, next item under 50 ms at p95.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._results import md_table, write_section
from veracity.services import projects as project_service
from veracity.services.demo import build_demo, demo_texts
from veracity.services.users import authenticate_password
from veracity.storage import Database
from veracity.storage.migrate import upgrade

CHROMIUM = os.environ.get("VERACITY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
SECTION = "Web UI (benchmarks/ui.py)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def prepare(folder: Path, n_items: int) -> tuple[str, int]:
    url = f"sqlite:///{folder / 'veracity.db'}"
    db = Database(url)
    upgrade(db)
    build_demo(db, media_dir=folder / "media")
    admin = authenticate_password(db, "demo", "demo")
    project = project_service.create_project(
        db, admin, name="Benchmark: review sentiment",
        schema={"kind": "classification", "labels": ["positive", "negative", "neutral"], "input": "text"},
    )
    texts = demo_texts(n_items + 20, seed=99)
    project_service.import_items(db, admin, project.id, [{"id": f"b{i:04d}", "text": t} for i, (t, _) in
                                                         enumerate(texts)])
    db.dispose()
    return url, project.id


def serve(url: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("veracity")
    env = {**os.environ, "VERACITY_DATA_DIR": str(folder), "VERACITY_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([str(exe), "serve", "--db", url, "--port", str(port)], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("veracity serve did not start")


NEXT_SHOWN = "prev => { const id = document.body.dataset.taskId; return id !== prev && id !== 'loading'; }"


def run_items(page: Page, n: int, *, wait_saved: bool) -> tuple[list[float], list[float]]:
    """Label ``n`` items with keys 1-3; return in-page key-to-painted times and driver wall times (ms).

    ``wait_saved``: before each key, wait until the previous answer is stored (an annotator who reads
    each item for longer than one server round trip); otherwise press as fast as the driver can.
    """
    page.evaluate("window.veracityTimings = []")
    wall = []
    for i in range(n):
        if wait_saved:
            page.wait_for_function("document.body.dataset.pending === '0'", polling="raf")
        before = page.evaluate("document.body.dataset.taskId")
        if before in ("none", "loading"):
            page.wait_for_function("!['loading'].includes(document.body.dataset.taskId)")
            before = page.evaluate("document.body.dataset.taskId")
        if before == "none":
            raise SystemExit(f"the queue ran dry after {i} items")
        t0 = time.perf_counter()
        page.keyboard.press("123"[i % 3])
        page.wait_for_function(NEXT_SHOWN, arg=before, polling="raf")
        wall.append((time.perf_counter() - t0) * 1000)
    page.wait_for_function("document.body.dataset.pending === '0'")
    return [float(x) for x in page.evaluate("window.veracityTimings")], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--burst", type=int, default=100, help="items pressed back to back, not waiting")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="veracity-ui-bench-") as tmp:
        folder = Path(tmp)
        print("building the demo workspace ...", flush=True)
        url, pid = prepare(folder, args.items + args.burst)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = serve(url, folder, port)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                # bypass_csp: the driver's wait_for_function predicates are strings, which the screens' CSP forbids
                page = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True).new_page()
                page.goto(f"{base}/login")
                page.fill("#username", "demo")
                page.fill("#password", "demo")
                page.press("#password", "Enter")
                page.wait_for_url(f"{base}/projects/*/dashboard")

                label_url = f"{base}/projects/{pid}/label"
                page.goto(label_url)  # warm-up: templates compiled, static files cached
                page.wait_for_function("document.body.dataset.ready === '1'")
                interactive = []
                for _ in range(args.loads):
                    page.goto(label_url)
                    page.wait_for_function("document.body.dataset.ready === '1'")
                    interactive.append(float(page.evaluate("window.veracityReadyAt")))
                    # the screen then leases the following item in the background; let it finish first
                    page.wait_for_function("document.body.dataset.pending === '0'")

                paced, paced_wall = run_items(page, args.items, wait_saved=True)
                burst, _ = run_items(page, args.burst, wait_saved=False)
                saves = [float(x) for x in page.evaluate("window.veracitySaveTimings")]
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    def row(name: str, values: list[float], target: str = "", limit: float | None = None) -> list[object]:
        p95 = pct(values, 0.95)
        status = "" if limit is None else ("met" if p95 < limit else "missed")
        return [name, len(values), statistics.median(values), p95, target, status]

    rows = [
        row("navigation to interactive labelling screen", interactive, "< 300 ms", 300),
        row("label key to next item painted (in page)", paced, "< 50 ms p95", 50),
        row("  same, seen by the driver (wall, includes Playwright round trips)", paced_wall),
        row("label key to next item painted, keys back to back (buffer drained)", burst),
        row("answer sent to stored + next lease received (background request)", saves),
    ]
    table = md_table(["measure", "n", "median ms", "p95 ms", "target", "status"], rows)
    n_project = args.items + args.burst + 20
    body = (
        f"{table}\n\nHeadless Debian Chromium, `veracity serve` (uvicorn, one worker) on SQLite (WAL, "
        f"synchronous=FULL) on 127.0.0.1: the demo workspace plus a {n_project}-item classification project "
        "labelled by the demo admin. The screen holds one task leased ahead "
        "(`services.tasks.next_task(..., holding=...)`), so a label key shows the next item at once; the answer "
        "and the lease of the following task travel in one request (`POST /ui/api/projects/{id}/submit`) in "
        "the background, in order, each a durable commit (last row). Paced rows: each key is pressed once the "
        "previous answer is stored (an annotator who looks at an item for longer than one server round trip). "
        "Back-to-back row: keys as fast as the driver sends them, faster than the server stores answers, so "
        "the look-ahead runs dry and the next item waits for the network.\n"
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
