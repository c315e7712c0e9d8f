"""Truth-inference benchmark: Veracity's aggregators against crowd-kit 1.4.2, side by side.

Run: ``.venv/bin/python benchmarks/aggregation.py`` (writes the "Truth inference" section of
benchmarks/RESULTS.md). Options: ``--quick`` (real data sets and the 100k crowd only),
``--no-crowdkit``, ``--sizes 100k,1m,10m``.

* Real data sets: ``$VERACITY_BENCHDATA/crowd/*`` (or ``../shared/benchdata/crowd``), accuracy on
  the gold tasks, seconds, and the expected calibration error (ECE, 15 equal-width bins) of
  ``confidence`` on the gold tasks; then the same with 10% of each set's gold tasks passed as
  ``gold=`` (3 seeded draws), scored on the other gold tasks, with the ECE a perfectly calibrated
  confidence would show on that many tasks.
* Synthetic crowds from :mod:`benchmarks.synthetic_crowd` (seeded): 3,000 workers, 8 classes,
  5 answers per task, 10% spammers; 20k / 200k / 2M tasks = 100k / 1M / 10M answers. The
  Bayes-optimal accuracy uses the generator's true confusion matrices and class prior.
* crowd-kit runs in its own virtualenv (``benchmarks/.venv-crowdkit``, created from
  ``requirements-crowdkit.txt`` when missing) through ``_crowdkit_runner.py`` in a subprocess, on
  the same CSV files. Whole-process timings: ``veracity aggregate`` CSV -> CSV against that
  script loading the same CSV and running crowd-kit; peak memory is the child's max RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import benchdata_dir, compile_veracity, md_table, write_section
from benchmarks.synthetic_crowd import bayes_posterior, make_crowd
from veracity.errors import ConvergenceWarning
from veracity.quality import aggregate
from veracity.quality.aggregation import GOLD_CALIBRATION_MIN

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "aggregation"
CK_VENV = HERE / ".venv-crowdkit"
CK_PY = CK_VENV / "bin" / "python"
OURS = ["mv", "wmv", "ds", "onecoin", "glad", "mace", "auto"]
CK_ALL = ["MajorityVote", "Wawa", "ZeroBasedSkill", "DawidSkene", "OneCoinDawidSkene", "GLAD", "MACE", "MMSR"]
SECTION = "Truth inference (benchmarks/aggregation.py)"
CK_TIMEOUT = 600.0
SIZES = {"100k": 20_000, "1m": 200_000, "10m": 2_000_000}


def ensure_crowdkit() -> bool:
    """Create benchmarks/.venv-crowdkit with crowd-kit 1.4.2 when it is missing."""
    if CK_PY.exists():
        return True
    print("creating", CK_VENV, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(CK_VENV)], check=True)
        subprocess.run(
            [str(CK_PY), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-crowdkit.txt")], check=True
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        print("crowd-kit environment unavailable:", exc, flush=True)
        return False
    return True


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error with equal-width bins."""
    if conf.size == 0:
        return float("nan")
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def measured(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run ``cmd`` in a fresh wrapper process; wall seconds, peak RSS (MB), stdout lines."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': p.returncode, 'wall': w, 'rss_mb': rss, 'out': p.stdout, 'err': p.stderr[-2000:]}))\n"
    )
    # own session, so that a timeout ends the measured command too, not only the wrapper
    proc = subprocess.Popen(
        [sys.executable, "-c", wrapper, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"rc": "timeout", "wall": timeout, "rss_mb": float("nan"), "out": "", "err": ""}
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"rc": "crash", "wall": float("nan"), "rss_mb": float("nan"), "out": "", "err": res.stderr[-2000:]}


