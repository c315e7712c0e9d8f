"""Ingest benchmark: import 1M JSONL rows and 10k images, export to Parquet and COCO.

Everything is generated at run time in a temporary folder (nothing is committed). Each import
runs in a fresh subprocess so that its peak memory (``ru_maxrss``) is its own; the JSONL import
is measured at two sizes to show that peak memory does not grow with the file.

    python benchmarks/ingest.py                    # SQLite; 1M rows, 10k images
    VERACITY_BENCH_PG_URL=postgresql+psycopg://user@host:5432/db python benchmarks/ingest.py
    python benchmarks/ingest.py --rows 200000 --images 2000 --no-write   # a quick look

Targets (issue 7): at least 50,000 rows/s into SQLite, peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import md_table, write_section

WORDS = [
    "the",
    "a",
    "data",
    "label",
    "model",
    "quality",
    "review",
    "item",
    "text",
    "image",
    "great",
    "poor",
    "fast",
    "slow",
    "good",
    "bad",
    "sunny",
    "rainy",
]


def make_jsonl(path: Path, n: int, seed: int = 0) -> None:
    """``n`` rows ``{"id", "text", "label"}`` with about 100 characters of text each."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    with path.open("w", encoding="utf-8") as fh:
        block = 50_000
        for start in range(0, n, block):
            m = min(block, n - start)
            picks = words[rng.integers(0, len(words), size=(m, 18))]
            labels = rng.choice(["pos", "neg", "neutral"], size=m)
            fh.write(
                "".join(
                    json.dumps(
                        {"id": f"r{start + i}", "text": f"{start + i} " + " ".join(picks[i]), "label": labels[i]}
                    )
                    + "\n"
                    for i in range(m)
                )
            )


def make_coco(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` small PNG images with 1-3 boxes each and their COCO file."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        blocks = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((64, 48), Image.Resampling.NEAREST).save(folder / "images" / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"images/{i}.png", "width": 64, "height": 48})
        for _ in range(int(rng.integers(1, 4))):
            x, y = (int(v) for v in rng.integers(0, 30, 2))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(rng.integers(1, 4)),
                    "bbox": [x, y, 10, 8],
                    "iscrowd": 0,
                }
            )
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k, "name": name} for k, name in enumerate(["cat", "dog", "car"], start=1)],
    }
    path = folder / "coco.json"
    path.write_text(json.dumps(doc))
    return path


# --------------------------------------------------------------------------- one measured step (subprocess)
def _worker(step: dict[str, Any]) -> dict[str, Any]:
    from veracity.services import ingest as ingest_service
    from veracity.storage import Database
    from veracity.storage.migrate import upgrade

    db = Database(step["db"])
    if step.get("migrate"):
        upgrade(db)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, cpu = time.perf_counter(), time.process_time()
    if step["kind"] == "import":
        report = ingest_service.import_source(
            db, step["source"], dataset=step["dataset"], chunk_size=step["chunk_size"]
        )
        n = report.imported + report.duplicates
    else:
        out = ingest_service.export_dataset(db, step["dataset"], step["format"], step["out"])
        n = out.n_records
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db.dispose()
    # A large import reads in a worker process (services._pipeline): its CPU time counts, and the
    # peak is this process's plus the largest child's (an upper bound of the tree's at any moment).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + after.ru_maxrss  # KiB on Linux
    return {"n": n, "seconds": wall, "cpu_seconds": cpu, "peak_mb": peak / 1024, "base_mb": base_rss / 1024}


def run_step(step: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(step)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"step {step['kind']} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--no-write", action="store_true", help="Print the table; do not touch RESULTS.md.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    backends = [("SQLite", None)]
    if os.environ.get("VERACITY_BENCH_PG_URL"):
        backends.append(("PostgreSQL", os.environ["VERACITY_BENCH_PG_URL"]))
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="veracity-bench-ingest-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        small, big = root / "small.jsonl", root / "big.jsonl"
        make_jsonl(small, max(args.rows // 10, 1))
        make_jsonl(big, args.rows)
        coco = make_coco(root / "coco", args.images)
        print(f"generated data in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        for name, pg_url in backends:
            if pg_url:
                _reset_pg(pg_url)
                db = pg_url
            else:
                db = f"sqlite:///{root / 'bench.db'}"
            steps = [
                ("import JSONL", {"kind": "import", "source": str(small), "dataset": "small", "migrate": True}),
                ("import JSONL", {"kind": "import", "source": str(big), "dataset": "texts"}),
                ("import COCO images", {"kind": "import", "source": str(coco), "dataset": "images"}),
                (
                    "export Parquet",
                    {"kind": "export", "dataset": "texts", "format": "parquet", "out": str(root / f"{name}.parquet")},
                ),
                (
                    "export COCO",
                    {
                        "kind": "export",
                        "dataset": "images",
                        "format": "coco",
                        "out": str(root / f"{name}-coco" / "coco.json"),
                    },
                ),
            ]
            for label, step in steps:
                step.update(db=db, chunk_size=args.chunk_size)
                res = run_step(step)
                rate = res["n"] / res["seconds"]
                cpu_rate = res["n"] / max(res["cpu_seconds"], 1e-9)
                print(
                    f"{name} {label}: {res['n']} in {res['seconds']:.1f}s = {rate:,.0f}/s "
                    f"(CPU {cpu_rate:,.0f}/s), peak {res['peak_mb']:.0f} MB",
                    file=sys.stderr,
                )
                rows.append(
                    [
                        name,
                        label,
                        res["n"],
                        round(res["seconds"], 1),
                        round(rate),
                        round(cpu_rate),
                        round(res["peak_mb"]),
                    ]
                )
    load = os.getloadavg()[0]
    table = md_table(
        ["backend", "step", "items", "seconds", "items/s (wall)", "items/s (CPU time)", "peak RSS MB"], rows
    )
    sqlite_big = next(r for r in rows if r[0] == "SQLite" and r[1] == "import JSONL" and r[2] == args.rows)
    peak = max(int(r[6]) for r in rows)  # type: ignore[call-overload]
    body = f"""
{table}

Generated at run time: {args.rows:,} JSONL rows (`id`, ~100 characters of `text`, `label`) and
{args.images:,} PNG images with 1-3 COCO boxes each. Each step runs in its own process; peak RSS
includes the interpreter, SQLAlchemy and pyarrow (about 100 MB before any work), plus the peak of
the reader process that a large import starts (CPU time counts both processes). Chunks of
{args.chunk_size:,} rows, one transaction each; SQLite with `synchronous=FULL` (WAL). The first
JSONL row is the same source at a tenth of the size: peak memory does not grow with the file.
Load average during the run: {load:.1f} on {os.cpu_count()} cores (shared machine); "CPU time" is the
rate achieved per second of CPU time of the import and its reader process.

Targets: >= 50,000 rows/s into SQLite — {"met" if float(sqlite_big[4]) >= 50_000 else "missed"}
({int(sqlite_big[4]):,} wall, {int(sqlite_big[5]):,} per CPU second); peak memory < 500 MB —
{"met" if peak < 500 else "missed"} (max {peak} MB).
"""
    print(body)
    if not args.no_write:
        write_section("Ingest (benchmarks/ingest.py)", body)


if __name__ == "__main__":
    main()
