"""Operations commands: audit verification, backups, model predictions, quality refits."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
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
    """Write a consistent copy of the workspace database (SQLite online backup, or pg_dump).

    The database is copied as it is, never migrated first (a backup taken before an upgrade keeps
    the old schema). The copy is written to a temporary file next to ``path``, checked (SQLite:
    ``PRAGMA integrity_check``; PostgreSQL: ``pg_restore --list``), synced to disk and only then
    given its name: a backup that fails or is killed leaves nothing at ``path``.
    """
    database = Database(get_settings(db=db).db, create=False)
    if path.exists():
        fail(f"{path}: already exists; choose a new file name")
    if not path.parent.is_dir():
        fail(f"{path}: folder {path.parent} does not exist")
    source = sqlite_path(database.url)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        if source is not None:
            _backup_sqlite(source, partial)
            what = str(source)
        else:
            _backup_postgresql(database, partial)
            what = f"{database.engine.url.database} (pg_restore format)"
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(partial, path)  # fails if ``path`` appeared meanwhile: never overwrite
        except FileExistsError:
            fail(f"{path}: already exists; choose a new file name")
        _fsync_folder(path.parent)
    except OSError as exc:
        fail(f"{path}: backup failed ({exc.strerror or exc}); nothing was written")
    finally:
        for leftover in (partial, partial.with_name(partial.name + "-journal")):
            leftover.unlink(missing_ok=True)
        database.dispose()
    console.print(f"Backed up {what} to {path}")


def _backup_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup (a consistent snapshot while others write), then an integrity check."""
    try:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            problems = [row[0] for row in dst.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.Error as exc:
        fail(f"{source}: backup failed ({exc}); nothing was written")
    if problems != ["ok"]:
        fail(f"{source}: the copy failed its integrity check ({'; '.join(problems[:3])}); nothing was written")


def _backup_postgresql(database: Database, target: Path) -> None:
    """pg_dump (one consistent snapshot) in its custom format, then ``pg_restore --list`` reads it back."""
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if pg_dump is None or pg_restore is None:
        fail("pg_dump not found: install the PostgreSQL client to back up a PostgreSQL workspace")
    # the password goes in the environment, not on the command line, where any local user could
    # read it in the process list (ps, /proc/PID/cmdline)
    engine_url = database.engine.url
    url = engine_url.set(drivername="postgresql")._replace(password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if engine_url.password is not None:
        env["PGPASSWORD"] = str(engine_url.password)
    name = engine_url.database
    done = subprocess.run(
        [pg_dump, "--format=custom", f"--file={target}", url], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        fail(f"pg_dump of {name} failed: {done.stderr.strip() or f'exit code {done.returncode}'}; nothing was written")
    check = subprocess.run([pg_restore, "--list", str(target)], capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"pg_dump of {name} wrote a file pg_restore cannot read ({check.stderr.strip()}); nothing was written")


def _fsync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Columns that name the item of a CSV/Parquet row; identifiers are text, never numbers ("007").
_ID_COLUMNS = ("external_id", "id", "item_id")
_TEXT_ID_COLUMNS = ("external_id", "id")


def _decode(data: bytes, path: Path) -> str:
    """``data`` as text (a UTF-8 BOM dropped); bytes that are not UTF-8 fail naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        fail(f"{path}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
             "save the file as UTF-8")


def _read_jsonl(path: Path, data: bytes) -> tuple[list[Any], list[str]]:
    records: list[Any] = []
    names: list[str] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            fail(f"{path}: line {lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "save the file as UTF-8")
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            fail(f"{path}: line {lineno}: malformed JSON ({exc.msg})")
        names.append(f"{path}: line {lineno}")
    return records, names


def _read_json(path: Path, data: bytes) -> tuple[list[Any], list[str]]:
    """The elements of a JSON array and the line each starts on."""
    text = _decode(data, path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path}: malformed JSON at line {exc.lineno} ({exc.msg})")
    if not isinstance(document, list):
        fail(f"{path}: expected a JSON list of prediction objects")
    # Walk the (valid) array again with the standard scanner to find where each element starts.
    scan = json.JSONDecoder().scan_once
    ws = re.compile(r"[ \t\n\r,]*")
    names: list[str] = []
    pos = ws.match(text, text.index("[") + 1).end()
    line, counted = 1, 0
    for _ in document:
        line += text.count("\n", counted, pos)
        counted = pos
        names.append(f"{path}: line {line}")
        pos = ws.match(text, scan(text, pos)[1]).end()
    return document, names


def _csv_row_lines(text: str, path: Path) -> list[int]:
    """The line each data row of a CSV starts on; a row whose field count differs from the header fails."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    lines: list[int] = []
    end = 0  # last line of the previous row
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a long field is not an error
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:  # blank line (pyarrow skips them too)
                continue
            if header is None:
                header = row
            elif len(row) != len(header):
                fail(f"{path}: line {start}: expected {len(header)} fields as in the header, got {len(row)}")
            else:
                lines.append(start)
    except csv.Error as exc:
        fail(f"{path}: line {end + 1}: cannot read as CSV ({exc})")
    return lines


def _records_from_table(table: Any, path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa

    columns = table.column_names
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        fail(f"{path}: column {', '.join(map(repr, dupes))} appears more than once")
    if not any(c in columns for c in _ID_COLUMNS):
        hint = ""
        if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
            hint = "; the file seems not to be comma-separated (CSV must use ',')"
        fail(f"{path}: no external_id, id or item_id column (columns found: {', '.join(map(repr, columns))}){hint}")
    for name in _TEXT_ID_COLUMNS:
        if name in columns:
            t = table.schema.field(name).type
            if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
                    or pa.types.is_null(t)):
                fail(f"{path}: column {name!r} has type {t}; expected text or integers")
    if table.num_rows == 0:
        fail(f"{path}: no rows")
    records: list[dict[str, Any]] = []
    for row in table.to_pylist():
        probs = {k[2:]: v for k, v in row.items() if k.startswith("p:")}
        rec = {k: v for k, v in row.items() if not k.startswith("p:")}
        if probs:
            rec["probabilities"] = probs
        records.append(rec)
    return records


def _read_csv(path: Path, data: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    lines = _csv_row_lines(_decode(data, path), path)
    # ids and pre-labels are text: "007" stays "007", and a label "1" is not the number 1
    # (rating projects turn the text into numbers, see _rating_values)
    types = {name: pa.string() for name in (*_TEXT_ID_COLUMNS, "value")}
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(block_size=1 << 24),  # a row must fit in one block
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    except pa.ArrowInvalid as exc:
        fail(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})")
    if len(lines) == table.num_rows:
        names = [f"{path}: line {n}" for n in lines]
    else:  # the csv module and pyarrow split rows differently (unusual quoting)
        names = [f"{path}: row {i}" for i in range(1, table.num_rows + 1)]
    return _records_from_table(table, path), names


def _read_parquet(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        fail(f"{path}: cannot read as Parquet ({str(exc).splitlines()[0]})")
    names = [f"{path}: row {i}" for i in range(1, table.num_rows + 1)]
    return _records_from_table(table, path), names


def _read_records(path: Path) -> tuple[list[Any], list[str]]:
    """The prediction records of ``path`` and how error messages name each one ("FILE: line N")."""
    if path.is_dir():
        fail(f"{path}: is a directory, expected a file")
    if not path.is_file():
        fail(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        records, names = _read_parquet(path)
    elif suffix in (".jsonl", ".ndjson", ".json", ".csv"):
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"{path}: cannot read ({exc.strerror or exc})")
        if not data.strip():
            fail(f"{path}: the file is empty")
        if suffix == ".json":
            records, names = _read_json(path, data)
        elif suffix == ".csv":
            records, names = _read_csv(path, data)
        else:
            records, names = _read_jsonl(path, data)
    else:
        fail(f"{path}: unsupported format {path.suffix!r}; use .jsonl, .json, .csv or .parquet")
    if not records:
        fail(f"{path}: no rows")
    return records, names


def _rating_values(records: list[Any], names: list[str]) -> None:
    """A CSV's ``value`` texts as numbers, for a rating project (in place; an empty cell stays None)."""
    for rec, name in zip(records, names, strict=True):
        text = rec.get("value")
        if not isinstance(text, str):
            continue
        try:
            number = float(text)
        except ValueError:
            fail(f"{name}, value: expected a number for a rating, got {text!r}")
        if not math.isfinite(number):
            fail(f"{name}, value: expected a finite number for a rating, got {text!r}")
        rec["value"] = int(number) if number.is_integer() and re.fullmatch(r"\s*[+-]?\d+\s*", text) else number


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
    records, names = _read_records(source)
    view = project_service.find_project(database, SYSTEM, project)
    if source.suffix.lower() == ".csv" and view.schema.get("kind") == "rating":
        _rating_values(records, names)
    out = item_service.import_predictions(database, SYSTEM, view.id, records, model=model,
                                          model_version=model_version, record_names=names)
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
