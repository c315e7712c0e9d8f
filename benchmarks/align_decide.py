"""Align and decide: Veracity against alibi-detect and MAPIE, side by side in one run.

    .venv/bin/python benchmarks/align_decide.py [--quick] [--phase PHASE]   # PHASE: see --help

Peers live in their own venvs (gitignored, created from the requirements files when missing) and
run in subprocesses of this same file (``--peer alibi|mapie``), so that numpy<2/TensorFlow never
meet the project venv:

- ``benchmarks/.venv-alibi``: alibi-detect 0.13 (KSDrift, ChiSquareDrift, TabularDrift, MMDDrift
  with the TensorFlow backend).
- ``benchmarks/.venv-mapie``: MAPIE 1.6 (SplitConformalClassifier with LAC, APS, RAPS).

1. Drift. Seeded synthetic data, d = 10 (9 numeric features ``x0..x8`` and one categorical ``cat``
   with 5 levels), two latent classes (class 1 shifts ``x0..x2`` by 0.6 sd and reverses the
   category frequencies), 1,000 reference and 1,000 current rows. Shifts of the current rows:
   none; mean +0.2 sd in ``x5, x6``; variance x1.5 in ``x7, x8``; a new cluster making 10% of the
   rows; class prior 50/50 -> 80/20; categorical (7 points of mass moved from level ``a`` to
   ``e``). False-positive rate (shift "none") and power at alpha = 0.05, seconds per test.
   MMD-type tests see the 9 numeric features and the one-hot category (alibi: standardised with
   the reference statistics, as a user would).
2. Conformal. ``$VERACITY_BENCHDATA/label_errors/*/pred_probs.npy`` + ``labels.npy``
   (cross-validated probabilities; rows renormalised), 50/50 calibration/test over seeded random
   splits, coverage 90% and 95%: mean and worst-split coverage, mean set size, empty-set rate,
   worst class coverage, coverage per difficulty bin (quintiles of 1 - max p), median CPU seconds per split.
3. Decision policy. The same probabilities and splits through ``DecisionPolicy`` with and without
   ``calibration="temperature"``: fitted temperature, expected calibration error of the test
   items' probabilities, LAC set size and coverage, and the auto-accept rate and error at a 0.9
   threshold (Veracity only: the peers have no decision policy).

Generated data goes to ``benchmarks/_work/align_decide`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "align_decide"
SECTION = "Align and decide (benchmarks/align_decide.py)"
ALPHA = 0.05
SHIFTS = ("none", "mean", "variance", "cluster", "prior", "categorical")
LEVELS = np.array(["a", "b", "c", "d", "e"])
N_NUM = 9
CAT_P = np.array([[0.30, 0.25, 0.20, 0.15, 0.10], [0.10, 0.15, 0.20, 0.25, 0.30]])
COVERAGES = (0.9, 0.95)
N_BINS = 5


# ---- shared by every process (numpy only) ------------------------------------------------------
def make_rows(rng: np.random.Generator, n: int, shift: str = "none", current: bool = False) -> tuple[Any, Any]:
    """``n`` rows: numeric (n, 9) and category codes (n,), with ``shift`` applied when ``current``."""
    p0 = 0.8 if (current and shift == "prior") else 0.5
    y = (rng.random(n) >= p0).astype(np.int64)
    x = rng.normal(size=(n, N_NUM))
    x[:, :3] += 0.6 * y[:, None]
    x[:, 4] = 0.6 * x[:, 3] + 0.8 * x[:, 4]  # some correlation
    cat_p = CAT_P[y]
    if current and shift == "categorical":
        cat_p = cat_p + np.array([-0.07, 0.0, 0.0, 0.0, 0.07])
    cat = (rng.random(n)[:, None] > np.cumsum(cat_p, axis=1)).sum(axis=1)
    if current and shift == "mean":
        x[:, 5:7] += 0.2
    if current and shift == "variance":
        x[:, 7:9] *= np.sqrt(1.5)
    if current and shift == "cluster":
        k = n // 10
        x[:k] = 0.5 * rng.normal(size=(k, N_NUM))
        x[:k, 0] += 1.5
        x[:k, 5] -= 1.5
    return x, np.minimum(cat, 4)


def set_metrics(sets: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Coverage, size, empty rate (raw and with empty sets filled by the top label), class and bin coverage."""
    n, k = sets.shape
    rows = np.arange(n)
    top = probs.argmax(axis=1)
    filled = sets.copy()
    empty = ~sets.any(axis=1)
    filled[rows[empty], top[empty]] = True
    hit = sets[rows, labels]
    hit_f = filled[rows, labels]
    counts = np.bincount(labels, minlength=k)
    present = counts > 0
    cls_cov = np.bincount(labels, weights=hit_f.astype(float), minlength=k)[present] / counts[present]
    difficulty = 1.0 - probs.max(axis=1)
    edges = np.quantile(difficulty, np.linspace(0, 1, N_BINS + 1))
    idx = np.clip(np.searchsorted(edges, difficulty, side="right") - 1, 0, N_BINS - 1)
    bc = np.maximum(np.bincount(idx, minlength=N_BINS), 1)
    return {
        "coverage": float(hit.mean()),
        "size": float(sets.sum(axis=1).mean()),
        "empty": float(empty.mean()),
        "coverage_filled": float(hit_f.mean()),
        "size_filled": float(filled.sum(axis=1).mean()),
        "worst_class": float(cls_cov.min()),
        "bins": (np.bincount(idx, weights=hit_f.astype(float), minlength=N_BINS) / bc).tolist(),
    }


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


