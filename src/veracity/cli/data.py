"""Data commands: import, export, show, version create/list, diff (a thin shell over services.ingest)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from veracity.cli._common import DbOption, console, err_console, fail
from veracity.config import get_settings
from veracity.ingest import EXPORT_FORMATS, IMPORT_FORMATS, Ontology
from veracity.services import ingest as ingest_service
from veracity.storage import Database
from veracity.storage.migrate import upgrade

__all__ = ["register"]

version_app = typer.Typer(help="Immutable dataset versions.", no_args_is_help=True)


def _say(text: object) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _open(db: str | None) -> tuple[Database, int]:
    settings = get_settings(db=db)
    database = Database(settings.db, create=True)
    upgrade(database)
    return database, settings.max_upload_bytes


def import_(
    source: Annotated[Path, typer.Argument(help="File, folder or .zip to import.", show_default=False)],
    dataset: Annotated[
        str,
        typer.Option("--dataset", help="Dataset that receives the items (created if new); with --project, optional."),
    ] = "",
    format: Annotated[
        str | None, typer.Option("--format", help=f"One of: {', '.join(IMPORT_FORMATS)}. Guessed when omitted.")
    ] = None,
    map_: Annotated[
        Path | None, typer.Option("--map", help="Ontology TOML mapping source label names onto project labels.")
    ] = None,
    allow_unmapped: Annotated[
        bool, typer.Option("--allow-unmapped", help="Park labels the ontology does not map instead of stopping.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Write bad rows to a side file (SOURCE.rejected.jsonl) and go on.")
    ] = False,
    rejected: Annotated[Path | None, typer.Option("--rejected", help="Side file for --skip-bad.")] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Project (name or id) whose tasks the items become, the labels their annotations "
            "(without it, labels are kept on the items).",
        ),
    ] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Rows per transaction.")] = 20_000,
    db: DbOption = None,
) -> None:
    """Import a source into a dataset, with provenance, duplicate report and progress."""
    if not dataset and project is None:
        fail("--dataset NAME is required (or --project NAME to import into a project's dataset)")
    if chunk_size < 1:
        fail(f"--chunk-size must be at least 1, got {chunk_size}")
    ontology = Ontology.from_toml(map_) if map_ is not None else None  # a bad mapping file stops before the database
    database, max_bytes = _open(db)
    started = time.perf_counter()
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10} items/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task(f"Importing {source.name}", total=None, rate="-")

        def progress(done: int, total: int | None) -> None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}")

        report = ingest_service.import_source(
            database,
            source,
            dataset=dataset,
            format=format,
            project=project,
            ontology=ontology,
            allow_unmapped=allow_unmapped,
            skip_bad=skip_bad,
            rejected_path=rejected,
            chunk_size=chunk_size,
            max_bytes=max_bytes,
            progress=progress,
        )
    elapsed = time.perf_counter() - started
    _say(
        f"Imported {report.imported} item(s) into dataset {report.dataset!r} (batch {report.batch_id}, "
        f"format {report.format}) in {elapsed:.1f}s: {report.duplicates} exact duplicate(s), "
        f"{report.rejected} rejected row(s)."
    )
    if report.duplicate_of:
        first = report.duplicate_of[0]
        _say(f"  first duplicate: {first['source']} row {first['row']} = {first['duplicate_of']}")
    if report.rejected_path:
        _say(f"  rejected rows written to {report.rejected_path}")
    if report.labels_imported or report.labels_parked:
        _say(f"  labels: {report.labels_imported} imported, {report.labels_parked} parked for review")
    if report.labels_not_stored:
        _say(f"  {report.labels_not_stored} source label(s) not stored: pass --project to import them as annotations")
    if report.unmapped:
        _say(f"  unmapped labels (parked): {', '.join(report.unmapped)}")


def export(
    dataset: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    format: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(EXPORT_FORMATS)}.")],
    out: Annotated[Path, typer.Option("--out", help="File (or folder for yolo, voc, hf) to write.")],
    version: Annotated[int | None, typer.Option("--version", help="Export this version (default: current).")] = None,
    db: DbOption = None,
) -> None:
    """Export a dataset (or one of its versions) in a standard format."""
    database, _ = _open(db)
    report = ingest_service.export_dataset(database, dataset, format, out, version=version)
    which = f"version {report.version}" if report.version is not None else "current items"
    _say(f"Wrote {report.n_records} record(s) of {report.dataset!r} ({which}) as {report.format} to {report.path}")


def show(
    item: Annotated[int, typer.Argument(help="Item id.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the lineage as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Show an item's lineage: source, row, hash, import batch, labels and versions."""
    database, _ = _open(db)
    lineage = ingest_service.item_lineage(database, item)
    if as_json:
        typer.echo(json.dumps(lineage, indent=2, ensure_ascii=False, default=str))
        return
    _say(f"[bold]Item {lineage['item_id']}[/] in dataset {lineage['dataset']!r}")
    rows: list[tuple[str, Any]] = [
        ("external id", lineage["external_id"]),
        ("data", json.dumps(lineage["data"], ensure_ascii=False)[:200]),
        ("content hash", lineage["content_hash"]),
        ("source", f"{lineage['source']} (row {lineage['source_row']})"),
    ]
    batch = lineage["import_batch"]
    if batch:
        rows.append(
            (
                "import batch",
                f"{batch['id']}: {batch['format']} by {batch['created_by'] or 'cli'} at {batch['created_at']}, "
                f"{batch['importer_version']}",
            )
        )
    table = Table(show_header=False, box=None)
    for k, v in rows:
        table.add_row(k, str(v))
    _say(table)
    if lineage["annotations"]:
        ann = Table("id", "project", "annotator", "value", "origin", "status", title="Labels")
        for a in lineage["annotations"]:
            ann.add_row(
                str(a["id"]),
                str(a["project_id"]),
                str(a["annotator"] or "-"),
                json.dumps(a["value"], ensure_ascii=False)[:60],
                str(a["source"] or a["origin"]),
                a["status"],
            )
        _say(ann)
    if lineage.get("source_labels"):
        src = Table("batch", "annotator", "value", "origin", "status", title="Source labels (no project)")
        for lab in lineage["source_labels"]:
            src.add_row(
                str(lab["import_batch"] or "-"),
                str(lab["annotator"] or "-"),
                json.dumps(lab["value"], ensure_ascii=False)[:60],
                str(lab["origin"]),
                lab["status"],
            )
        _say(src)
    for c in lineage["consensus"]:
        _say(f"consensus in project {c['project_id']}: {c['label']!r} (confidence {c['confidence']})")
    for v in lineage["versions"]:
        _say(f"in version {v['version']}: label {v['label']!r}")