def run_crowdkit(answers: Path, out_dir: Path, methods: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """crowd-kit methods on one CSV, one subprocess per method (so one timeout cannot sink all)."""
    results: dict[str, dict[str, Any]] = {}
    for m in methods:
        r = measured([str(CK_PY), str(HERE / "_crowdkit_runner.py"), str(answers), str(out_dir), m], timeout)
        info: dict[str, Any] = {"wall": r["wall"], "rss_mb": r["rss_mb"], "status": "ok"}
        lines = [ln for ln in r.get("out", "").splitlines() if ln.startswith("{")]
        if r["rc"] != 0 or not lines:
            info["status"] = f"failed ({r['rc']})"
            info["seconds"] = float("nan")
        else:
            row = json.loads(lines[-1])
            info["seconds"] = row["seconds"]
            info["load_seconds"] = row["load_seconds"]
            if row["status"] != "ok":
                info["status"] = row["status"]
        pred = out_dir / f"{m}.csv"
        if info["status"] == "ok" and pred.exists():
            with pred.open(newline="") as fh:
                info["labels"] = {r["task"]: r["label"] for r in csv.DictReader(fh)}
        results[m] = info
        print(f"  crowd-kit {m}: {info['status']} {info['seconds']:.2f}s", flush=True)
    return results


CK_REAL_CACHE: Path | None = None


def cached_crowdkit(name: str) -> dict[str, dict[str, Any]] | None:
    """crowd-kit results of an earlier run of ``_crowdkit_runner.py`` on the same real data set.

    The cache folder holds ``<set>/<Method>.csv`` predictions and ``timings.json``
    (``{set: {method: seconds}}``); a method with no prediction file is reported as not finished.
    """
    assert CK_REAL_CACHE is not None
    folder = CK_REAL_CACHE / name
    timings = json.loads((CK_REAL_CACHE / "timings.json").read_text()).get(name)
    if not folder.exists() or timings is None:
        timings = {}
    out: dict[str, dict[str, Any]] = {}
    for m in CK_ALL:
        pred = folder / f"{m}.csv"
        if pred.exists() and m in timings:
            with pred.open(newline="") as fh:
                labels = {r["task"]: r["label"] for r in csv.DictReader(fh)}
            out[m] = {"seconds": timings[m], "status": "ok", "labels": labels}
        else:
            out[m] = {"seconds": float("nan"), "status": "not finished"}
    return out


def read_answers(path: Path) -> pa.Table:
    opts = pacsv.ConvertOptions(column_types={"worker": pa.string(), "task": pa.string(), "label": pa.string()})
    return pacsv.read_csv(path, convert_options=opts)


def ours_on(table: pa.Table, method: str) -> tuple[Any, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = aggregate(table, method=method, random_state=0)
    return res, time.perf_counter() - t0


def fmt_pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.2f}"


def fmt_s(x: float) -> str:
    return "—" if x != x else (f"{x:.3f}" if x < 1 else f"{x:.2f}")


# ------------------------------------------------------------------------------ real data
GOLD_SHARE = 0.1  # share of a set's gold tasks given to ``aggregate(gold=...)``
GOLD_DRAWS = 3
GOLD_METHODS = ["ds", "onecoin", "mace", "auto"]


def gold_calibration(table: pa.Table, gold: dict[str, str], free: dict[str, Any]) -> dict[str, float]:
    """ECE and accuracy on held-out gold tasks when ``GOLD_SHARE`` of the gold is given as ``gold=``.

    ``GOLD_DRAWS`` seeded draws of the given tasks; every figure is measured on the gold tasks *not*
    given, and ``free:*`` is the gold-free run scored on the same tasks. ``floor`` is the ECE that
    a perfectly calibrated ``ds`` confidence would still show on that many tasks (200 simulated
    outcomes drawn from the confidences themselves): the sampling noise of the metric.
    """
    tasks = np.array(sorted(gold), dtype=object)
    sums: dict[str, list[float]] = {}
    for draw in range(GOLD_DRAWS):
        rng = np.random.default_rng([2026, draw])
        given = set(rng.choice(tasks, size=max(int(GOLD_SHARE * tasks.size), 1), replace=False).tolist())
        for m in GOLD_METHODS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                res = aggregate(table, method=m, random_state=0, gold={t: gold[t] for t in given})
            for key, r in ((m, res), (f"free:{m}", free[m])):
                held = np.array([t in gold and t not in given for t in r.task_ids.tolist()])
                truth = np.array([gold[t] for t in r.task_ids[held].tolist()], dtype=object)
                correct = r.label_values[held].astype(object) == truth
                conf = r.confidence_values[held]
                sums.setdefault(f"ece:{key}", []).append(ece(conf, correct))
                sums.setdefault(f"acc:{key}", []).append(float(correct.mean()))
                if key == "free:ds":
                    sim = np.random.default_rng([7, draw])
                    floor = [ece(conf, sim.random(conf.size) < conf) for _ in range(200)]
                    sums.setdefault("floor", []).append(float(np.mean(floor)))
        sums.setdefault("n_given", []).append(float(len(given)))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def gold_calibration_section(cal: dict[str, dict[str, float]]) -> list[str]:
    names = list(cal)
    if not names:
        return []
    rows = []
    for n in names:
        c = cal[n]
        rows.append(
            [n, f"{c['n_given']:.0f}", fmt_pct(c["floor"])]
            + [f"{fmt_pct(c[f'ece:free:{m}'])} → {fmt_pct(c[f'ece:{m}'])}" for m in GOLD_METHODS]
            + [f"{fmt_pct(c['acc:free:ds'])} → {fmt_pct(c['acc:ds'])}"]
        )
    mean = {k: float(np.mean([cal[n][k] for n in names])) for k in cal[names[0]]}
    rows.append(
        ["**mean**", "", fmt_pct(mean["floor"])]
        + [f"**{fmt_pct(mean[f'ece:free:{m}'])} → {fmt_pct(mean[f'ece:{m}'])}**" for m in GOLD_METHODS]
        + [f"{fmt_pct(mean['acc:free:ds'])} → {fmt_pct(mean['acc:ds'])}"]
    )
    over = [n for n in names if cal[n]["ece:ds"] > 0.05]
    return [
        f"### Real data sets: calibration with {int(100 * GOLD_SHARE)}% of the gold tasks given as `gold=` (%)",
        "",
        f"{GOLD_DRAWS} seeded draws per set of {int(100 * GOLD_SHARE)}% of its gold tasks (column `given`, mean) "
        "passed as `gold=`; ECE and accuracy are measured on the *other* gold tasks, gold-free → with gold, "
        f"both on those same tasks. With at least {GOLD_CALIBRATION_MIN} gold tasks the posterior temperature is "
        "fitted on the gold tasks' out-of-fold posteriors instead of on held-out answers. `floor`: mean ECE of a "
        "perfectly calibrated confidence on that many tasks (sampling noise of the metric).",
        "",
        md_table(["data set", "given", "floor", *[f"ECE {m}" for m in GOLD_METHODS], "accuracy ds"], rows),
        "",
        f"- Mean ECE of `ds` with {int(100 * GOLD_SHARE)}% gold: {fmt_pct(mean['ece:ds'])}% "
        f"(gold-free on the same tasks: {fmt_pct(mean['ece:free:ds'])}%); sets above 5%: "
        + (", ".join(f"{n} {fmt_pct(cal[n]['ece:ds'])} (floor {fmt_pct(cal[n]['floor'])})" for n in over) or "none")
        + ".",
        "",
    ]


def real_data(use_ck: bool) -> str:
    root = benchdata_dir() / "crowd"
    sets = sorted(p for p in root.iterdir() if (p / "answers.csv").exists()) if root.exists() else []
    if not sets:
        return "_No real data sets found (set VERACITY_BENCHDATA)._"
    acc: dict[str, dict[str, float]] = {}
    secs: dict[str, dict[str, float]] = {}
    eces: dict[str, dict[str, float]] = {}
    gold_cal: dict[str, dict[str, float]] = {}
    for d in sets:
        print("real:", d.name, flush=True)
        table = read_answers(d / "answers.csv")
        with (d / "gold.csv").open(newline="") as fh:
            gold = {r["task"]: r["label"] for r in csv.DictReader(fh)}
        acc[d.name], secs[d.name], eces[d.name] = {}, {}, {}
        free: dict[str, Any] = {}
        for m in OURS:
            res, s = ours_on(table, m)
            free[m] = res
            tasks = res.task_ids.tolist()
            mask = np.array([t in gold for t in tasks])
            truth = np.array([gold[t] for t in res.task_ids[mask].tolist()], dtype=object)
            correct = res.label_values[mask].astype(object) == truth
            acc[d.name][m] = float(correct.mean())
            secs[d.name][m] = s
            eces[d.name][m] = ece(res.confidence_values[mask], correct)
        gold_cal[d.name] = gold_calibration(table, gold, free)
        if use_ck:
            ck = cached_crowdkit(d.name) if CK_REAL_CACHE else None
            if ck is None:
                ck = run_crowdkit(d / "answers.csv", WORK / "ck_real" / d.name, CK_ALL, CK_TIMEOUT)
            for m, info in ck.items():
                labels = info.get("labels")
                if labels is None:
                    acc[d.name][f"ck:{m}"] = float("nan")
                else:
                    ks = [t for t in gold if t in labels]
                    acc[d.name][f"ck:{m}"] = float(np.mean([labels[t] == gold[t] for t in ks]))
                secs[d.name][f"ck:{m}"] = info["seconds"]
    cols = OURS + ([f"ck:{m}" for m in CK_ALL] if use_ck else [])
    note = []
    if use_ck and CK_REAL_CACHE is not None:
        note = [
            "crowd-kit's real-data columns reuse predictions and fit seconds from an earlier run of "
            "`_crowdkit_runner.py` today on the same files (`--ck-real-cache`): the full crowd-kit sweep over "
            "the real sets takes more than an hour on this shared machine. Methods that had not finished "
            "within 15 minutes per data set show —.",
            "",
        ]
    names = list(acc)
    rows = [[n, *[fmt_pct(acc[n].get(c, float("nan"))) for c in cols]] for n in names]
    means = {c: float(np.nanmean([acc[n].get(c, float("nan")) for n in names])) for c in cols}
    rows.append(["**mean**", *[f"**{fmt_pct(means[c])}**" for c in cols]])
    out = [*note, "### Real data sets: accuracy on gold tasks (%)", "", md_table(["data set", *cols], rows), ""]
    srows = [[n, *[fmt_s(secs[n].get(c, float("nan"))) for c in cols]] for n in names]
    out += ["### Real data sets: seconds (fit only; data already loaded)", "", md_table(["data set", *cols], srows), ""]
    erows = [[n, *[fmt_pct(eces[n][m]) for m in OURS]] for n in names]
    mean_ece = {m: float(np.nanmean([eces[n][m] for n in names])) for m in OURS}
    erows.append(["**mean**", *[f"**{fmt_pct(mean_ece[m])}**" for m in OURS]])
    out += ["### Real data sets: expected calibration error of `confidence` on gold tasks (%)", ""]
    out += [md_table(["data set", *OURS], erows), ""]
    out += gold_calibration_section(gold_cal)
    if use_ck:
        diffs = [(n, acc[n]["ds"] - acc[n]["ck:DawidSkene"]) for n in names]
        worst = min(diffs, key=lambda x: x[1])
        ok = sum(1 for _, dlt in diffs if dlt >= -0.005)
        paired: list[tuple[str, float, int]] = []
        for m in CK_ALL:
            done = [n for n in names if acc[n][f"ck:{m}"] == acc[n][f"ck:{m}"]]
            if done:
                gap = float(np.mean([acc[n]["auto"] - acc[n][f"ck:{m}"] for n in done]))
                paired.append((m, gap, len(done)))
        closest = min(paired, key=lambda x: x[1]) if paired else ("—", float("nan"), 0)
        beaten = sum(1 for _, gap, _ in paired if gap > 0)
        partial = [m for m, _, k in paired if k < len(names)]
        why = (
            f" ({', '.join(partial)} did not finish on some sets, so their plain means cover other sets "
            "and are not comparable)"
            if partial
            else ""
        )
        out += [
            "### Accuracy targets on real data",
            "",
            f"- `ds` vs crowd-kit DawidSkene: within 0.5 points or better on {ok} of {len(names)} data sets; "
            f"worst {worst[0]} ({100 * worst[1]:+.2f} points). Per set: "
            + ", ".join(f"{n} {100 * dlt:+.2f}" for n, dlt in diffs)
            + ".",
            "- `auto` vs every crowd-kit method, paired: for each method, `auto`'s mean accuracy minus the "
            f"method's, both over the data sets where that method finished{why}. "
            f"`auto` beats {beaten} of {len(paired)} methods; closest {closest[0]} "
            f"({100 * closest[1]:+.2f} points). Per method: "
            + "; ".join(f"{m} {100 * gap:+.2f} ({k} sets)" for m, gap, k in paired)
            + f". `auto`'s mean over all {len(names)} sets: {fmt_pct(means['auto'])}%.",
            "- Mean ECE: "
            + ", ".join(f"{m} {fmt_pct(mean_ece[m])}%" for m in OURS)
            + "; sets with `ds` ECE > 5%: "
            + (", ".join(n for n in names if eces[n]["ds"] > 0.05) or "none")
            + ".",
            "",
        ]
    return "\n".join(out)


# ------------------------------------------------------------------------------ synthetic
def write_crowd_csv(crowd: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "worker": pa.array(np.char.add("w", crowd.worker_idx.astype(str))),
            "task": pa.array(np.char.add("t", crowd.task_idx.astype(str))),
            "label": pa.array(crowd.label),
        }
    )
    pacsv.write_csv(table, path)


