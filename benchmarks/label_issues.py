"""Label issues: Veracity against cleanlab, side by side in one run (writes benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/label_issues.py [--quick] [--skip-scale]

cleanlab is a benchmark-only dependency: it lives in ``benchmarks/.venv-cleanlab`` (created from
``benchmarks/requirements-cleanlab.txt`` when missing) and runs in subprocesses of this same file
(``--worker ...``); Veracity runs in subprocesses of the project venv, so both are measured the
same way. Sections:

1. Real test sets with human-confirmed label errors (``$VERACITY_BENCHDATA/label_errors/*`` with
   ``pred_probs.npy``): average precision of each ranking score over the whole set and within the
   MTurk-checked items, precision/recall/F1 of each filter's mask, seconds.
2. scikit-learn digits with 10% and 25% seeded asymmetric noise, probabilities from
   ``cross_val_pred_probs``; downstream accuracy on a clean test split when training on noisy,
   cleaned (flagged items removed) and relabelled (flagged items set to ``suggested``) labels.
3. Scale: Dirichlet probabilities 1,000,000 x 10 and 100,000 x 1,000 (float32), time and peak
   memory in-process (tracemalloc, in a fresh process per library), and as whole processes
   (``veracity label-issues`` .npy -> ISSUES.csv against a script that loads the same .npy files
   and runs cleanlab's default ``find_label_issues`` plus its default ranking score).

Large inputs are generated at run time under ``benchmarks/_work`` (gitignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work" / "label_issues"
CL_VENV = HERE / ".venv-cleanlab"
CL_PY = CL_VENV / "bin" / "python"
VERACITY_PY = Path(sys.executable)
DATASETS = ("mnist", "cifar10", "cifar100", "20news", "imdb")

VERACITY_FILTERS = (
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "prune_by_class_margin",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
CLEANLAB_FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
VERACITY_SCORES = ("normalized_margin", "self_confidence", "confidence_weighted_entropy")
# cleanlab scores: (name, method, adjust_pred_probs)
CLEANLAB_SCORES = (
    ("self_confidence", "self_confidence", False),
    ("normalized_margin", "normalized_margin", False),
    ("confidence_weighted_entropy", "confidence_weighted_entropy", False),
    ("self_confidence+adjust", "self_confidence", True),
    ("normalized_margin+adjust", "normalized_margin", True),
)


# ----------------------------------------------------------------------------- workers
# These run in a subprocess: the cleanlab venv or the project venv. numpy only at top level.


def _worker_methods(lib: str, labels_path: str, probs_path: str, out_path: str) -> None:
    """Every filter and score of ``lib`` on one problem; masks, scores and seconds to an .npz."""
    import warnings

    warnings.filterwarnings("ignore")
    labels = np.load(labels_path)
    probs = np.load(probs_path)
    masks: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    scores: dict[str, Any] = {}
    if lib == "cleanlab":
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        find_label_issues(labels[:200], probs[:200])  # warm up imports and the process pool
        for f in CLEANLAB_FILTERS:
            t = time.perf_counter()
            masks[f] = find_label_issues(labels, probs, filter_by=f)
            seconds[f] = time.perf_counter() - t
        for name, method, adjust in CLEANLAB_SCORES:
            t = time.perf_counter()
            scores[name] = get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=adjust)
            seconds["score:" + name] = time.perf_counter() - t
    else:
        from veracity.quality import find_label_issues
        from veracity.quality.label_errors import get_label_quality_scores

        find_label_issues(labels[:200], probs[:200])
        for f in VERACITY_FILTERS:
            t = time.perf_counter()
            masks[f] = find_label_issues(labels, probs, method=f).mask  # type: ignore[arg-type]
            seconds[f] = time.perf_counter() - t
        for name in VERACITY_SCORES:
            t = time.perf_counter()
            scores[name] = get_label_quality_scores(labels, probs, method=name)  # type: ignore[arg-type]
            seconds["score:" + name] = time.perf_counter() - t
        res = find_label_issues(labels, probs)
        scores["_suggested"] = res.suggested
    np.savez(
        out_path,
        **{"mask:" + k: v for k, v in masks.items()},
        **{"score:" + k: v for k, v in scores.items()},
        seconds=json.dumps(seconds),
    )


def _worker_scale(lib: str, labels_path: str, probs_path: str, repeats: str, trace: str) -> None:
    """Default find_label_issues + default ranking on a big input; JSON with seconds and peak memory."""
    import resource
    import tracemalloc
    import warnings

    warnings.filterwarnings("ignore")
    labels = np.load(labels_path)
    probs = np.load(probs_path)
    if lib == "cleanlab":
        from cleanlab.filter import find_label_issues as cl_find
        from cleanlab.rank import get_label_quality_scores

        def run() -> int:
            mask = cl_find(labels, probs)
            scores = get_label_quality_scores(labels, probs)
            np.argsort(scores)
            return int(mask.sum())
    else:
        from veracity.quality import find_label_issues

        def run() -> int:
            return find_label_issues(labels, probs).num_issues

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    best = float("inf")
    best_cpu = float("inf")
    n_issues = run() if int(repeats) == 0 else 0
    for _ in range(int(repeats)):
        t, c = time.perf_counter(), cpu()
        n_issues = run()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, cpu() - c)
    peak = None
    if trace == "1":
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        json.dumps(
            {
                "seconds": best if best < float("inf") else None,
                "cpu_seconds": best_cpu if best_cpu < float("inf") else None,
                "peak_bytes": peak,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "n_issues": n_issues,
            }
        )
    )


def _worker_cleanlab_script(labels_path: str, probs_path: str) -> None:
    """The whole-process cleanlab counterpart of ``veracity label-issues``: load, find, rank."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.load(labels_path)
    probs = np.load(probs_path)
    mask = find_label_issues(labels, probs)
    ranked = np.argsort(get_label_quality_scores(labels, probs), kind="stable")
    print(int(mask.sum()), int(ranked[0]))