# ---- peers: these run inside the peer venvs --------------------------------------------------
def peer_alibi(data: Path, out: Path, mmd_trials: int) -> None:
    _quiet_tf()
    import warnings

    warnings.filterwarnings("ignore")
    import alibi_detect
    from alibi_detect.cd import ChiSquareDrift, KSDrift, MMDDrift, TabularDrift

    d = np.load(data)
    result: dict[str, Any] = {"version": alibi_detect.__version__, "numpy": np.__version__, "shifts": {}}
    for shift in SHIFTS:
        xr, cr, xc, cc = d[f"{shift}_xr"], d[f"{shift}_cr"], d[f"{shift}_xc"], d[f"{shift}_cc"]
        trials = xr.shape[0]
        res: dict[str, dict[str, float]] = {}
        hits = {"KSDrift (numeric)": 0, "ChiSquareDrift (cat)": 0, "TabularDrift (KS+chi2)": 0, "MMDDrift": 0}
        secs = dict.fromkeys(hits, 0.0)
        n_done = dict.fromkeys(hits, 0)
        mmd_times: list[float] = []
        for t in range(trials):
            tab_r = np.column_stack([xr[t], cr[t]]).astype(np.float32)
            tab_c = np.column_stack([xc[t], cc[t]]).astype(np.float32)
            t0 = time.perf_counter()
            ks = KSDrift(xr[t].astype(np.float32), p_val=ALPHA).predict(xc[t].astype(np.float32))
            secs["KSDrift (numeric)"] += time.perf_counter() - t0
            hits["KSDrift (numeric)"] += int(ks["data"]["is_drift"])
            t0 = time.perf_counter()
            ch = ChiSquareDrift(cr[t][:, None].astype(np.float32), p_val=ALPHA).predict(
                cc[t][:, None].astype(np.float32)
            )
            secs["ChiSquareDrift (cat)"] += time.perf_counter() - t0
            hits["ChiSquareDrift (cat)"] += int(ch["data"]["is_drift"])
            t0 = time.perf_counter()
            tb = TabularDrift(tab_r, p_val=ALPHA, categories_per_feature={N_NUM: None}).predict(tab_c)
            secs["TabularDrift (KS+chi2)"] += time.perf_counter() - t0
            hits["TabularDrift (KS+chi2)"] += int(tb["data"]["is_drift"])
            for key in ("KSDrift (numeric)", "ChiSquareDrift (cat)", "TabularDrift (KS+chi2)"):
                n_done[key] += 1
            if t < mmd_trials:
                mu, sd = xr[t].mean(0), xr[t].std(0)
                er = np.hstack([(xr[t] - mu) / sd, np.eye(5)[cr[t]] / np.sqrt(2)]).astype(np.float32)
                ec = np.hstack([(xc[t] - mu) / sd, np.eye(5)[cc[t]] / np.sqrt(2)]).astype(np.float32)
                t0 = time.perf_counter()
                mmd = MMDDrift(er, backend="tensorflow", p_val=ALPHA, n_permutations=100).predict(ec)
                mmd_times.append(time.perf_counter() - t0)
                secs["MMDDrift"] += mmd_times[-1]
                hits["MMDDrift"] += int(mmd["data"]["is_drift"])
                n_done["MMDDrift"] += 1
        for key in hits:
            if n_done[key]:
                res[key] = {"rate": hits[key] / n_done[key], "trials": n_done[key], "seconds": secs[key] / n_done[key]}
        if mmd_times:
            res["MMDDrift"]["median_seconds"] = float(np.median(mmd_times))
        result["shifts"][shift] = res
        print(f"alibi {shift}: {res}", file=sys.stderr, flush=True)
    out.write_text(json.dumps(result))