def synthetic(size: str, use_ck: bool) -> tuple[str, dict[str, Any]]:
    n_tasks = SIZES[size]
    print("synthetic:", size, flush=True)
    crowd = make_crowd(n_tasks, 3000, 8, 5, spammer_frac=0.1, seed=7)
    truth = crowd.true_labels
    bayes = bayes_posterior(crowd)
    bayes_acc = float((bayes.argmax(axis=1) == truth).mean())
    bayes_ece = ece(bayes.max(axis=1), bayes.argmax(axis=1) == truth)
    path = WORK / f"crowd_{size}.csv"
    write_crowd_csv(crowd, path)
    table = read_answers(path)
    methods = {"100k": OURS, "1m": ["mv", "wmv", "ds", "onecoin", "mace", "auto"], "10m": ["mv", "ds"]}[size]
    rows: list[list[Any]] = [["Bayes-optimal (true parameters)", fmt_pct(bayes_acc), fmt_pct(bayes_ece), "—", "—"]]
    facts: dict[str, Any] = {"bayes": bayes_acc}
    true_of = {f"t{i}": int(v) for i, v in enumerate(truth.tolist())} if size != "10m" else None
    for m in methods:
        res, s = ours_on(table, m)
        pred = res.label_values.astype(np.int64)
        tid = np.char.lstrip(res.task_ids.astype(str), "t").astype(np.int64)
        correct = pred == truth[tid]
        a = float(correct.mean())
        facts[m] = {"acc": a, "seconds": s}
        rows.append([f"veracity {m}", fmt_pct(a), fmt_pct(ece(res.confidence_values, correct)), fmt_s(s), "—"])
        print(f"  ours {m}: {a:.4f} {s:.2f}s", flush=True)
        del res
    ck_methods = {"100k": ["MajorityVote", "Wawa", "DawidSkene"], "1m": ["MajorityVote", "DawidSkene"], "10m": []}[size]
    if use_ck and ck_methods and true_of is not None:
        ck = run_crowdkit(path, WORK / f"ck_{size}", ck_methods, CK_TIMEOUT)
        for m, info in ck.items():
            labels = info.get("labels")
            a = float(np.mean([int(labels[t]) == v for t, v in true_of.items()])) if labels else float("nan")
            facts[f"ck:{m}"] = {
                "acc": a,
                "seconds": info["seconds"],
                "rss_mb": info["rss_mb"],
                "status": info["status"],
            }
            rows.append([f"crowd-kit {m}", fmt_pct(a), "—", fmt_s(info["seconds"]), f"{info['rss_mb']:.0f}"])
    text = [
        f"### Synthetic crowd {size}: {crowd.n_tasks:,} tasks, {crowd.n_workers:,} workers, 8 classes, "
        f"{crowd.task_idx.shape[0]:,} answers (seed 7)",
        "",
        md_table(["method", "accuracy %", "ECE %", "fit seconds", "peak MB (whole process)"], rows),
        "",
    ]
    if size in ("1m", "10m"):
        text += whole_process(path, size, use_ck and size == "1m", facts)
    return "\n".join(text), facts


