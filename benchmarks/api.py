"""REST API benchmark: ``veracity serve`` (one process) on SQLite and PostgreSQL, driven by the SDK.

Measures, per backend, the operations Label Studio 1.23.2 was measured on (issue 5):

* first start: process spawn to ``/healthz`` 200 on an empty database (migrations included);
* import of N items (100,000 by default) in one POST;
* next task latency (p50/p95) on the N-item project, one annotator labelling as they go;
* submit annotation: requests/s and p95 with 1 and with 8 concurrent clients (every client leases
  its task with ``GET .../next`` before each submit, as annotators do; those requests are timed
  apart and not counted as submits);
* filter items by consensus label (``GET .../items?label=...``, first page of 100);
* export of the N items as JSONL;
* peak server memory (``VmHWM`` of the server process).

PostgreSQL: ``VERACITY_BENCH_PG_URL`` (a server URL; a scratch database is created and dropped on
it), else a throwaway cluster from the Debian binaries under ``/usr/lib/postgresql`` (started with
its default durability settings), else skipped.

    python benchmarks/api.py                 # full run, writes benchmarks/RESULTS.md
    python benchmarks/api.py --items 20000 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LS_VERSION = "1.23.2"
SCHEMA = {"kind": "classification", "labels": ["positive", "negative", "neutral"], "input": "text"}
WORDS = ("great", "awful", "fine", "slow", "fast", "broken", "lovely", "cheap", "solid", "meh", "loud", "quiet")


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def veracity_script() -> str:
    beside = Path(sys.executable).with_name("veracity")
    return str(beside) if beside.is_file() else (shutil.which("veracity") or "veracity")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    start_seconds: float

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmHWM not found in /proc/PID/status")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(db_url: str, workdir: Path) -> Server:
    """Spawn ``veracity serve`` and time it until ``/healthz`` answers 200."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERACITY_")}
    env.update(VERACITY_DATA_DIR=str(workdir), VERACITY_LOG_LEVEL="warning")
    log = (workdir / "server.log").open("wb")
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [veracity_script(), "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    while True:
        if process.poll() is not None:
            log_text = (workdir / "server.log").read_text()
            raise RuntimeError(f"veracity serve exited with {process.returncode}:\n{log_text}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return Server(process, base_url, time.perf_counter() - t0)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.perf_counter() - t0 > 120:
            process.kill()
            raise RuntimeError("veracity serve did not answer /healthz in 120 s")
        time.sleep(0.01)


def pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name))
    return next((p for p in reversed(found) if (p / "initdb").is_file()), None)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str | None]:
    """A fresh PostgreSQL cluster (server URL), or None when the binaries are not installed."""
    bindir = pg_bindir()
    if bindir is None:
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="veracity-bench-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = "postgres" if shutil.which("runuser") else "nobody"
        shutil.chown(tmp, owner)
        as_owner = ["runuser", "-u", owner, "--"]
    port = free_port()
    data = tmp / "data"
    subprocess.run([*as_owner, str(bindir / "initdb"), "-D", str(data), "-U", "veracity", "--auth=trust",
                    "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w",
                    "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c max_connections=200", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://veracity@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    name = f"veracity_bench_{os.getpid()}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# --------------------------------------------------------------------------- measurements
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


@dataclass
class Figures:
    backend: str
    start_s: float = 0.0
    import_s: float = 0.0
    import_rate: float = 0.0
    next_p50_ms: float = 0.0
    next_p95_ms: float = 0.0
    submit1_rps: float = 0.0
    submit1_p95_ms: float = 0.0
    submit8_rps: float = 0.0
    submit8_p50_ms: float = 0.0
    submit8_p95_ms: float = 0.0
    next8_p95_ms: float = 0.0
    req8_rps: float = 0.0
    filter_ms: float = 0.0
    filter_p95_ms: float = 0.0
    filter_rare_ms: float = 0.0
    n_labelled: int = 0
    export_s: float = 0.0
    import_cpu_rate: float = 0.0
    cycle_cpu_ms: float = 0.0
    cycle8_cpu_ms: float = 0.0
    filter_cpu_ms: float = 0.0
    export_cpu_s: float = 0.0
    rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)


def make_items(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": f"r{i}", "text": f"Review {i}: " + " ".join(rng.choices(WORDS, k=12))} for i in range(n)]


def label_for(task: dict[str, Any]) -> str:
    # mostly positive/negative; "neutral" is rare, for the sparse-filter case
    n = int(task["item"]["external_id"][1:])
    return "neutral" if n % 97 == 0 else ("positive" if n % 2 else "negative")


def annotate(client: Any, project_id: int, cycles: int, barrier: threading.Barrier | None,
             next_ms: list[float], submit_ms: list[float], seconds: float = float("inf"),
             errors: list[float] | None = None) -> int:
    """Label up to ``cycles`` tasks (next, then submit), for at most ``seconds``."""
    from veracity.errors import ConflictError

    errors = [] if errors is None else errors
    if barrier is not None:
        barrier.wait()
    deadline = time.perf_counter() + seconds
    done = 0
    for _ in range(cycles):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        try:
            task = client.next_task(project_id)
        except ConflictError:  # "the queue is too busy right now": counted, then asked again
            errors.append(time.perf_counter() - t0)
            continue
        t1 = time.perf_counter()
        if task is None:
            break
        client.submit_annotation(task["task_id"], label_for(task))
        t2 = time.perf_counter()
        next_ms.append((t1 - t0) * 1000)
        submit_ms.append((t2 - t1) * 1000)
        done += 1
    return done


def run_backend(
    backend: str, db_url: str, workdir: Path, n_items: int, cycles: int, seconds: float,
    log: Callable[[str], None],
) -> Figures:
    from veracity.client import Client
    from veracity.services.users import create_user
    from veracity.storage import Database

    fig = Figures(backend)
    server = start_server(db_url, workdir)
    fig.start_s = server.start_seconds
    log(f"{backend}: first start {fig.start_s:.2f} s")
    clients: list[Client] = []
    try:
        db = Database(db_url)
        tokens = {name: create_user(db, name, role)[1]
                  for name, role in [("bench-admin", "admin")] + [(f"ann{i}", "annotator") for i in range(9)]}
        db.dispose()
        admin = Client(server.base_url, tokens["bench-admin"], timeout=600)
        clients.append(admin)
        pid = admin.create_project("Bench", SCHEMA, overlap=1)["id"]
        for i in range(9):
            admin.add_member(pid, f"ann{i}", "annotator")

        batch = make_items(n_items)
        cpu0 = server.cpu_seconds()
        fig.import_s, result = timed(lambda: admin.import_items(pid, batch))
        fig.import_cpu_rate = n_items / (server.cpu_seconds() - cpu0)
        assert result["imported"] == n_items, result
        fig.import_rate = n_items / fig.import_s
        batch.clear()
        log(f"{backend}: import {n_items} in {fig.import_s:.2f} s ({fig.import_rate:,.0f}/s)")

        one = Client(server.base_url, tokens["ann0"], timeout=60)
        clients.append(one)
        annotate(one, pid, 20, None, [], [])  # warm up connections and caches
        next_ms: list[float] = []
        submit_ms: list[float] = []
        cpu0 = server.cpu_seconds()
        wall, done = timed(lambda: annotate(one, pid, cycles, None, next_ms, submit_ms, seconds))
        fig.cycle_cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / max(done, 1)
        fig.next_p50_ms, fig.next_p95_ms = pct(next_ms, 0.5), pct(next_ms, 0.95)
        fig.submit1_rps = done / (sum(submit_ms) / 1000)  # back to back, as one client sends them
        fig.submit1_p95_ms = pct(submit_ms, 0.95)
        log(f"{backend}: next p50 {fig.next_p50_ms:.1f} ms p95 {fig.next_p95_ms:.1f} ms; "
            f"1 client submit {fig.submit1_rps:.0f}/s p95 {fig.submit1_p95_ms:.1f} ms")

        eight = [Client(server.base_url, tokens[f"ann{i}"], timeout=60) for i in range(1, 9)]
        clients.extend(eight)
        for c in eight:
            annotate(c, pid, 3, None, [], [])
        barrier = threading.Barrier(len(eight))
        n8: list[list[float]] = [[] for _ in eight]
        s8: list[list[float]] = [[] for _ in eight]
        busy: list[float] = []
        threads = [threading.Thread(target=annotate, args=(c, pid, cycles // 2, barrier, n8[i], s8[i], seconds, busy))
                   for i, c in enumerate(eight)]
        cpu0 = server.cpu_seconds()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        all_submits = [x for xs in s8 for x in xs]
        fig.cycle8_cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / max(len(all_submits), 1)
        all_nexts = [x for xs in n8 for x in xs]
        # Conservative: every client also leases each task with `next`, and that time is not taken out.
        fig.submit8_rps = len(all_submits) / wall
        fig.req8_rps = (len(all_submits) + len(all_nexts)) / wall
        fig.submit8_p50_ms, fig.submit8_p95_ms = pct(all_submits, 0.5), pct(all_submits, 0.95)
        fig.next8_p95_ms = pct(all_nexts, 0.95)
        if busy:
            fig.notes.append(f"8 clients: {len(busy)} `next` requests answered 409 'the queue is too busy right now' "
                             "(asked again)")
        log(f"{backend}: 8 clients submit {fig.submit8_rps:.0f}/s p95 {fig.submit8_p95_ms:.1f} ms; "
            f"{fig.req8_rps:.0f} requests/s in all; next p95 {fig.next8_p95_ms:.1f} ms")

        fig.n_labelled = sum(1 for r in admin.iter_consensus(pid, page_size=1000) if r["label"] == "positive")
        filt: list[float] = []
        cpu0 = server.cpu_seconds()
        for _ in range(20):
            dt, page = timed(lambda: admin.list_items(pid, label="positive", limit=100))
            filt.append(dt * 1000)
            assert len(page) == min(100, fig.n_labelled), (len(page), fig.n_labelled)
        fig.filter_cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / len(filt)
        fig.filter_ms, fig.filter_p95_ms = statistics.median(filt), pct(filt, 0.95)
        rare = [timed(lambda: admin.list_items(pid, label="neutral", limit=100))[0] * 1000 for _ in range(5)]
        fig.filter_rare_ms = statistics.median(rare)
        log(f"{backend}: filter {fig.filter_ms:.1f} ms (p95 {fig.filter_p95_ms:.1f}), rare label "
            f"{fig.filter_rare_ms:.1f} ms, {fig.n_labelled} items with the label")

        out = workdir / "export.jsonl"
        cpu0 = server.cpu_seconds()
        fig.export_s, _ = timed(lambda: admin.export(pid, "jsonl", path=out))
        fig.export_cpu_s = server.cpu_seconds() - cpu0
        with out.open("rb") as fh:
            n_lines = sum(1 for _ in fh)
        assert n_lines == n_items, n_lines
        log(f"{backend}: export {n_items} in {fig.export_s:.2f} s ({out.stat().st_size / 1e6:.0f} MB)")
        fig.rss_mb = server.peak_rss_mb()
        log(f"{backend}: peak RSS {fig.rss_mb:.0f} MB")
    finally:
        for c in clients:
            c.close()
        server.stop()
    return fig


# --------------------------------------------------------------------------- report
# Label Studio 1.23.2, open-source edition, `label-studio start`, SQLite, this machine (issue 5).
LS = {
    "start_s": 106.0, "import_s": 37.6, "import_rate": 2600.0, "next_p50_ms": 108.0, "next_p95_ms": 244.0,
    "submit1_rps": 5.5, "submit8_rps": 5.6, "submit8_p95_ms": 2100.0, "filter_ms": 82_000.0, "export_s": 259.0,
    "rss_mb": 742.0,
}
TARGETS: dict[str, tuple[str, float]] = {
    "start_s": ("<", 3.0), "import_rate": (">=", 50_000.0), "next_p95_ms": ("<", 10.0), "submit8_rps": (">=", 300.0),
    "submit8_p95_ms": ("<", 50.0), "filter_ms": ("<", 100.0), "export_s": ("<", 3.0), "rss_mb": ("<", 300.0),
}
ROWS: list[tuple[str, str, str, bool]] = [  # key, label, unit, higher is better
    ("start_s", "First start, empty database", "s", False),
    ("import_s", "Import items in one POST", "s", False),
    ("import_rate", "Import rate", "items/s", True),
    ("next_p50_ms", "Next task p50", "ms", False),
    ("next_p95_ms", "Next task p95", "ms", False),
    ("submit1_rps", "Submit, 1 client", "req/s", True),
    ("submit1_p95_ms", "Submit p95, 1 client", "ms", False),
    ("submit8_rps", "Submit, 8 clients", "req/s", True),
    ("submit8_p95_ms", "Submit p95, 8 clients", "ms", False),
    ("req8_rps", "All requests (next + submit), 8 clients", "req/s", True),
    ("next8_p95_ms", "Next task p95, 8 clients", "ms", False),
    ("filter_ms", "Filter by consensus label (median)", "ms", False),
    ("filter_p95_ms", "Filter by consensus label p95", "ms", False),
    ("filter_rare_ms", "Filter by a rare label (1% of labels)", "ms", False),
    ("export_s", "Export as JSONL", "s", False),
    ("rss_mb", "Peak server memory (VmHWM)", "MB", False),
    ("import_cpu_rate", "Import per second of server CPU", "items/s", True),
    ("cycle_cpu_ms", "Server CPU per next + submit, 1 client", "ms", False),
    ("cycle8_cpu_ms", "Server CPU per next + submit, 8 clients", "ms", False),
    ("filter_cpu_ms", "Server CPU per filter call", "ms", False),
    ("export_cpu_s", "Server CPU for the export", "s", False),
]


def fmt(v: float) -> str:
    if v != v:  # nan
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def verdict(key: str, v: float) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    ok = v < target if op == "<" else v >= target
    return f"{op} {fmt(target)}: {'met' if ok else '**missed**'}"


def ratio(key: str, v: float, higher_better: bool) -> str:
    ls = LS.get(key)
    if ls is None or not v:
        return ""
    r = v / ls if higher_better else ls / v
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def report(figs: list[Figures], n_items: int, cycles: int) -> str:
    headers = ["Operation", "Unit", f"Label Studio {LS_VERSION}"]
    for f in figs:
        headers += [f"Veracity {f.backend}", f"vs LS ({f.backend})"]
    headers.append("Target (SQLite)")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    sqlite = figs[0]
    for key, label, unit, higher in ROWS:
        row = [label, unit, fmt(LS[key]) if key in LS else "-"]
        for f in figs:
            v = float(getattr(f, key))
            row += [fmt(v), ratio(key, v, higher)]
        row.append(verdict(key, float(getattr(sqlite, key))))
        lines.append("| " + " | ".join(row) + " |")
    load = os.getloadavg()
    notes = [
        f"{n_items:,} items; `veracity serve` in one process; client (the SDK, `veracity.client`) and server on "
        "loopback on the same machine, so the clients' own CPU is part of every figure.",
        f"Label Studio {LS_VERSION} figures are those quoted in issue 5, measured on this same 2-core machine "
        "(open-source edition, `label-studio start`, SQLite); its filter is by annotation value and its export "
        "is JSON. Ratios say how many times faster (or smaller) Veracity is.",
        f"Next task: one annotator labelling up to {cycles} tasks of the {n_items:,}-item project (each next is "
        "followed by a submit, so the queue moves). Submit, 1 client: submits back to back (1 / mean latency). Submit, "
        "8 clients: 8 threads, each leasing with `next` before every submit; submits/s is counted over the whole "
        "wall time, leases included (conservative); the row below counts both kinds of request.",
        "Filter: `GET /api/v1/projects/{id}/items?label=...&limit=100` (first page) after the submit phases, "
        f"when {figs[0].n_labelled:,} items on SQLite had the consensus label asked for.",
        f"Load average while running: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on 2 cores (other work shared "
        "the machine, so wall-clock figures are inflated; Label Studio was measured without that load). The last "
        "rows give the server process's own CPU time (user + system, /proc/PID/stat), which the load does not "
        "inflate as much: they bound what the same code does on an idle machine.",
    ]
    for f in figs:
        notes += [f"{f.backend}: {n}" for n in f.notes]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\nRerun: `python benchmarks/api.py`."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=800, help="labels per client phase (8 clients: half each)")
    parser.add_argument("--seconds", type=float, default=90.0, help="longest a client phase may run")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the servers
    sys.path.insert(0, str(ROOT))
    from benchmarks._results import write_section

    def log(msg: str) -> None:
        print(msg, flush=True)

    figs = []
    with tempfile.TemporaryDirectory(prefix="veracity-bench-api-") as tmp:
        work = Path(tmp) / "sqlite"
        work.mkdir()
        url = f"sqlite:///{work / 'bench.db'}"
        figs.append(run_backend("SQLite", url, work, args.items, args.cycles, args.seconds, log))
        if not args.no_pg:
            work = Path(tmp) / "pg"
            work.mkdir()
            env_url = os.environ.get("VERACITY_BENCH_PG_URL")
            with contextlib.ExitStack() as stack:
                server_url = env_url or stack.enter_context(throwaway_cluster())
                if server_url is None:
                    log("PostgreSQL: skipped (no VERACITY_BENCH_PG_URL and no binaries under /usr/lib/postgresql)")
                else:
                    url = stack.enter_context(scratch_database(server_url))
                    fig = run_backend("PostgreSQL", url, work, args.items, args.cycles, args.seconds, log)
                    fig.notes.append("server from VERACITY_BENCH_PG_URL" if env_url else
                                     "throwaway cluster (initdb, default durability settings)")
                    figs.append(fig)
    text = report(figs, args.items, args.cycles)
    print(text)
    print(json.dumps([f.__dict__ for f in figs], indent=1))
    if not args.no_write:
        write_section("REST API (benchmarks/api.py)", text)


if __name__ == "__main__":
    main()