class _Lookup:
    """A prefit scikit-learn classifier that returns stored probabilities for row indices.

    ``prepared`` maps the bytes of an index array to its rows, gathered before the timer starts,
    so that MAPIE's timing, like Veracity's, holds the conformal work and not the harness's gather
    of 5,000 rows (page faults included, up to ~1 ms per side for CIFAR-100).
    """

    def __init__(self, probs: np.ndarray | None = None) -> None:
        self.probs = probs
        self.prepared: dict[bytes, np.ndarray] = {}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"probs": self.probs}

    def set_params(self, **params: Any) -> _Lookup:
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, x: Any, y: Any) -> _Lookup:
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        assert self.probs is not None
        idx = np.asarray(x).ravel().astype(np.int64)
        hit = self.prepared.get(idx.tobytes())
        return hit if hit is not None else np.take(self.probs, idx, axis=0)

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def peer_mapie(data: Path, out: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import mapie
    from mapie.classification import SplitConformalClassifier
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Lookup(ClassifierMixin, BaseEstimator, _Lookup):  # type: ignore[misc]
        pass

    d = np.load(data)
    probs, labels, splits = d["probs"], d["labels"], d["splits"]
    k = probs.shape[1]
    est = Lookup(probs)
    est.classes_ = np.arange(k)
    half = probs.shape[0] // 2
    result: dict[str, Any] = {"version": mapie.__version__, "numpy": np.__version__, "runs": {}}
    for cov in COVERAGES:
        for score in ("lac", "aps", "raps"):
            key = f"{score}@{cov}"
            per_split: list[dict[str, Any]] = []
            error = None
            for s in range(splits.shape[0]):
                cal, test = splits[s, :half], splits[s, half:]
                est.prepared = {i.tobytes(): np.take(probs, i, axis=0) for i in (cal, test)}
                y_cal = labels[cal]
                try:
                    t0 = time.process_time()
                    clf = SplitConformalClassifier(
                        estimator=est, confidence_level=cov, conformity_score=score, prefit=True, random_state=s
                    )
                    clf.conformalize(cal[:, None], y_cal)
                    _, sets = clf.predict_set(test[:, None])
                    secs = time.process_time() - t0
                except Exception as exc:  # a peer refusing an input is a result, not a crash
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                    break
                m = set_metrics(np.asarray(sets[:, :, 0], dtype=bool), labels[test], probs[test])
                m["seconds"] = secs
                per_split.append(m)
            result["runs"][key] = {"splits": per_split, "error": error}
    out.write_text(json.dumps(result))


# ---- orchestration (project venv) -------------------------------------------------------------
def ensure_venv(name: str, requirements: str) -> Path:
    venv = HERE / f".venv-{name}"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} from {requirements} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(HERE / requirements)], check=True)
    return py