def _worker_veracity_script(labels_path: str, probs_path: str) -> None:
    """The library-level counterpart of the cleanlab script: load, find, rank (no CLI start-up)."""
    from veracity.quality import find_label_issues

    labels = np.load(labels_path)
    probs = np.load(probs_path)
    res = find_label_issues(labels, probs)
    print(res.num_issues, int(res.ranked[0]))


# ----------------------------------------------------------------------------- driver helpers


def ensure_cleanlab_venv() -> None:
    if CL_PY.exists():
        return
    print("creating", CL_VENV, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(CL_VENV)], check=True)
    subprocess.run(
        [str(CL_PY), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-cleanlab.txt")], check=True
    )


def worker(py: Path, *args: str, timeout: float = 3600) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") if py == VERACITY_PY else ""
    proc = subprocess.run(
        [str(py), str(Path(__file__).resolve()), "--worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def run_methods(lib: str, labels: np.ndarray, probs: np.ndarray, tag: str) -> dict[str, Any]:
    lp, pp, out = WORK / f"{tag}_labels.npy", WORK / f"{tag}_probs.npy", WORK / f"{tag}_{lib}.npz"
    np.save(lp, labels)
    np.save(pp, probs)
    worker(CL_PY if lib == "cleanlab" else VERACITY_PY, "methods", lib, str(lp), str(pp), str(out))
    data = np.load(out)
    res: dict[str, Any] = {"seconds": json.loads(str(data["seconds"]))}
    res["masks"] = {k[5:]: data[k] for k in data.files if k.startswith("mask:")}
    res["scores"] = {k[6:]: data[k] for k in data.files if k.startswith("score:")}
    return res


def average_precision(is_error: np.ndarray, quality: np.ndarray) -> float:
    """AP of ranking by ascending quality (low = suspect); ties share one threshold (as sklearn)."""
    from sklearn.metrics import average_precision_score

    if is_error.sum() == 0:
        return float("nan")
    return float(average_precision_score(is_error, -np.asarray(quality, dtype=np.float64)))


def prf(mask: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((mask & truth).sum())
    p = tp / mask.sum() if mask.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def md(headers: list[str], rows: list[list[Any]]) -> str:
    from benchmarks._results import md_table

    return md_table(headers, rows)


# ----------------------------------------------------------------------------- 1. real sets


def bench_real(base: Path) -> tuple[str, dict[str, Any]]:
    rank_rows: list[list[Any]] = []
    mask_rows: list[list[Any]] = []
    verdict: dict[str, Any] = {}
    for name in DATASETS:
        d = base / name
        if not (d / "pred_probs.npy").exists():
            continue
        raw = np.load(d / "pred_probs.npy")
        # IMDB rows sum to 1.00002 and cifar100 is float16-rounded: renormalise (cleanlab rejects > 1).
        probs = (raw / raw.sum(axis=1, keepdims=True, dtype=np.float64)).astype(np.float32)
        labels = np.load(d / "labels.npy").astype(np.int64)
        errors = np.load(d / "errors.npy").astype(bool)
        checked = np.load(d / "checked.npy").astype(bool)
        results = {lib: run_methods(lib, labels, probs, f"real_{name}") for lib in ("veracity", "cleanlab")}
        best_cl = (0.0, 0.0)
        ours = (0.0, 0.0)
        for lib, res in results.items():
            for score_name, q in res["scores"].items():
                if score_name.startswith("_"):
                    continue
                ap_all, ap_chk = average_precision(errors, q), average_precision(errors[checked], q[checked])
                rank_rows.append([name, lib, score_name, ap_all, ap_chk, res["seconds"]["score:" + score_name]])
                if lib == "cleanlab":
                    best_cl = (max(best_cl[0], ap_all), max(best_cl[1], ap_chk))
                elif score_name == "normalized_margin":
                    ours = (ap_all, ap_chk)
            for f, mask in res["masks"].items():
                p, r, f1 = prf(mask.astype(bool), errors)
                mask_rows.append([name, lib, f, int(mask.sum()), p, r, f1, res["seconds"][f]])
        cl_default = prf(results["cleanlab"]["masks"]["prune_by_noise_rate"].astype(bool), errors)[2]
        our_default = prf(results["veracity"]["masks"]["auto"].astype(bool), errors)[2]
        verdict[name] = {
            "ap_all": (ours[0], best_cl[0]),
            "ap_checked": (ours[1], best_cl[1]),
            "f1": (our_default, cl_default),
        }
        print(name, verdict[name], flush=True)
    summary = md(
        [
            "set",
            "AP whole: veracity default / cleanlab best",
            "AP checked: veracity default / cleanlab best",
            "mask F1: veracity auto / cleanlab default",
            "met?",
        ],
        [
            [
                n,
                f"{v['ap_all'][0]:.4f} / {v['ap_all'][1]:.4f}",
                f"{v['ap_checked'][0]:.4f} / {v['ap_checked'][1]:.4f}",
                f"{v['f1'][0]:.4f} / {v['f1'][1]:.4f}",
                ", ".join(
                    f"{key} {'yes' if v[key][0] >= v[key][1] - 1e-12 else 'NO'}"
                    for key in ("ap_all", "ap_checked", "f1")
                ),
            ]
            for n, v in verdict.items()
        ],
    )
    text = (
        "### Real test sets with human-confirmed label errors\n\n"
        "Targets: the default ranking (`normalized_margin`) has AP >= cleanlab's best score per set; "
        "the default filter (`auto` = `prune_by_class_margin`) has F1 >= cleanlab's default "
        "(`prune_by_noise_rate`). Same float32 probabilities (rows renormalised) for both.\n\n"
        + summary
        + "\n\nRanking scores (AP = average precision of confirmed errors, ranking all items by score):\n\n"
        + md(["set", "library", "score", "AP whole", "AP checked", "seconds"], rank_rows)
        + "\n\nFilters (precision/recall/F1 of the mask against confirmed errors):\n\n"
        + md(["set", "library", "method", "flagged", "precision", "recall", "F1", "seconds"], mask_rows)
    )
    return text, verdict


# ----------------------------------------------------------------------------- 2. digits


def asymmetric_noise(labels: np.ndarray, rate: float, rng: np.random.Generator, k: int) -> np.ndarray:
    """Each class c flips to one fixed other class pi(c) with probability ``rate``."""
    while True:
        target = rng.permutation(k)
        if np.all(target != np.arange(k)):
            break
    flip = rng.random(labels.shape[0]) < rate
    return np.where(flip, target[labels], labels)


def bench_digits(seeds: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from veracity.quality import cross_val_pred_probs

    def model() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))

    features, truth_all = load_digits(return_X_y=True)
    mask_rows: list[list[Any]] = []
    rank_rows: list[list[Any]] = []
    down_rows: list[list[Any]] = []
    verdict: dict[str, Any] = {}
    for rate in (0.10, 0.25):
        acc: dict[str, list[float]] = {}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            x_tr, x_te, y_tr, y_te = train_test_split(
                features, truth_all, test_size=0.3, random_state=seed, stratify=truth_all
            )
            noisy = asymmetric_noise(y_tr, rate, rng, 10)
            is_err = noisy != y_tr
            probs = cross_val_pred_probs(x_tr, noisy, model(), folds=5, random_state=seed).astype(np.float32)
            results = {lib: run_methods(lib, noisy, probs, f"digits_{rate}_{seed}") for lib in ("veracity", "cleanlab")}
            for lib, res in results.items():
                for f, m in res["masks"].items():
                    p, r, f1 = prf(m.astype(bool), is_err)
                    mask_rows.append([f"{rate:.0%}", seed, lib, f, int(m.sum()), p, r, f1, res["seconds"][f]])
                for sname, q in res["scores"].items():
                    if not sname.startswith("_"):
                        rank_rows.append([f"{rate:.0%}", seed, lib, sname, average_precision(is_err, q)])

            def fit_score(x: np.ndarray, y: np.ndarray, x_te: np.ndarray = x_te, y_te: np.ndarray = y_te) -> float:
                return float(model().fit(x, y).score(x_te, y_te))

            ours = results["veracity"]["masks"]["auto"].astype(bool)
            sugg = results["veracity"]["scores"]["_suggested"]
            theirs = results["cleanlab"]["masks"]["prune_by_noise_rate"].astype(bool)
            relabelled = np.where(ours, sugg, noisy)
            outcomes = {
                "clean labels (reference)": fit_score(x_tr, y_tr),
                "noisy": fit_score(x_tr, noisy),
                "veracity: flagged removed": fit_score(x_tr[~ours], noisy[~ours]),
                "veracity: flagged relabelled (suggested)": fit_score(x_tr, relabelled),
                "cleanlab default: flagged removed": fit_score(x_tr[~theirs], noisy[~theirs]),
            }
            for key, value in outcomes.items():
                acc.setdefault(key, []).append(value)
        means = {key: float(np.mean(v)) for key, v in acc.items()}
        lost = means["clean labels (reference)"] - means["noisy"]
        for key, v in means.items():
            rec = (v - means["noisy"]) / lost if lost > 0 else float("nan")
            down_rows.append([f"{rate:.0%}", key, v, rec if key not in ("noisy", "clean labels (reference)") else ""])
        verdict[f"{rate:.0%}"] = {
            "lost": lost,
            "recovered_removed": (means["veracity: flagged removed"] - means["noisy"]) / lost if lost > 0 else None,
            "recovered_relabelled": (means["veracity: flagged relabelled (suggested)"] - means["noisy"]) / lost
            if lost > 0
            else None,
        }
        print("digits", rate, verdict[f"{rate:.0%}"], flush=True)
    text = (
        "### Digits with seeded asymmetric noise\n\n"
        f"scikit-learn digits (1,797 images), 70/30 stratified split, seeds {list(seeds)}; each class flips "
        "to one fixed other class with the given rate; probabilities from `cross_val_pred_probs` "
        "(5 folds, StandardScaler + LogisticRegression(C=0.1)). Downstream: the same model trained on "
        "the training split, accuracy on the clean test split (mean over seeds); 'recovered' = share of "
        "the accuracy lost to noise that cleaning wins back (target >= 0.5 at 25%).\n\n"
        + md(["noise", "training labels", "test accuracy", "recovered"], down_rows)
        + "\n\nFilters and ranking against the injected errors:\n\n"
        + md(["noise", "seed", "library", "method", "flagged", "precision", "recall", "F1", "seconds"], mask_rows)
        + "\n\nRanking scores (AP of the injected errors):\n\n"
        + md(["noise", "seed", "library", "score", "AP"], rank_rows)
    )
    return text, verdict


# ----------------------------------------------------------------------------- 3. scale


def dirichlet_problem(n: int, k: int, seed: int) -> tuple[Path, Path]:
    lp, pp = WORK / f"scale_{n}x{k}_labels.npy", WORK / f"scale_{n}x{k}_probs.npy"
    if lp.exists() and pp.exists():
        return lp, pp
    rng = np.random.default_rng(seed)
    probs = np.empty((n, k), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    step = max(1, (1 << 22) // k)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = rng.dirichlet(np.full(k, 0.5 if k <= 10 else 0.05), size=stop - start)
        # Given labels drawn from the probabilities themselves (a calibrated model's view).
        u = rng.random(stop - start)[:, None]
        labels[start:stop] = np.minimum((np.cumsum(block, axis=1) < u).sum(axis=1), k - 1)
        probs[start:stop] = block
    np.save(lp, labels)
    np.save(pp, probs)
    return lp, pp


_LAUNCHER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - t, "maxrss_kb": usage.ru_maxrss, "status": status,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "stderr": err.decode(errors="replace")[-2000:]}))
"""


def whole_process(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds and max RSS (KiB) of ``cmd``, started from a small launcher process.

    Linux keeps a process's RSS high-water mark across fork and exec, so a child forked straight
    from this (large) driver would report the driver's RSS; a fresh small Python launcher avoids it.
    """
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, env=env, check=True
    ).stdout
    res = json.loads(out)
    if res["status"] != 0:
        raise RuntimeError(f"{cmd[:3]} exited with {res['status']}: {res['stderr']}")
    return float(res["seconds"]), int(res["maxrss_kb"]), float(res["cpu_seconds"])


def bench_scale(quick: bool) -> tuple[str, dict[str, Any]]:
    shapes = [(1_000_000, 10), (100_000, 1_000)] if not quick else [(100_000, 10), (10_000, 1_000)]
    rows: list[list[Any]] = []
    whole_rows: list[list[Any]] = []
    verdict: dict[str, Any] = {}
    veracity_cli = Path(sys.executable).with_name("veracity")
    libs = (("veracity", VERACITY_PY), ("cleanlab", CL_PY))
    from benchmarks._results import compile_veracity

    compiled = compile_veracity()
    for n, k in shapes:
        lp, pp = dirichlet_problem(n, k, seed=n + k)
        rounds = 5 if n * k <= 10_000_000 else 2
        runs: dict[str, list[dict[str, Any]]] = {"veracity": [], "cleanlab": []}
        for _ in range(rounds):  # alternate libraries, so both see the same background load
            for lib, py in libs:
                runs[lib].append(json.loads(worker(py, "scale", lib, str(lp), str(pp), "1", "0")))
        res: dict[str, dict[str, Any]] = {}
        for lib, py in libs:
            memory = json.loads(worker(py, "scale", lib, str(lp), str(pp), "0", "1"))
            res[lib] = {
                "seconds": min(r["seconds"] for r in runs[lib]),
                "cpu_seconds": min(r["cpu_seconds"] for r in runs[lib]),
                "peak_bytes": memory["peak_bytes"],
                "n_issues": runs[lib][0]["n_issues"],
            }
            r = res[lib]
            rows.append([f"{n:,} x {k:,}", lib, r["seconds"], r["cpu_seconds"], r["peak_bytes"] / 2**20, r["n_issues"]])
        env = dict(os.environ)
        env_cl = {**env, "PYTHONPATH": ""}
        out = WORK / f"ISSUES_{n}x{k}.csv"
        v_cmd = [str(veracity_cli), "label-issues", "--labels", str(lp), "--pred-probs", str(pp), "--out", str(out)]
        c_cmd = [str(CL_PY), str(Path(__file__).resolve()), "--worker", "cleanlab-script", str(lp), str(pp)]
        s_cmd = [str(VERACITY_PY), str(Path(__file__).resolve()), "--worker", "veracity-script", str(lp), str(pp)]
        h_cmd = [str(veracity_cli), "--help"]
        env_v = {**env, "PYTHONPATH": str(ROOT / "src")}
        v_runs, c_runs, s_runs, h_runs = [], [], [], []
        for _ in range(rounds):
            v_runs.append(whole_process(v_cmd, env))
            c_runs.append(whole_process(c_cmd, env_cl))
            s_runs.append(whole_process(s_cmd, env_v))
            h_runs.append(whole_process(h_cmd, env))
        v_sec, v_rss, v_cpu = min(r[0] for r in v_runs), max(r[1] for r in v_runs), min(r[2] for r in v_runs)
        c_sec, c_rss, c_cpu = min(r[0] for r in c_runs), max(r[1] for r in c_runs), min(r[2] for r in c_runs)
        shape = f"{n:,} x {k:,}"
        whole_rows.append([shape, "veracity label-issues (.npy -> ISSUES.csv)", v_sec, v_cpu, v_rss / 1024])
        whole_rows.append(
            [shape, "python script: np.load + cleanlab find_label_issues + rank", c_sec, c_cpu, c_rss / 1024]
        )
        for label, rr in (
            ("python script: np.load + veracity find_label_issues (ranked)", s_runs),
            ("`veracity --help` alone (CLI start-up)", h_runs),
        ):
            whole_rows.append(
                [shape, label, min(r[0] for r in rr), min(r[2] for r in rr), max(r[1] for r in rr) / 1024]
            )
        s_sec, s_cpu = min(r[0] for r in s_runs), min(r[2] for r in s_runs)
        verdict[shape] = {
            "speedup_inproc": res["cleanlab"]["seconds"] / res["veracity"]["seconds"],
            "cpu_ratio_inproc": res["cleanlab"]["cpu_seconds"] / res["veracity"]["cpu_seconds"],
            "mem_ratio_inproc": res["veracity"]["peak_bytes"] / res["cleanlab"]["peak_bytes"],
            "speedup_whole": c_sec / v_sec,
            "cpu_ratio_whole": c_cpu / v_cpu,
            "rss_ratio_whole": v_rss / c_rss,
            "speedup_script": c_sec / s_sec,
            "cpu_ratio_script": c_cpu / s_cpu,
        }
        print("scale", n, k, verdict[shape], flush=True)
    text = (
        "### Scale (random Dirichlet probabilities, float32, labels drawn from them)\n\n"
        "In-process: each library's default (`find_label_issues` with its default filter, plus its "
        "default ranking score) in a fresh process per run, libraries alternating; wall and CPU "
        "seconds (user+sys, including cleanlab's pool workers) are the best over the runs; peak = "
        "tracemalloc peak of a separate run (Python-level allocations of the main process; "
        "cleanlab's pool workers are not included).\n\n"
        + md(["shape", "library", "wall s", "CPU s", "peak MiB (tracemalloc)", "flagged"], rows)
        + "\n\nWhole processes (best wall and CPU seconds of alternating runs, including interpreter start "
        "and imports; largest max RSS from wait4 in a small launcher). The cleanlab script only loads, "
        "finds and ranks (it writes no CSV); `veracity label-issues` also validates and writes "
        f"ISSUES.csv. {compiled}\n\n"
        + md(["shape", "command", "wall s", "CPU s", "max RSS MiB"], whole_rows)
        + "\n\nRatios (cleanlab / veracity for time, veracity / cleanlab for memory):\n\n"
        + md(
            [
                "shape",
                "speed-up in-process (wall)",
                "(CPU)",
                "peak memory ratio",
                "speed-up whole process (wall)",
                "(CPU)",
                "max RSS ratio",
                "speed-up script vs script (wall)",
                "(CPU)",
            ],
            [
                [
                    s,
                    v["speedup_inproc"],
                    v["cpu_ratio_inproc"],
                    v["mem_ratio_inproc"],
                    v["speedup_whole"],
                    v["cpu_ratio_whole"],
                    v["rss_ratio_whole"],
                    v["speedup_script"],
                    v["cpu_ratio_script"],
                ]
                for s, v in verdict.items()
            ],
        )
    )
    return text, verdict


# ----------------------------------------------------------------------------- main


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--worker":
        kind, *rest = argv[1:]
        workers = {
            "methods": _worker_methods,
            "scale": _worker_scale,
            "cleanlab-script": _worker_cleanlab_script,
            "veracity-script": _worker_veracity_script,
        }
        workers[kind](*rest)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._results import benchdata_dir, write_section

    quick = "--quick" in argv
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_cleanlab_venv()
    cl_version = subprocess.run(
        [str(CL_PY), "-c", "import cleanlab, numpy; print(cleanlab.__version__, numpy.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    parts = [
        f"cleanlab {cl_version[0]} (numpy {cl_version[1]} in its venv) against veracity "
        f"(numpy {np.__version__}); run `python benchmarks/label_issues.py` to refresh.",
    ]
    base = benchdata_dir() / "label_errors"
    if base.exists():
        text, _ = bench_real(base)
        parts.append(text)
    else:
        parts.append(f"_Real sets skipped: {base} not found (set VERACITY_BENCHDATA)._")
    text, _ = bench_digits((0, 1, 2) if not quick else (0,))
    parts.append(text)
    if "--skip-scale" not in argv:
        text, _ = bench_scale(quick)
        parts.append(text)
    if not quick:
        write_section("Label issues (benchmarks/label_issues.py)", "\n\n".join(parts))
    else:
        print("\n\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1:])
