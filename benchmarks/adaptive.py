"""Adaptive redundancy versus a fixed overlap of 5: labels spent and accuracy reached.

A seeded simulation through the services layer, in process, on a temporary SQLite database:
``services.projects.create_project`` / ``import_items``, then simulated annotators ask
``services.tasks.next_task`` and answer with ``submit_annotation`` from their own confusion
matrices (the synthetic crowd of ``benchmarks/synthetic_crowd.py``), while the full model is
refitted on the server's schedule (``services.quality.maybe_refit`` after every label, as
``POST .../annotations`` does in the background). Every strategy sees the same crowd and the same
answers: a worker's answer on an item is drawn once, so the runs differ only in who is asked what.

Strategies:

* fixed: ``overlap=5`` (every item gets 5 labels);
* adaptive: ``target_confidence=0.95, min_labels=2, max_labels=7``: an item stops receiving
  annotators once its posterior reaches 0.95 (items still uncertain at 7 go to review).

Accuracy is that of the final consensus (a last refit with the project's method) against the
true labels, over all items. Target (issue 5): the same or better accuracy with at least 35%
fewer labels.

    python benchmarks/adaptive.py                        # 2,000 items, 50 annotators; writes RESULTS.md
    python benchmarks/adaptive.py --items 300 --no-write
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    name: str
    labels: int
    accuracy: float
    n_review: int
    labels_per_item: float
    seconds: float


def simulate(
    name: str,
    project_kwargs: dict[str, Any],
    crowd: Any,
    answers: np.ndarray,
    *,
    workdir: Path,
    refit_every: int,
    seed: int,
) -> Outcome:
    from sqlalchemy import event, func, select

    from veracity.services import projects as project_service
    from veracity.services import quality as quality_service
    from veracity.services import tasks as task_service
    from veracity.services.actors import Actor
    from veracity.services.users import create_user
    from veracity.storage import Database
    from veracity.storage.migrate import upgrade
    from veracity.storage.models import Annotation, Consensus, Item, Task

    t0 = time.perf_counter()
    db = Database(f"sqlite:///{workdir / f'{name}.db'}")

    @event.listens_for(db.engine, "connect")
    def _fast(dbapi_conn: Any, _record: Any) -> None:  # a simulation: durability is not measured here
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    upgrade(db)
    admin_view, _ = create_user(db, "admin", "admin")
    admin = Actor(admin_view.id, admin_view.name, admin_view.role)
    classes = [f"c{k}" for k in range(crowd.n_classes)]
    project = project_service.create_project(
        db, admin, name=name, schema={"kind": "classification", "labels": classes}, **project_kwargs
    )
    workers = []
    for w in range(crowd.n_workers):
        view, _ = create_user(db, f"w{w}", "annotator")
        project_service.add_member(db, admin, project.id, view.name, "annotator")
        workers.append(Actor(view.id, view.name, view.role))
    items = [{"id": str(t), "text": f"item {t}"} for t in range(crowd.n_tasks)]
    project_service.import_items(db, admin, project.id, items)

    rng = np.random.default_rng(seed)
    active = list(range(crowd.n_workers))
    labels = 0
    while active:
        w = active[int(rng.integers(len(active)))]
        task = task_service.next_task(db, workers[w], project.id)
        if task is None:
            active.remove(w)
            continue
        t = int(task["item"]["external_id"])
        task_service.submit_annotation(db, workers[w], task["task_id"], classes[int(answers[t, w])])
        labels += 1
        if refit_every == 0:
            quality_service.maybe_refit(db, project.id)  # what the server runs after each label
        elif labels % refit_every == 0:
            quality_service.refit_project(db, project.id)
    quality_service.refit_project(db, project.id)

    with db.transaction(write=False) as s:
        rows = s.execute(
            select(Item.external_id, Consensus.label)
            .join(Task, Task.item_id == Item.id)
            .outerjoin(Consensus, Consensus.task_id == Task.id)
            .where(Task.project_id == project.id)
        ).all()
        stored = s.execute(
            select(func.count()).where(Annotation.project_id == project.id, Annotation.origin == "human")
        ).scalar_one()
        n_review = s.execute(
            select(func.count()).where(Task.project_id == project.id, Task.status == "review")
        ).scalar_one()
    db.dispose()
    assert stored == labels, (stored, labels)
    truth = crowd.true_labels
    correct = sum(1 for ext, lab in rows if lab is not None and classes.index(lab) == truth[int(ext)])
    return Outcome(name, labels, correct / crowd.n_tasks, int(n_review), labels / crowd.n_tasks,
                   time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--spammers", type=float, default=0.1, help="share of spammers in the crowd")
    parser.add_argument("--method", default="ds", help="consensus method of both projects (ds, wmv, ...)")
    parser.add_argument("--refit-every", type=int, default=0,
                        help="refit every N labels (default 0: the server's schedule, services.quality.maybe_refit)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks._results import md_table, write_section
    from benchmarks.synthetic_crowd import answer, make_crowd

    crowd = make_crowd(args.items, args.workers, args.classes, answers_per_task=1, spammer_frac=args.spammers,
                       seed=args.seed)
    # One answer per (item, worker), drawn once: both strategies read the same ones.
    t_idx, w_idx = np.meshgrid(np.arange(args.items), np.arange(args.workers), indexing="ij")
    answers = answer(crowd, t_idx.ravel(), w_idx.ravel(), seed=args.seed + 1).reshape(args.items, args.workers)

    strategies = {
        "fixed overlap 5": {"overlap": 5, "consensus_method": args.method},
        "adaptive (0.95, 2..7)": {"overlap": 2, "min_labels": 2, "max_labels": 7, "target_confidence": 0.95,
                                  "consensus_method": args.method},
    }
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="veracity-bench-adaptive-") as tmp:
        for i, (name, kwargs) in enumerate(strategies.items()):
            out = simulate(f"s{i}", kwargs, crowd, answers, workdir=Path(tmp), refit_every=args.refit_every,
                           seed=args.seed + 2)
            out.name = name
            outcomes.append(out)
            print(f"{name}: {out.labels} labels ({out.labels_per_item:.2f}/item), accuracy {out.accuracy:.4f}, "
                  f"{out.n_review} to review, {out.seconds:.0f} s", flush=True)

    fixed, adaptive = outcomes
    saved = 1 - adaptive.labels / fixed.labels
    acc_delta = adaptive.accuracy - fixed.accuracy
    met = saved >= 0.35 and acc_delta >= 0
    table = md_table(
        ["Strategy", "Labels spent", "Labels per item", "Accuracy", "Items sent to review"],
        [[o.name, o.labels, round(o.labels_per_item, 2), f"{o.accuracy:.4f}", o.n_review] for o in outcomes],
    )
    kinds = np.bincount(crowd.worker_kind, minlength=3)
    refits = (
        "on the server's schedule (`services.quality.maybe_refit` after every label, as `POST .../annotations` "
        "does: once max(25, 10% of all) labels are new)"
        if args.refit_every == 0
        else f"every {args.refit_every} labels"
    )
    text = (
        f"{table}\n\n"
        f"Adaptive redundancy spends **{saved:.1%} fewer labels** with accuracy {acc_delta:+.4f} "
        f"(target: >= 35% fewer at the same or better accuracy: **{'met' if met else 'missed'}**).\n\n"
        f"- Synthetic crowd (`benchmarks/synthetic_crowd.py`, seed {args.seed}): {args.items:,} items, "
        f"{args.classes} classes, {args.workers} annotators ({kinds[0]} good, {kinds[1]} class-biased, "
        f"{kinds[2]} spammers); each annotator's answer on an item is drawn once from their confusion matrix "
        "and shared by both strategies.\n"
        "- Through the services layer on a temporary SQLite database: annotators picked at random ask "
        "`next_task` and `submit_annotation` until the queue is empty for all of them; "
        f"the full refit ({args.method}) {refits} and once at the end; accuracy is the "
        "final consensus against the truth over all items (items still in review count with their consensus).\n"
        f"- Consensus method of both projects: `{args.method}`; the incremental posterior between refits uses "
        "each annotator's refitted confusion matrix (one-coin at accuracy 0.7 before the first refit).\n\n"
        "Rerun: `python benchmarks/adaptive.py`."
    )
    print(text)
    if not args.no_write:
        write_section("Adaptive redundancy (benchmarks/adaptive.py)", text)


if __name__ == "__main__":
    main()