def run_peer(py: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run([str(py), str(Path(__file__).resolve()), *args], check=True, env=env, cwd=str(ROOT))


def drift_data(trials: int, power_trials: int) -> Path:
    """Generate (or reuse) the seeded drift trials; returns the .npz path."""
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"drift_{trials}_{power_trials}.npz"
    if data.exists():
        return data
    arrays: dict[str, np.ndarray] = {}
    for si, shift in enumerate(SHIFTS):
        n_t = trials if shift == "none" else power_trials
        xr, cr, xc, cc = [], [], [], []
        for t in range(n_t):
            rng = np.random.default_rng([2026, si, t])
            a, b = make_rows(rng, 1000)
            c, e = make_rows(rng, 1000, shift, current=True)
            xr.append(a)
            cr.append(b)
            xc.append(c)
            cc.append(e)
        arrays[f"{shift}_xr"], arrays[f"{shift}_cr"] = np.array(xr), np.array(cr)
        arrays[f"{shift}_xc"], arrays[f"{shift}_cc"] = np.array(xc), np.array(cc)
    tmp = data.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.rename(data)
    return data


def drift_veracity(data: Path, mmd_trials: int) -> dict[str, Any]:
    """Run Veracity's tests on every trial; returns rates, trial counts and seconds per test."""
    from veracity.align import detect_drift

    arrays = np.load(data)
    ours: dict[str, Any] = {}
    for shift in SHIFTS:
        xr, cr, xc, cc = (arrays[f"{shift}_{s}"] for s in ("xr", "cr", "xc", "cc"))
        res: dict[str, dict[str, float]] = {}
        for method, n_max in (("auto", xr.shape[0]), ("univariate", xr.shape[0]), ("mmd", mmd_trials)):
            hits, secs, n = 0, 0.0, min(n_max, xr.shape[0])
            times: list[float] = []
            for t in range(n):
                ref = {**{f"x{j}": xr[t][:, j] for j in range(N_NUM)}, "cat": LEVELS[cr[t]]}
                cur = {**{f"x{j}": xc[t][:, j] for j in range(N_NUM)}, "cat": LEVELS[cc[t]]}
                t0 = time.perf_counter()
                rep = detect_drift(ref, cur, method, ALPHA, n_clusters=0, random_state=t)
                times.append(time.perf_counter() - t0)
                secs += times[-1]
                hits += int(rep.drift)
            res[method] = {"rate": hits / n, "trials": n, "seconds": secs / n,
                           "median_seconds": float(np.median(times))}
        ours[shift] = res
        print(f"veracity {shift}: {res}", flush=True)
    # one full report (slices + HTML) for the timing line
    xr, cr, xc, cc = (arrays[f"cluster_{s}"][0] for s in ("xr", "cr", "xc", "cc"))
    t0 = time.perf_counter()
    rep = detect_drift(
        {**{f"x{j}": xr[:, j] for j in range(N_NUM)}, "cat": LEVELS[cr]},
        {**{f"x{j}": xc[:, j] for j in range(N_NUM)}, "cat": LEVELS[cc]},
        random_state=0,
    )
    html_kb = len(rep.to_html()) / 1024
    return {
        "shifts": ours,
        "numpy": np.__version__,
        "full_report_seconds": time.perf_counter() - t0,
        "html_kb": html_kb,
        "top_slice": rep.slices[0].description if rep.slices else "none",
    }


def _wilson(rate: float, n: int) -> str:
    z = 1.96
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"[{max(centre - half, 0):.2f}, {min(centre + half, 1):.2f}]"


def drift_section(ours_all: dict[str, Any], alibi: dict[str, Any]) -> str:
    from benchmarks._results import md_table

    ours = ours_all["shifts"]
    rows = []
    names: list[tuple[str, dict[str, Any] | None, str]] = [
        ("Veracity auto (weighted min-p permutation test: KS, chi2, moments, MMD)", ours, "auto"),
        ("Veracity univariate (KS/chi2, Holm)", ours, "univariate"),
        ("Veracity MMD only (99 permutations)", ours, "mmd"),
    ]
    names += [(f"alibi {k}", None, k) for k in ("TabularDrift (KS+chi2)", "KSDrift (numeric)", "ChiSquareDrift (cat)")]
    names += [("alibi MMDDrift (TensorFlow, 100 permutations)", None, "MMDDrift")]
    for label, src, key in names:
        row: list[Any] = [label]
        all_r = [(src.get(s, {}) if src is not None else alibi["shifts"].get(s, {})).get(key) for s in SHIFTS]
        for r in all_r:
            row.append("–" if r is None else f"{r['rate']:.3f} ({r['trials']})")
        secs = [r["seconds"] for r in all_r if r]
        row.append(f"{np.mean(secs):.3f}" if secs else "–")
        rows.append(row)
    table = md_table(["method", *SHIFTS, "s/test"], rows)

    fpr = ours["none"]["auto"]["rate"]
    n_fpr = ours["none"]["auto"]["trials"]
    missing = [s for s in SHIFTS if s not in ours or s not in alibi["shifts"]]
    alibi_mmd = {s: alibi["shifts"].get(s, {}).get("MMDDrift") for s in SHIFTS}
    compare = []
    power_ok = True
    for s in SHIFTS[1:]:
        a = alibi_mmd[s]
        if s not in ours:
            compare.append(f"{s}: not finished in time")
            continue
        o = ours[s]["auto"]
        if a is None:
            compare.append(f"{s}: Veracity {o['rate']:.2f}, alibi MMD not run")
            continue
        power_ok = power_ok and o["rate"] >= a["rate"]
        compare.append(
            f"{s}: Veracity {o['rate']:.2f} {_wilson(o['rate'], o['trials'])} vs alibi MMD {a['rate']:.2f} "
            f"{_wilson(a['rate'], a['trials'])}"
        )
    # medians of the per-test times where recorded (robust to a stray busy second), else means
    mmd_secs = float(np.mean([r.get("median_seconds", r["seconds"]) for r in alibi_mmd.values() if r]))
    our_secs = float(np.mean([ours[s]["auto"].get("median_seconds", ours[s]["auto"]["seconds"])
                              for s in SHIFTS if s in ours]))
    speedup = mmd_secs / our_secs
    fpr_se = math.sqrt(ALPHA * (1 - ALPHA) / n_fpr)
    n_mmd = max((r["trials"] for r in alibi_mmd.values() if r), default=0)
    lines = [
        f"alibi-detect {alibi['version']} (numpy {alibi['numpy']}, TensorFlow backend) in its own venv, run "
        f"first and alone, then Veracity (numpy {ours_all['numpy']}), on the same seeded trials in one benchmark "
        f"run (running them side by side on 2 cores made two thread pools fight and slowed both several-fold). "
        f"Cells: detection rate at alpha = {ALPHA} (trials). Column `none` is the false-positive rate; the "
        "others are power. `s/test` is the mean time per test.",
        "",
        table,
        "",
        f"- False-positive rate of `detect_drift` (auto): **{fpr:.3f}** over {n_fpr} trials (binomial s.e. at "
        f"0.05: {fpr_se:.3f}); target <= 0.06: **{'met' if fpr <= 0.06 else 'missed'}**.",
        f"- Power >= alibi MMDDrift on every shift: **{'met' if power_ok else 'missed'}** on the point estimates; "
        f"alibi MMDDrift ran {n_mmd} trials per shift; 95% Wilson intervals: "
        + "; ".join(compare)
        + ".",
        f"- Seconds per test (median over the trials of each shift, averaged over shifts): Veracity auto "
        f"{our_secs:.3f} s, alibi MMDDrift {mmd_secs:.2f} s: **{speedup:.0f}x** faster; target >= 20x: "
        f"**{'met' if speedup >= 20 else 'missed'}**.",
    ]
    if "html_kb" in ours_all:
        lines.append(
            f"- A full report with coverage slices (k-means, 8 clusters) and the HTML page ({ours_all['html_kb']:.0f} "
            f"KiB) takes {ours_all['full_report_seconds']:.2f} s; on the new-cluster shift the top slice is "
            f"`{ours_all['top_slice']}` (the cluster was placed at x0 +1.5, x5 -1.5)."
        )
    if missing:
        lines.append(f"- Not finished within this run's time budget: {', '.join(missing)}.")
    return "\n".join(lines)


def load_benchdata() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from benchmarks._results import benchdata_dir

    base = benchdata_dir() / "label_errors"
    out = {}
    for ds in ("mnist", "cifar10", "cifar100", "20news", "imdb"):
        p = base / ds / "pred_probs.npy"
        if not p.exists():
            continue
        probs = np.load(p).astype(np.float64)
        probs = np.clip(probs, 0, None)
        probs /= probs.sum(axis=1, keepdims=True)
        out[ds] = (probs, np.load(base / ds / "labels.npy").astype(np.int64))
    return out


def conformal_benchmark(n_splits: int, *, reuse_peer: bool = False) -> str:
    from benchmarks._results import md_table
    from veracity.decide import SplitConformal

    WORK.mkdir(parents=True, exist_ok=True)
    data = load_benchdata()
    if not data:
        return "Conformal: no benchmark data found (set $VERACITY_BENCHDATA)."
    py = ensure_venv("mapie", "requirements-mapie.txt")
    rows: list[list[Any]] = []
    bin_rows: list[list[Any]] = []
    verdicts: list[str] = []
    mapie_version = "?"
    for ds, (probs, labels) in data.items():
        n = probs.shape[0]
        half = n // 2
        splits = np.array([np.random.default_rng([7, s]).permutation(n) for s in range(n_splits)], dtype=np.int64)
        path = WORK / f"conformal_{ds}.npz"
        out = WORK / f"mapie_{ds}.json"
        fresh = out.exists() and path.exists() and out.stat().st_mtime > path.stat().st_mtime
        if reuse_peer and fresh and len(json.loads(out.read_text())["runs"]["lac@0.9"]["splits"]) == n_splits:
            print(f"reusing {out}", flush=True)
        elif reuse_peer:
            print(f"skipping {ds}: no finished MAPIE run to reuse", flush=True)
            continue
        else:
            np.savez(path, probs=probs, labels=labels, splits=splits)
            run_peer(py, ["--peer", "mapie", "--data", str(path), "--out", str(out)])
        mapie = json.loads(out.read_text())
        mapie_version = mapie["version"]
        acc = float((probs.argmax(1) == labels).mean())
        for cov in COVERAGES:
            ours: dict[str, list[dict[str, Any]]] = {}
            for score in ("lac", "aps", "raps"):
                runs = []
                for s in range(n_splits):
                    cal, test = splits[s, :half], splits[s, half:]
                    # rows gathered before the timer, as for MAPIE (see _Lookup)
                    p_cal, y_cal, p_test = np.take(probs, cal, axis=0), labels[cal], np.take(probs, test, axis=0)
                    t0 = time.process_time()
                    cp = SplitConformal(cov, score=score, random_state=s).fit(p_cal, y_cal)
                    sets = cp.predict_sets(p_test)
                    secs = time.process_time() - t0
                    m = set_metrics(sets, labels[test], probs[test])
                    m["seconds"] = secs
                    runs.append(m)
                ours[score] = runs

            def summary(runs: list[dict[str, Any]], filled: bool) -> dict[str, float]:
                c = np.array([r["coverage_filled" if filled else "coverage"] for r in runs])
                return {
                    "mean": float(c.mean()),
                    "worst": float(c.min()),
                    "size": float(np.mean([r["size_filled" if filled else "size"] for r in runs])),
                    "empty": float(np.mean([r["empty"] for r in runs])) if not filled else 0.0,
                    "max_empty": float(np.max([r["empty"] for r in runs])),
                    "worst_class": float(np.mean([r["worst_class"] for r in runs])),
                    # CPU seconds (process_time, both sides), median over splits: robust to the
                    # pauses of a shared machine
                    "seconds": float(np.median([r["seconds"] for r in runs])),
                    "bins": np.mean([r["bins"] for r in runs], axis=0).tolist(),
                }

            entries: list[tuple[str, dict[str, float] | None, str | None]] = []
            for score in ("lac", "aps", "raps"):
                entries.append((f"Veracity {score.upper()}", summary(ours[score], False), None))
            for score in ("lac", "aps", "raps"):
                run = mapie["runs"][f"{score}@{cov}"]
                if run["error"]:
                    entries.append((f"MAPIE {score.upper()}", None, run["error"]))
                    continue
                entries.append((f"MAPIE {score.upper()}", summary(run["splits"], False), None))
                if score == "lac":
                    entries.append(("MAPIE LAC, empty sets filled", summary(run["splits"], True), None))
            for name, sm, err in entries:
                if sm is None:
                    rows.append([ds, f"{cov:.2f}", name, f"refused: {err}", "", "", "", "", ""])
                    continue
                rows.append(
                    [
                        ds,
                        f"{cov:.2f}",
                        name,
                        f"{sm['mean']:.4f}",
                        f"{sm['worst']:.4f}",
                        f"{sm['size']:.3f}",
                        f"{sm['empty']:.4f} (max {sm['max_empty']:.3f})",
                        f"{sm['worst_class']:.3f}",
                        f"{sm['seconds'] * 1000:.1f}",
                    ]
                )
                if cov == 0.9:
                    bin_rows.append([ds, name, *[f"{b:.3f}" for b in sm["bins"]]])
            ours_lac = entries[0][1]
            assert ours_lac is not None
            mapie_lac_f = next(sm for name, sm, _ in entries if name == "MAPIE LAC, empty sets filled")
            mapie_aps = next(sm for name, sm, _ in entries if name == "MAPIE APS")
            mapie_lac = next(sm for name, sm, _ in entries if name == "MAPIE LAC")
            assert mapie_lac_f is not None and mapie_lac is not None
            checks = {
                "mean cov": ours_lac["mean"] >= cov - 0.005,
                "worst cov": ours_lac["worst"] >= cov - 0.015,
                "no empty": ours_lac["max_empty"] == 0.0,
                "size <= MAPIE LAC filled": ours_lac["size"] <= mapie_lac_f["size"] + 1e-12,
                "size <= MAPIE APS": mapie_aps is None or ours_lac["size"] <= mapie_aps["size"] + 1e-12,
                ">= 5x faster": mapie_lac["seconds"] / ours_lac["seconds"] >= 5,
            }
            aps_note = "MAPIE APS refused" if mapie_aps is None else f"MAPIE APS {mapie_aps['size']:.3f}"
            verdicts.append(
                f"| {ds} (top-1 {acc:.3f}) | {cov:.2f} | {ours_lac['mean']:.4f} / {ours_lac['worst']:.4f} | "
                f"{ours_lac['size']:.3f} vs {mapie_lac_f['size']:.3f}; {aps_note} | "
                f"{mapie_lac['seconds'] / ours_lac['seconds']:.1f}x | "
                + ("all met" if all(checks.values()) else "missed: " + ", ".join(k for k, v in checks.items() if not v))
                + " |"
            )
        print(f"conformal {ds} done", flush=True)

    head = [
        "data",
        "coverage",
        "method",
        "mean cov",
        "worst split",
        "mean size",
        "empty rate",
        "worst class",
        "median CPU ms/split",
    ]
    lines = [
        f"MAPIE {mapie_version} in its own venv (prefit lookup estimator over the stored probabilities); "
        f"{n_splits} seeded 50/50 calibration/test splits per dataset. Veracity's sets are never empty "
        "(the top label is always in, and calibrated that way, see `SplitConformal(allow_empty=False)`); "
        "MAPIE's APS/RAPS use their default `include_last_label=True`. `worst class` is the mean over "
        "splits of the lowest per-class coverage (empty sets filled for MAPIE LAC).",
        "",
        "Targets for Veracity's default score (LAC): mean coverage >= nominal - 0.5 pt, worst split >= "
        "nominal - 1.5 pt, no empty set, mean size <= MAPIE LAC with empty sets filled and <= MAPIE APS, "
        ">= 5x faster than MAPIE LAC per split (median CPU time over splits, rows gathered before the timer).",
        "",
        "| data | coverage | Veracity LAC mean / worst coverage | mean size: Veracity LAC vs MAPIE LAC filled | "
        "speed-up | targets |",
        "|---|---|---|---|---|---|",
        *verdicts,
        "",
        md_table(head, rows),
        "",
        "Coverage per difficulty bin at 90% (quintiles of 1 - max p, easiest first; mean over splits; "
        "MAPIE LAC with empty sets filled):",
        "",
        md_table(["data", "method", *[f"bin {i + 1}" for i in range(N_BINS)]], bin_rows),
    ]
    return "\n".join(lines)


def _measured(path: Path, what: str = "this part") -> str:
    """When a cached part was written (parts are measured in separate runs and assembled by ``report``)."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    return f"_{what} measured {stamp}_"


POLICY_COVERAGE = 0.9
POLICY_THRESHOLD = 0.9


def policy_benchmark(n_splits: int) -> str:
    """``DecisionPolicy`` with and without temperature recalibration on the conformal data sets."""
    from benchmarks._results import md_table
    from veracity.decide import DecisionPolicy, decide, expected_calibration_error

    data = load_benchdata()
    if not data:
        return "Decision policy: no benchmark data found (set $VERACITY_BENCHDATA)."
    rows = []
    for ds, (probs, labels) in data.items():
        n = probs.shape[0]
        half = n // 2
        for calibration in ("none", "temperature"):
            policy = DecisionPolicy(coverage=POLICY_COVERAGE, threshold=POLICY_THRESHOLD, calibration=calibration)
            got: dict[str, list[float]] = {k: [] for k in ("t", "ece", "size", "cov", "auto", "err", "secs")}
            for s in range(n_splits):
                perm = np.random.default_rng([7, s]).permutation(n)
                cal, test = perm[:half], perm[half:]
                t0 = time.process_time()
                predictor = policy.fit(probs[cal], labels[cal])
                out = decide(probs[test], predictor, policy)
                got["secs"].append(time.process_time() - t0)
                y = labels[test]
                p_used = predictor.calibrate(probs[test])
                got["t"].append(predictor.to_dict()["temperature"] or 1.0)
                got["ece"].append(expected_calibration_error(p_used, y))
                got["size"].append(float(out.sets.sum(axis=1).mean()))
                got["cov"].append(float(out.sets[np.arange(y.size), y].mean()))
                got["auto"].append(out.automation_rate)
                acc = out.accepted
                got["err"].append(float(np.mean(out.top_label[acc] != y[acc])) if acc.any() else float("nan"))
            rows.append([
                ds, calibration, f"{np.mean(got['t']):.2f}", f"{100 * np.mean(got['ece']):.2f}",
                f"{np.mean(got['size']):.3f}", f"{np.mean(got['cov']):.4f} / {np.min(got['cov']):.4f}",
                f"{100 * np.mean(got['auto']):.1f}", f"{100 * np.nanmean(got['err']):.2f}",
                f"{1000 * np.median(got['secs']):.1f}",
            ])
        print(f"policy {ds} done", flush=True)
    head = ["data", "calibration", "temperature", "ECE %", "mean set size", "coverage mean / worst",
            "auto-accepted %", "error of auto-accepted %", "median CPU ms/split"]
    return "\n".join([
        f"`DecisionPolicy(coverage={POLICY_COVERAGE}, score=\"lac\", threshold={POLICY_THRESHOLD})` on the same "
        f"{n_splits} seeded 50/50 splits, with `calibration=\"none\"` (the model's probabilities as given) and "
        "`\"temperature\"` (temperature scaling fitted on the calibration half, then the conformal quantile on the "
        "recalibrated probabilities of the same half). ECE: top-label expected calibration error (15 bins) of the "
        "test half's probabilities as the policy uses them. An item is auto-accepted when its set is one label and "
        "its probability is at least the threshold; the error is that of the accepted items. CPU time: fit and "
        "decide, per split.",
        "",
        md_table(head, rows),
    ])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--peer", choices=["alibi", "mapie"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mmd-trials", type=int, default=200, help="alibi MMDDrift and Veracity MMD-only trials per shift")
    ap.add_argument("--fpr-trials", type=int, default=600, help="trials of the no-shift case")
    ap.add_argument("--power-trials", type=int, default=200, help="trials per shift")
    ap.add_argument("--splits", type=int, default=100, help="calibration/test splits per dataset")
    ap.add_argument(
        "--reuse-peers", action="store_true", help="conformal: reuse finished MAPIE results in benchmarks/_work"
    )
    ap.add_argument("--quick", action="store_true", help="few trials and splits (smoke run, RESULTS.md untouched)")
    ap.add_argument(
        "--phase",
        choices=["all", "drift-veracity", "drift-alibi", "conformal", "policy", "report"],
        default="all",
        help="run one part and cache its results under benchmarks/_work (report: assemble RESULTS.md from them)",
    )
    args = ap.parse_args(argv)
    if args.peer == "alibi":
        peer_alibi(args.data, args.out, args.mmd_trials)
        return
    if args.peer == "mapie":
        peer_mapie(args.data, args.out)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._results import write_section

    if args.quick:
        args.fpr_trials, args.power_trials, args.mmd_trials, args.splits = 20, 10, 2, 3
    tag = "quick" if args.quick else "full"
    ours_json = WORK / f"drift_veracity_{tag}.json"
    alibi_json = WORK / f"alibi_{tag}.json"
    conformal_md = WORK / f"conformal_{tag}.md"
    policy_md = WORK / f"policy_{tag}.md"
    phase = args.phase
    data = drift_data(args.fpr_trials, args.power_trials) if phase in ("all", "drift-veracity", "drift-alibi") else None
    if phase in ("all", "drift-alibi"):
        assert data is not None
        py = ensure_venv("alibi", "requirements-alibi.txt")
        peer_args = ["--peer", "alibi", "--data", str(data), "--out", str(alibi_json), "--mmd-trials"]
        # one after the other, not side by side: two BLAS/TensorFlow thread pools on 2 cores slow
        # both down several-fold and the ratio then measures the contention, not the code
        run_peer(py, [*peer_args, str(args.mmd_trials)])
    if phase in ("all", "drift-veracity"):
        assert data is not None
        ours_json.write_text(json.dumps(drift_veracity(data, args.mmd_trials)))
    if phase in ("all", "conformal"):
        conformal_md.write_text(conformal_benchmark(args.splits, reuse_peer=args.reuse_peers))
    if phase in ("all", "policy"):
        policy_md.write_text(policy_benchmark(args.splits))
    if phase not in ("all", "report"):
        return
    parts = []
    if ours_json.exists() and alibi_json.exists():
        parts.append(
            "### Drift\n\n"
            + drift_section(json.loads(ours_json.read_text()), json.loads(alibi_json.read_text()))
            + f"\n\n{_measured(alibi_json, 'alibi-detect')}; {_measured(ours_json, 'Veracity')}."
        )
    if conformal_md.exists():
        parts.append(f"### Conformal prediction sets\n\n{conformal_md.read_text()}\n\n{_measured(conformal_md)}.")
    if policy_md.exists():
        parts.append(
            f"### Decision policy: temperature recalibration\n\n{policy_md.read_text()}\n\n{_measured(policy_md)}."
        )
    body = "\n\n".join(parts)
    print(body)
    if not args.quick:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()
