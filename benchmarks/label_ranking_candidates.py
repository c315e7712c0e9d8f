"""Which single default ranking score could meet issue 4's ranking target on all five real sets?

Prints, for each candidate score, the average precision (AP) of the human-confirmed label errors
over the whole set and within the MTurk-checked items, on mnist, cifar10, cifar100, 20news and
imdb (``$VERACITY_BENCHDATA/label_errors``), next to cleanlab's best ranking score per set and
metric. cleanlab's three scores give the same numbers as ours (see RESULTS.md "Label issues"; its
``adjust_pred_probs`` variants scored lower on every set), so "cleanlab best" here is the best of
the three per set and metric. No candidate is chosen per set: a candidate meets the target only if
it is >= cleanlab's best on every set, for both metrics.

Why the two metrics pull apart: on all five sets the MTurk-checked items are exactly the k items
of lowest normalized margin (k = number checked), i.e. the candidates of the original
confident-learning run. Unchecked items count as correct, so AP over the whole set rewards a score
for reproducing that candidate set (normalized margin does so by construction), while AP within
the checked items measures how well a score orders those candidates. On 20news (93 checked, 82
confirmed) self-confidence and confidence-weighted entropy order the candidates better (the 11
items whose given label was upheld tend to keep some probability on it), but rank many unchecked
items (p[given] close to 0, probability spread over other classes) above the checked ones.

Candidates (all computed from the same float32 probabilities, rows renormalised):

* ``normalized_margin`` (the default), ``self_confidence``, ``confidence_weighted_entropy``
  (Kuan & Mueller 2022, arXiv:2210.07228);
* ``rank_mean(nm, sc)``: the mean of the two scores' ranks (a rank ensemble of scores);
* ``nm / thresholds``: normalized margin of ``p_j / t_j`` (``t_j`` the per-class thresholds of
  confident learning, Northcutt, Jiang & Chuang 2021), renormalised;
* ``noise posterior``: ``P(true = given | x, given)`` with ``p(x)`` as the class posterior and the
  noise matrix ``P(given | true)`` estimated by confident learning;
* ``flagged first``: the items flagged by ``find_label_issues`` (auto) first, each group by
  normalized margin.

    python benchmarks/label_ranking_candidates.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VERACITY_BENCHDATA", ROOT.parent / "shared" / "benchdata")) / "label_errors"
SETS = ("mnist", "cifar10", "cifar100", "20news", "imdb")
CLEANLAB_SCORES = ("normalized_margin", "self_confidence", "confidence_weighted_entropy")


def _ap(is_error: np.ndarray, quality: np.ndarray) -> float:
    return float(average_precision_score(is_error, -np.asarray(quality, dtype=np.float64)))


def candidates(labels: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    from veracity.quality import find_label_issues
    from veracity.quality.label_errors.rank import get_label_quality_scores

    out = {m: get_label_quality_scores(labels, probs, method=m) for m in CLEANLAB_SCORES}  # type: ignore[arg-type]
    nm, sc = out["normalized_margin"], out["self_confidence"]
    out["rank_mean(nm, sc)"] = (rankdata(nm) + rankdata(sc)) / (2 * len(nm))
    res = find_label_issues(labels, probs)
    p = probs.astype(np.float64)
    scaled = p / np.maximum(np.asarray(res.thresholds, dtype=np.float64), 1e-12)
    scaled /= scaled.sum(axis=1, keepdims=True)
    out["nm / thresholds"] = get_label_quality_scores(labels, scaled, method="normalized_margin")
    rows = np.arange(len(labels))
    noise = np.asarray(res.noise_matrix, dtype=np.float64)  # P(given = i | true = j) at [i, j]
    like = noise[labels, :]  # P(given = labels[n] | true = j)
    out["noise posterior"] = p[rows, labels] * like[rows, labels] / np.maximum((p * like).sum(axis=1), 1e-300)
    out["flagged first"] = nm - 2.0 * res.mask
    return out


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    table: dict[str, dict[str, tuple[float, float]]] = {}
    best: dict[str, tuple[float, float]] = {}
    for name in SETS:
        d = DATA / name
        labels = np.load(d / "labels.npy")
        probs = np.load(d / "pred_probs.npy").astype(np.float32)
        probs /= probs.sum(axis=1, keepdims=True)
        checked, errors = np.load(d / "checked.npy"), np.load(d / "errors.npy")
        for cand, q in candidates(labels, probs).items():
            table.setdefault(cand, {})[name] = (_ap(errors, q), _ap(errors[checked], q[checked]))
        best[name] = (max(table[m][name][0] for m in CLEANLAB_SCORES),
                      max(table[m][name][1] for m in CLEANLAB_SCORES))
    head = "| score | " + " | ".join(f"{s} AP whole / checked" for s in SETS) + " | meets target on |"
    print(head)
    print("|" + "---|" * (len(SETS) + 2))
    print("| cleanlab best | " + " | ".join(f"{best[s][0]:.4f} / {best[s][1]:.4f}" for s in SETS) + " | |")
    for cand, per in table.items():
        ok = [s for s in SETS if per[s][0] >= best[s][0] - 1e-12 and per[s][1] >= best[s][1] - 1e-12]
        cells = " | ".join(f"{per[s][0]:.4f} / {per[s][1]:.4f}" for s in SETS)
        print(f"| {cand} | {cells} | {', '.join(ok) if ok else 'none'} ({len(ok)}/{len(SETS)}) |")


if __name__ == "__main__":
    main()