@version_app.command("create")
def version_create(
    dataset: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    note: Annotated[str, typer.Option("--note", help="What this version is for.")] = "",
    db: DbOption = None,
) -> None:
    """Freeze the dataset's current items and labels as its next version."""
    database, _ = _open(db)
    v = ingest_service.create_version(database, dataset, note=note)
    _say(f"Created version {v.number} of {v.dataset!r} with {v.n_items} item(s).")


@version_app.command("list")
def version_list(
    dataset: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    db: DbOption = None,
) -> None:
    """List a dataset's versions."""
    database, _ = _open(db)
    for v in ingest_service.list_versions(database, dataset):
        typer.echo(f"{v.number}\t{v.n_items}\t{v.created_at}\t{v.note}")


def diff(
    dataset: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    v1: Annotated[int, typer.Argument(help="Older version number.", show_default=False)],
    v2: Annotated[int, typer.Argument(help="Newer version number.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full difference as JSON.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Items listed per group (text output).")] = 20,
    db: DbOption = None,
) -> None:
    """List items added, removed and relabelled between two versions."""
    database, _ = _open(db)
    d = ingest_service.diff_versions(database, dataset, v1, v2)
    if as_json:
        typer.echo(json.dumps(d.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    _say(
        f"{dataset!r} v{v1} -> v{v2}: {len(d.added)} added, {len(d.removed)} removed, "
        f"{len(d.relabelled)} relabelled, {len(d.changed)} changed content"
    )
    for name, sign in (("added", "+"), ("removed", "-")):
        for e in getattr(d, name)[:limit]:
            typer.echo(f"{sign} item {e['item_id']} ({e['external_id']})")
    for e in d.relabelled[:limit]:
        typer.echo(f"~ item {e['item_id']} ({e['external_id']}): {e['old']!r} -> {e['new']!r}")


def duplicates(
    dataset: Annotated[str, typer.Argument(help="Dataset name.", show_default=False)],
    field: Annotated[
        str | None, typer.Option("--field", help="Data field to compare (default text, else image).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Text: Jaccard similarity of shingles.")] = 0.8,
    max_distance: Annotated[int, typer.Option("--max-distance", help="Images: dHash bits that may differ.")] = 6,
    as_json: Annotated[bool, typer.Option("--json", help="Print the clusters as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """List clusters of near-duplicate items (texts by MinHash/LSH, images by perceptual hash)."""
    database, _ = _open(db)
    clusters = ingest_service.near_duplicates(
        database, dataset, field=field, threshold=threshold, max_distance=max_distance
    )
    if as_json:
        typer.echo(json.dumps(clusters, indent=2))
        return
    _say(f"{len(clusters)} cluster(s) of near duplicates in {dataset!r}")
    for i, c in enumerate(clusters, start=1):
        ids = ", ".join(f"{e['item_id']}" + (f" ({e['external_id']})" if e["external_id"] else "") for e in c["items"])
        typer.echo(f"{i}. {c['size']} items: {ids}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("import")(import_)
    app.command()(export)
    app.command()(show)
    app.command()(diff)
    app.command()(duplicates)
    app.add_typer(version_app, name="version")
