"""Adaptive redundancy versus a fixed overlap of 5: labels spent and accuracy reached.

A seeded simulation through the services layer, in process, on a temporary SQLite database:
``services.projects.create_project`` / ``import_items``, then simulated annotators ask
``services.tasks.next_task`` and answer with ``submit_annotation`` from their own confusion
matrices (the synthetic crowd of ``benchmarks/synthetic_crowd.py``), while the full model is
refitted on the server's schedule (``services.quality.maybe_refit`` after every label, as
``POST .../annotations`` does in the background). Every strategy sees the same crowd and the same
answers: a worker's answer on an item is drawn once, so the runs differ only in who is asked what.

Strategies, each run on several seeds (a new crowd and new answers per seed; figures are means):

* fixed: ``overlap=5`` (every item gets 5 labels);
* adaptive: ``min_labels=2, max_labels=7`` and ``target_confidence`` t: an item stops receiving
  annotators once its posterior reaches t (items still uncertain at 7 go to review). The headline
  uses ``--target`` (default 0.95, the example target of issue 5); ``--curve`` adds other
  targets, so the trade-off between labels and accuracy is visible.

Accuracy is that of the final consensus (a last refit with the project's method) against the
true labels, over all items. Target (issue 5): the same or better accuracy with at least 35%
fewer labels.

    python benchmarks/adaptive.py                        # 2,000 items, 50 annotators, seeds 0-2; writes RESULTS.md
    python benchmarks/adaptive.py --items 300 --seeds 0 --curve "" --no-write
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
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


def _run_seed(args: argparse.Namespace, seed: int, strategies: dict[str, dict[str, Any]]) -> list[Outcome]:
    """All strategies on one seeded crowd (runs in a worker process with ``--jobs``)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.synthetic_crowd import answer, make_crowd

    crowd = make_crowd(args.items, args.workers, args.classes, answers_per_task=1, spammer_frac=args.spammers,
                       seed=seed)
    # One answer per (item, worker), drawn once: every strategy reads the same ones.
    t_idx, w_idx = np.meshgrid(np.arange(args.items), np.arange(args.workers), indexing="ij")
    answers = answer(crowd, t_idx.ravel(), w_idx.ravel(), seed=seed + 1).reshape(args.items, args.workers)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="veracity-bench-adaptive-") as tmp:
        for i, (name, kwargs) in enumerate(strategies.items()):
            out = simulate(f"s{i}", kwargs, crowd, answers, workdir=Path(tmp), refit_every=args.refit_every,
                           seed=seed + 2)
            out.name = name
            outcomes.append(out)
            print(f"seed {seed} {name}: {out.labels} labels ({out.labels_per_item:.2f}/item), accuracy "
                  f"{out.accuracy:.4f}, {out.n_review} to review, {out.seconds:.0f} s", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--spammers", type=float, default=0.1, help="share of spammers in the crowd")
    parser.add_argument("--method", default="ds", help="consensus method of all projects (ds, wmv, ...)")
    parser.add_argument("--refit-every", type=int, default=0,
                        help="refit every N labels (default 0: the server's schedule, services.quality.maybe_refit)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated crowd seeds; figures are means")
    parser.add_argument("--target", type=float, default=0.95,
                        help="target_confidence of the headline strategy (default: issue 5's example)")
    parser.add_argument("--curve", default="0.96,0.97,0.98",
                        help="further target_confidence values for the trade-off curve (comma-separated)")
    parser.add_argument("--min-labels", type=int, default=2)
    parser.add_argument("--max-labels", type=int, default=7)
    parser.add_argument("--pause", type=float, default=0.05,
                        help="settings.pause_below_information of the 'pausing' strategies (0: leave them out)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks._results import md_table, write_section
    from benchmarks.synthetic_crowd import make_crowd

    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    targets = [args.target, *sorted({float(x) for x in args.curve.split(",") if x.strip()} - {args.target})]
    lo, hi = args.min_labels, args.max_labels

    def adaptive_name(t: float) -> str:
        return f"adaptive ({t:g}, {lo}..{hi})"

    pausing = {"settings": {"pause_below_information": args.pause}} if args.pause > 0 else None
    strategies: dict[str, dict[str, Any]] = {"fixed overlap 5": {"overlap": 5, "consensus_method": args.method}}
    if pausing:
        strategies["fixed overlap 5, pausing"] = {**strategies["fixed overlap 5"], **pausing}
    for t in targets:
        strategies[adaptive_name(t)] = {"overlap": lo, "min_labels": lo, "max_labels": hi, "target_confidence": t,
                                        "consensus_method": args.method}
        if pausing:
            strategies[adaptive_name(t) + ", pausing"] = {**strategies[adaptive_name(t)], **pausing}
    per_seed: dict[int, list[Outcome]] = {}
    if args.jobs > 1:
        with cf.ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {seed: pool.submit(_run_seed, args, seed, strategies) for seed in seeds}
            per_seed = {seed: f.result() for seed, f in futures.items()}
    else:
        per_seed = {seed: _run_seed(args, seed, strategies) for seed in seeds}

    fixed_name, plain_name = "fixed overlap 5", adaptive_name(args.target)
    head_name = plain_name + (", pausing" if pausing else "")

    def mean(name: str, attr: str) -> float:
        return float(np.mean([getattr(next(o for o in per_seed[s] if o.name == name), attr) for s in seeds]))

    def delta(name: str, base: str = fixed_name) -> list[float]:
        return [next(o for o in per_seed[s] if o.name == name).accuracy
                - next(o for o in per_seed[s] if o.name == base).accuracy for s in seeds]

    rows = []
    order = [n for n in strategies if not n.startswith("adaptive")]
    for t in sorted(targets):
        order += [n for n in strategies if n.startswith(adaptive_name(t))]
    for name in order:
        saved = 1 - mean(name, "labels") / mean(fixed_name, "labels")
        d = delta(name)
        rows.append([name + (" **(headline)**" if name == head_name else ""), round(mean(name, "labels")),
                     round(mean(name, "labels_per_item"), 2), f"{saved:.1%}", f"{mean(name, 'accuracy'):.4f}",
                     f"{np.mean(d):+.4f}" if name != fixed_name else "",
                     f"{min(d):+.4f} / {max(d):+.4f}" if name != fixed_name else "",
                     round(mean(name, "n_review"))])
    table = md_table(
        ["Strategy", "Labels spent", "Labels per item", "Fewer labels than fixed", "Accuracy",
         "Accuracy vs fixed (mean)", "vs fixed (worst / best seed)", "Items sent to review"],
        rows,
    )
    seed_rows = [[s, o.name, o.labels, f"{o.accuracy:.4f}", o.n_review] for s in seeds for o in per_seed[s]]
    seed_table = md_table(["Seed", "Strategy", "Labels", "Accuracy", "Review"], seed_rows)
    saved = 1 - mean(head_name, "labels") / mean(fixed_name, "labels")
    acc_delta = float(np.mean(delta(head_name)))
    met = saved >= 0.35 and acc_delta >= 0
    plain_saved = 1 - mean(plain_name, "labels") / mean(fixed_name, "labels")
    plain_delta = float(np.mean(delta(plain_name)))
    kinds = np.bincount(make_crowd(args.items, args.workers, args.classes, answers_per_task=1,
                                   spammer_frac=args.spammers, seed=seeds[0]).worker_kind, minlength=3)
    refits = (
        "on the server's schedule (`services.quality.maybe_refit` after every label, as `POST .../annotations` "
        "does: once max(25, 10% of all) labels are new)"
        if args.refit_every == 0
        else f"every {args.refit_every} labels"
    )
    if pausing:
        paused_fixed = fixed_name + ", pausing"
        headline = (
            f"Headline (target {args.target:g}, the example target of issue 5, with uninformative annotators "
            f"paused at `pause_below_information={args.pause:g}`): adaptive redundancy spends **{saved:.1%} fewer "
            f"labels** than a fixed overlap of 5 with accuracy {acc_delta:+.4f} (mean over seeds "
            f"{', '.join(map(str, seeds))}; target: >= 35% fewer at the same or better accuracy: "
            f"**{'met' if met else 'missed'}**). Against a fixed overlap of 5 that pauses the same annotators "
            f"(it still spends 5 labels per item, from better annotators) the accuracy difference is "
            f"{float(np.mean(delta(head_name, paused_fixed))):+.4f}. Without pausing, adaptive redundancy alone "
            f"spends {plain_saved:.1%} fewer labels at {plain_delta:+.4f}. The other rows are the trade-off "
            "curve: a higher target buys accuracy with labels.\n\n"
            "- Pausing (`settings.pause_below_information`, see `services.quality`): after each full refit, "
            "annotators with at least 20 answers whose labels remove less than that share of the uncertainty "
            "about the true class (normalised mutual information of their refitted confusion matrix) get no "
            "new tasks. In the simulation a paused annotator leaves, as one who finds an empty queue does.\n"
        )
    else:
        headline = (
            f"Headline (target {args.target:g}, the example target of issue 5): adaptive redundancy spends "
            f"**{saved:.1%} fewer labels** with accuracy {acc_delta:+.4f} (mean over seeds "
            f"{', '.join(map(str, seeds))}; target: >= 35% fewer at the same or better accuracy: "
            f"**{'met' if met else 'missed'}**). The other rows are the trade-off curve: a higher target buys "
            "accuracy with labels.\n\n"
        )
    text = (
        f"{table}\n\n"
        + headline
        + f"- Synthetic crowd (`benchmarks/synthetic_crowd.py`, one crowd per seed): {args.items:,} items, "
        f"{args.classes} classes, {args.workers} annotators (seed {seeds[0]}: {kinds[0]} good, {kinds[1]} "
        f"class-biased, {kinds[2]} spammers); each annotator's answer on an item is drawn once from their "
        "confusion matrix and shared by all strategies of that seed.\n"
        "- Through the services layer on a temporary SQLite database: annotators picked at random ask "
        "`next_task` and `submit_annotation` until the queue is empty for all of them; "
        f"the full refit ({args.method}) {refits} and once at the end; accuracy is the "
        "final consensus against the truth over all items (items still in review count with their consensus).\n"
        f"- Consensus method: `{args.method}`. The stopping posterior between refits is the model's posterior "
        "with the last refit's class prior and each annotator's refitted confusion matrix (one-coin at accuracy "
        "0.7 for annotators not yet refitted), tempered like the refit; after each refit the stopping rule runs "
        "again on the open items with the refitted posterior. Projects with adaptive redundancy temper only from "
        "gold tasks (`calibrate=\"gold\"`; there are none here, so the temperature is 1): fitted on held-out "
        "labels, it came out at 0.25-0.5, because the labels kept on stopped items agree by selection. Started "
        "items are served before new ones, least confident first.\n\n"
        f"<details><summary>Per seed</summary>\n\n{seed_table}\n\n</details>\n\n"
        "Rerun: `python benchmarks/adaptive.py` (add `--jobs 2` to run seeds in parallel)."
    )
    print(text)
    if not args.no_write:
        write_section("Adaptive redundancy (benchmarks/adaptive.py)", text)


if __name__ == "__main__":
    main()