def whole_process(path: Path, size: str, use_ck: bool, facts: dict[str, Any]) -> list[str]:
    veracity = Path(sys.executable).with_name("veracity")
    out = WORK / f"labels_{size}.csv"
    compiled = compile_veracity()
    r = measured([str(veracity), "aggregate", str(path), "--method", "ds", "--out", str(out), "--json"], 3600)
    facts["cli"] = r
    rows = [[f"`veracity aggregate --method ds` ({r['rc']})", fmt_s(r["wall"]), f"{r['rss_mb']:.0f}"]]
    if use_ck:
        c = measured(
            [str(CK_PY), str(HERE / "_crowdkit_runner.py"), str(path), str(WORK / "ck_whole"), "DawidSkene"], CK_TIMEOUT
        )
        facts["ck_whole"] = c
        rows.append([f"crowd-kit DawidSkene script ({c['rc']})", fmt_s(c["wall"]), f"{c['rss_mb']:.0f}"])
    lines = [
        f"Whole processes, CSV -> CSV ({size}): wall seconds include interpreter start, imports, reading and writing. "
        + compiled,
        "",
        md_table(["process", "wall seconds", "peak MB"], rows),
        "",
    ]
    if use_ck:
        cw = facts["ck_whole"]
        if cw["rc"] == 0:
            lines.append(f"Speed-up, whole process: {cw['wall'] / r['wall']:.1f}x.")
        else:
            lines.append(
                f"crowd-kit's whole process did not finish within {CK_TIMEOUT:.0f} s: "
                f"speed-up at least {CK_TIMEOUT / r['wall']:.1f}x."
            )
        ck_ds = facts.get("ck:DawidSkene", {}).get("seconds", float("nan"))
        if "ds" in facts:
            if ck_ds == ck_ds:
                lines.append(f"Speed-up, in-process fit (ds vs DawidSkene): {ck_ds / facts['ds']['seconds']:.1f}x.")
            else:
                lines.append(
                    f"crowd-kit DawidSkene did not finish within {CK_TIMEOUT:.0f} s in-process: speed-up at least "
                    f"{CK_TIMEOUT / facts['ds']['seconds']:.1f}x."
                )
        lines.append("")
    return lines


