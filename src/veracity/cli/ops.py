"""Operations commands: audit verification, backups, model predictions, quality refits."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer

from veracity.cli._common import DbOption, console, fail
from veracity.config import get_settings
from veracity.services import decisions as decision_service
from veracity.services import items as item_service
from veracity.services import projects as project_service
from veracity.services import quality as quality_service
from veracity.services.actors import Actor
from veracity.services.audit import list_events, verify_chain
from veracity.storage import Database
from veracity.storage.migrate import upgrade
from veracity.storage.session import sqlite_path

__all__ = ["register"]

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
predictions_app = typer.Typer(help="Model predictions (pre-labels and probabilities).", no_args_is_help=True)
quality_app = typer.Typer(help="Project consensus and annotator skill.", no_args_is_help=True)
decide_app = typer.Typer(help="Decision support: conformal policies and the analyst queue.", no_args_is_help=True)

# The CLI acts with the workspace owner's authority: whoever can open the database file.
SYSTEM = Actor(user_id=0, name="cli", role="admin", clearance=9)


def _open(db: str | None) -> Database:
    database = Database(get_settings(db=db).db, create=False)
    upgrade(database)
    return database


@audit_app.command("verify")
def audit_verify(db: DbOption = None) -> None:
    """Recompute the audit hash chain; exit 1 if any event was altered, removed or reordered."""
    report = verify_chain(_open(db))
    console.print(report.message)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("log")
def audit_log(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="How many events, newest first.")] = 20,
) -> None:
    """Print the newest audit events as JSON lines."""
    for event in list_events(_open(db), limit=limit):
        typer.echo(json.dumps(event, ensure_ascii=False))


def backup(
    path: Annotated[Path, typer.Argument(help="File to write the backup to.")],
    db: DbOption = None,
) -> None:
    """Write a consistent copy of the workspace database (SQLite online backup, or pg_dump)."""
    database = _open(db)
    if path.exists():
        fail(f"{path}: already exists; choose a new file name")
    if not path.parent.is_dir():
        fail(f"{path}: folder {path.parent} does not exist")
    source = sqlite_path(database.url)
    if source is not None:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
        console.print(f"Backed up {source} to {path}")
        return
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        fail("pg_dump not found: install the PostgreSQL client to back up a PostgreSQL workspace")
    url = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([pg_dump, "--format=custom", f"--file={path}", url], check=True)
    console.print(f"Backed up {database.engine.url.database} to {path} (pg_restore format)")


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        fail(f"{path}: no such file")
    records: list[dict[str, Any]] = []
    if path.suffix in (".jsonl", ".ndjson"):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    fail(f"{path}: line {lineno}: malformed JSON ({exc.msg})")
        return records
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            fail(f"{path}: malformed JSON at line {exc.lineno} ({exc.msg})")
        if not isinstance(data, list):
            fail(f"{path}: expected a JSON list of prediction objects")
        return data
    if path.suffix in (".csv", ".parquet"):
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pacsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
        for row in table.to_pylist():
            probs = {k[2:]: v for k, v in row.items() if k.startswith("p:")}
            rec = {k: v for k, v in row.items() if not k.startswith("p:")}
            if probs:
                rec["probabilities"] = probs
            records.append(rec)
        return records
    fail(f"{path}: unsupported format {path.suffix!r}; use .jsonl, .json, .csv or .parquet")


@predictions_app.command("import")
def predictions_import(
    source: Annotated[Path, typer.Argument(help="JSONL/JSON/CSV/Parquet: external_id or item_id, value, "
                                                "probabilities (CSV/Parquet: one 'p:LABEL' column per label).")],
    project: Annotated[str, typer.Option(help="Project name.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    model_version: Annotated[str, typer.Option(help="Model version.")] = "",
    db: DbOption = None,
) -> None:
    """Load a model's outputs (probabilities per item and/or pre-labels) into a project."""
    database = _open(db)
    records = _read_records(source)
    view = project_service.find_project(database, SYSTEM, project)
    out = item_service.import_predictions(database, SYSTEM, view.id, records, model=model,
                                          model_version=model_version)
    console.print(f"Imported {out['imported']} predictions of {model} {model_version} into {project}")


@quality_app.command("refit")
def quality_refit(
    project: Annotated[str, typer.Argument(help="Project name.")],
    method: Annotated[str | None, typer.Option(help="mv, wmv, ds, onecoin, glad, mace or auto.")] = None,
    db: DbOption = None,
) -> None:
    """Refit a project's consensus and annotator skills with the full truth-inference model."""
    database = _open(db)
    view = project_service.find_project(database, SYSTEM, project)
    out = quality_service.refit_project(database, view.id, method=method)
    console.print(json.dumps(out))


@quality_app.command("flag")
def quality_flag(
    project: Annotated[str, typer.Argument(help="Project name.")],
    model: Annotated[str | None, typer.Option(help="Use this model's probabilities only.")] = None,
    db: DbOption = None,
) -> None:
    """Flag suspect labels of a project from its model probabilities (confident learning)."""
    database = _open(db)
    view = project_service.find_project(database, SYSTEM, project)
    console.print(json.dumps(quality_service.flag_label_issues(database, SYSTEM, view.id, model_name=model)))


@decide_app.command("policy")
def decide_policy(
    project: Annotated[str, typer.Argument(help="Project name.")],
    coverage: Annotated[float, typer.Option(help="Target coverage of the prediction sets.")] = 0.9,
    score: Annotated[str, typer.Option(help="lac, aps or raps.")] = "lac",
    threshold: Annotated[float, typer.Option(help="Top-label probability needed to auto-accept.")] = 0.0,
    class_conditional: Annotated[bool, typer.Option(help="Per-class (Mondrian) coverage.")] = False,
    calibration: Annotated[
        str, typer.Option(help="none, or temperature: recalibrate the model's probabilities on the trusted items.")
    ] = "none",
    db: DbOption = None,
) -> None:
    """Set a project's decision policy."""
    database = _open(db)
    view = project_service.find_project(database, SYSTEM, project)
    policy = {"coverage": coverage, "score": score, "threshold": threshold, "class_conditional": class_conditional,
              "calibration": calibration}
    console.print(json.dumps(decision_service.set_policy(database, SYSTEM, view.id, policy)))


@decide_app.command("run")
def decide_run(
    project: Annotated[str, typer.Argument(help="Project name.")],
    model: Annotated[str, typer.Option(help="Model whose probabilities to decide on.")],
    model_version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    db: DbOption = None,
) -> None:
    """Calibrate on trusted labels and route every undecided item: auto-accept or analyst queue."""
    database = _open(db)
    view = project_service.find_project(database, SYSTEM, project)
    out = decision_service.run_decisions(database, SYSTEM, view.id, model=model, model_version=model_version)
    console.print(json.dumps(out))


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command()(backup)
    app.add_typer(predictions_app, name="predictions")
    app.add_typer(quality_app, name="quality")
    app.add_typer(decide_app, name="decide")
