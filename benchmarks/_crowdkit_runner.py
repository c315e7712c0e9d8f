"""Run crowd-kit aggregators on one answers CSV (executed with benchmarks/.venv-crowdkit's python).

Usage: python _crowdkit_runner.py ANSWERS.csv OUT_DIR METHOD[,METHOD...]

Writes OUT_DIR/<method>.csv (task,label) and prints one JSON line per method with the fit time
in seconds (data already loaded) and the load time. Kept free of Veracity imports on purpose.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from crowdkit.aggregation import (
    GLAD,
    MACE,
    MMSR,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    Wawa,
    ZeroBasedSkill,
)

FACTORIES = {
    "MajorityVote": lambda: MajorityVote(),
    "Wawa": lambda: Wawa(),
    "ZeroBasedSkill": lambda: ZeroBasedSkill(),
    "DawidSkene": lambda: DawidSkene(n_iter=100),
    "OneCoinDawidSkene": lambda: OneCoinDawidSkene(n_iter=100),
    "GLAD": lambda: GLAD(),
    "MACE": lambda: MACE(random_state=0),
    "MMSR": lambda: MMSR(random_state=0),
}


def main() -> None:
    answers, out_dir, methods = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    df = pd.read_csv(answers, dtype=str, usecols=["worker", "task", "label"], keep_default_na=False)
    load = time.perf_counter() - t0
    for name in methods:
        t0 = time.perf_counter()
        try:
            labels = FACTORIES[name]().fit_predict(df)
            status = "ok"
        except Exception as exc:  # report and go on: one crashing method must not stop the run
            labels = None
            status = f"error: {type(exc).__name__}: {exc}"[:200]
        secs = time.perf_counter() - t0
        if labels is not None:
            labels.rename("label").rename_axis("task").reset_index().to_csv(out_dir / f"{name}.csv", index=False)
        print(json.dumps({"method": name, "seconds": secs, "load_seconds": load, "status": status}), flush=True)


if __name__ == "__main__":
    main()