def save_part(key: str, text: str) -> None:
    stamp = time.strftime("%H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    (WORK / f"part_{key}.md").write_text(f"{text}\n_(part measured at {stamp}; load average {load})_\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="real data and the 100k crowd only")
    ap.add_argument("--no-crowdkit", action="store_true", help="skip the crowd-kit side")
    ap.add_argument("--sizes", default=None, help="comma list of 100k,1m,10m (default all; --quick: 100k)")
    ap.add_argument("--no-real", action="store_true", help="skip the real data sets")
    ap.add_argument("--ck-real-cache", type=Path, default=None, help="reuse crowd-kit real-data predictions")
    args = ap.parse_args()
    global CK_REAL_CACHE
    CK_REAL_CACHE = args.ck_real_cache
    use_ck = not args.no_crowdkit and ensure_crowdkit()
    sizes = args.sizes.split(",") if args.sizes else (["100k"] if args.quick else ["100k", "1m", "10m"])
    sizes = [x for x in sizes if x in SIZES]
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = [
        "Veracity (this repository) against crowd-kit 1.4.2 (own venv, pandas<3, scikit-learn<1.6) on the same "
        "inputs. Each part below measures both libraries in one invocation (its time stamp is at its end); parts "
        "can be rerun alone (`--sizes`, `--no-real`). The machine is shared (2 cores; each part gives the load "
        "average when it ended), so absolute seconds are noisy; compare within a part.",
        "",
    ]
    if not args.no_real:
        save_part("real", real_data(use_ck))
    for size in sizes:
        text, _ = synthetic(size, use_ck)
        save_part(size, text)
    # a section is assembled from the latest saved part of each kind, so parts can be rerun alone
    for key in ("real", "100k", "1m", "10m"):
        part = WORK / f"part_{key}.md"
        if part.exists():
            parts.append(part.read_text())
    if not args.no_real or sizes:
        parts.append(
            f"_Last benchmark invocation: {time.perf_counter() - started:.0f} s; max RSS of this driver "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB._"
        )
    body = "\n".join(parts)
    write_section(SECTION, body)
    print(body)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
