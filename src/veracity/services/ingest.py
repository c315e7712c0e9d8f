"""Import sources into datasets, freeze dataset versions, diff them, export them, show lineage.

``veracity.ingest`` reads and writes files; this module stores what it reads. An import runs as
one :class:`~veracity.storage.models.ImportBatch` (the provenance every item points to: source,
format, importer version, who) and writes the records chunk by chunk, one transaction per chunk:
a chunk is stored whole or not at all, and the batch's counts are those of the chunks stored.
The source's first chunk is read before the dataset and the batch are created: a source that
cannot be read, that holds no records, or whose first chunk has a bad row leaves nothing behind.
Later bad rows stop the import at their chunk (earlier chunks stay, and the error says how many)
unless ``skip_bad``, which writes them to a side file instead. Exact duplicates (same content
hash as an item already in the dataset or earlier in the chunk) are not stored twice; they are
counted and sampled in the report. The next chunk is read while the current one is stored: in a
thread, or for a large source imported without a project in a worker process
(``services._pipeline``) that hands over ready rows.

Labels carried by a source are stored as annotations (origin ``import``) when the import names a
project whose dataset receives the items; annotations that do not fit the project's schema, or
whose labels the ontology could not map (``allow_unmapped``), are stored with status ``parked``
for review. Without a project there is no task to hang a label on: the labels are kept on the items
(table ``item_labels``, with their batch, annotator and origin; unmapped ones parked), exported as
the items' annotations and frozen into versions when nothing better labels the item.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, func, insert, literal, select, update
from sqlalchemy.orm import Session

from veracity import __version__
from veracity.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaValidationError,
    StorageError,
)
from veracity.ingest import (
    IMAGE_SUFFIXES,
    BadRow,
    MappingReport,
    Ontology,
    SourceRecord,
    exact_duplicates,
    infer_kind,
    near_duplicate_images,
    near_duplicate_texts,
    normalise_format,
    read_source,
    sniff_format,
    write_export,
)
from veracity.ingest.records import hash_keys
from veracity.ingest.sources import DEFAULT_MAX_BYTES, count_records
from veracity.services import _pipeline
from veracity.services._bulk import (
    IMPORT_ITEM_COLUMNS,
    IMPORT_LABEL_COLUMNS,
    TASK_COLUMNS,
    existing_hashes,
    gc_paused,
    insert_rows,
    lock_dataset,
    prefetched,
)
from veracity.services._common import canonical_json, iso, now
from veracity.services._pipeline import ItemRow, LabelRow, item_row, item_rows, rows_in_process
from veracity.services.actors import Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import validate_value
from veracity.services.projects import GOLD_TARGET, iter_export_records, require_role
from veracity.storage import Database
from veracity.storage.models import (
    Annotation,
    Consensus,
    Dataset,
    DatasetVersion,
    DatasetVersionItem,
    ImportBatch,
    Item,
    ItemLabel,
    Project,
    ProjectDataset,
    Task,
    User,
)

__all__ = [
    "IMPORTER_VERSION",
    "ExportReport",
    "ImportReport",
    "VersionDiff",
    "VersionView",
    "create_version",
    "diff_versions",
    "export_dataset",
    "export_project",
    "import_source",
    "item_lineage",
    "list_versions",
    "near_duplicates",
]

IMPORTER_VERSION = f"veracity-ingest {__version__}"
MAX_SAMPLES = 1000  # duplicates / rejected rows listed in a report (all are counted)

Progress = Callable[[int, int | None], None]


# --------------------------------------------------------------------------- reports
@dataclass
class ImportReport:
    """What an import did. ``imported + duplicates + rejected`` is every row read."""

    dataset: str
    dataset_id: int
    batch_id: int
    source: str
    format: str
    project_id: int | None = None
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_path: str | None = None
    labels_imported: int = 0
    labels_parked: int = 0
    labels_not_stored: int = 0  # kept for compatibility: labels are always stored now
    unmapped: list[str] = field(default_factory=list)
    duplicate_of: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionView:
    dataset: str
    number: int
    n_items: int
    note: str
    created_at: str | None


@dataclass
class VersionDiff:
    """Items added, removed, relabelled or changed in content between two versions."""

    dataset: str
    v1: int
    v2: int
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    relabelled: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExportReport:
    path: str
    format: str
    n_records: int
    dataset: str
    version: int | None


# --------------------------------------------------------------------------- helpers
def _check_writer(actor: Actor | None) -> None:
    if actor is not None and actor.role not in ("admin", "manager"):
        raise PermissionDeniedError("only admins and managers can import data and create dataset versions")


def _check_reader(actor: Actor | None) -> None:
    if actor is not None and actor.role == "annotator":
        raise PermissionDeniedError("annotators cannot export datasets; ask a manager")


def _dataset(session: Session, name: str, *, create: bool = False) -> Dataset:
    ds = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
    if ds is None:
        if not create:
            raise NotFoundError(f"dataset {name!r} not found")
        ds = Dataset(name=name)
        session.add(ds)
        session.flush()
    return ds


def _project(session: Session, actor: Actor | None, project: int | str) -> Project:
    if isinstance(project, str) and not project.isdigit():
        pid = session.execute(select(Project.id).where(Project.name == project)).scalar_one_or_none()
        if pid is None:
            raise NotFoundError(f"project {project!r} not found")
    else:
        pid = int(project)
    if actor is not None:
        found, _ = require_role(session, actor, pid, ("manager",))
        return found
    found = session.get(Project, pid)
    if found is None:
        raise NotFoundError(f"project {project} not found")
    return found


class _Rejects:
    """Rejected rows: counted, sampled, and written to a JSONL side file when one is given.

    A raw line that is not valid UTF-8 (read with ``surrogateescape``) is written with its bad
    bytes as ``\\xNN`` escapes, so the side file is always UTF-8.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.samples: list[dict[str, Any]] = []
        self._fh: IO[str] | None = None

    def __call__(self, bad: BadRow) -> None:
        self.count += 1
        raw = bad.raw
        if raw is not None and not raw.isascii():
            with suppress(UnicodeEncodeError):  # another lone surrogate: the file's errors handler escapes it
                raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        entry = {"source": bad.source, "row": bad.row, "reason": bad.reason, "raw": raw}
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append({k: v for k, v in entry.items() if k != "raw"})
        if self.path is not None:
            if self._fh is None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self.path.open("w", encoding="utf-8", errors="backslashreplace")
                except OSError as exc:
                    raise InvalidInputError(f"{self.path}: cannot write the rejected rows ({exc})") from None
            self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class _HashFilter:
    """The hash keys (64-bit prefixes) of the items stored by this import, as sorted int64 arrays.

    8 bytes per item. A key match is only a candidate: it is confirmed against the database,
    so a prefix collision can never report a false duplicate.
    """

    def __init__(self, top: int) -> None:
        self._parts: list[npt.NDArray[np.int64]] = []
        self.top = top  # the largest item id when this import last stored (or started)
        self.stale = False

    def still_alone(self, s: Session) -> bool:
        """Whether no item was stored by anyone else since :attr:`top`, checked in the chunk's
        transaction under the dataset lock; once another writer stored items (into any dataset:
        ids are compared, not the dataset's rows), the filter is off for the rest of the import
        and duplicates are looked up in the database."""
        if not self.stale:
            self.stale = s.execute(select(func.coalesce(func.max(Item.id), 0))).scalar_one() != self.top
        return not self.stale

    def stored(self, item_ids: list[int]) -> None:
        if item_ids:
            self.top = max(self.top, max(item_ids))

    def add(self, keys: list[int]) -> None:
        if keys:
            self._parts.append(np.sort(np.asarray(keys, dtype=np.int64)))
        if len(self._parts) > 8:
            self._parts = [np.sort(np.concatenate(self._parts))]

    def candidates(self, hashes: list[str], keys: list[int]) -> list[str]:
        """The hashes (with their keys, in the same order) whose key was stored before (usually none)."""
        if not self._parts or not hashes:
            return []
        pre = np.asarray(keys, dtype=np.int64)
        order = np.argsort(pre)
        pre = pre[order]  # sorted needles: each binary search starts where the last one ended (~7x faster)
        found = np.zeros(len(hashes), dtype=bool)
        for part in self._parts:
            pos = np.minimum(np.searchsorted(part, pre), len(part) - 1)
            found |= part[pos] == pre
        if not found.any():
            return []
        hit = np.zeros(len(hashes), dtype=bool)
        hit[order] = found
        return [h for h, m in zip(hashes, hit.tolist(), strict=True) if m]


def _annotator_ids(session: Session, names: set[str]) -> dict[str, int]:
    """Users standing for source annotators (``ext:NAME``, inactive), created when missing."""
    if not names:
        return {}
    wanted = {n: f"ext:{n}"[:120] for n in names}
    rows = session.execute(select(User.name, User.id).where(User.name.in_(list(wanted.values()))))
    by_name = {name: uid for name, uid in rows}
    missing = [u for u in wanted.values() if u not in by_name]
    if missing:
        session.execute(insert(User), [{"name": u, "role": "annotator", "is_active": False} for u in missing])
        rows = session.execute(select(User.name, User.id).where(User.name.in_(missing)))
        by_name.update((name, uid) for name, uid in rows)
    return {n: by_name[u] for n, u in wanted.items()}


# --------------------------------------------------------------------------- import
def import_source(
    db: Database,
    source: str | os.PathLike[str],
    *,
    dataset: str,
    format: str | None = None,
    actor: Actor | None = None,
    project: int | str | None = None,
    ontology: Ontology | None = None,
    allow_unmapped: bool = False,
    skip_bad: bool = False,
    rejected_path: str | os.PathLike[str] | None = None,
    chunk_size: int = 20_000,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    label_field: str | None = "label",
    progress: Progress | None = None,
) -> ImportReport:
    """Import a file, folder or archive into the dataset ``dataset`` (created when missing).

    Parameters
    ----------
    db : Database
    source : path-like
        Anything :func:`veracity.ingest.read_source` reads.
    dataset : str
        Name of the dataset that receives the items. With ``project``, the project's own dataset
        is used and ``dataset`` must name it (or be empty).
    format : str, optional
        Source format; guessed from the name and content when omitted.
    actor : Actor, optional
        The caller (None: the local operator of the CLI). Needs role admin or manager.
    project : int or str, optional
        Project (id or name) whose tasks the new items become and whose schema the source labels
        are validated against; labels are stored as annotations with origin ``import``.
    ontology : Ontology, optional
        Maps source label names onto the project's labels. Unmapped names stop the import before
        anything is written (listing all of them) unless ``allow_unmapped`` parks them.
    skip_bad : bool
        Write rejected rows to ``rejected_path`` (default ``SOURCE.rejected.jsonl``) and go on.
        Otherwise the first bad row stops the import; chunks before it stay imported.
    rejected_path : path-like, optional
        The side file of ``skip_bad``. Refused before anything is read when it is a folder, the
        source itself, inside a source folder, or cannot be written.
    chunk_size : int
        Records per transaction (at least 1).
    progress : callable, optional
        Called as ``progress(rows_done, rows_total_or_None)`` after each chunk.

    Returns
    -------
    ImportReport

    Raises
    ------
    InvalidInputError
        Bad options, a source that cannot be read or holds no records (``"SOURCE: no records"``),
        or a bad row without ``skip_bad`` (``"SOURCE: row N: reason"``).
    """
    _check_writer(actor)
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be at least 1, got {chunk_size}")
    src = Path(source).resolve()
    fmt = normalise_format(format) if format else sniff_format(src, max_bytes=max_bytes)
    rejects = _Rejects(None)
    if skip_bad:
        side = Path(rejected_path) if rejected_path else src.with_name(src.name + ".rejected.jsonl")
        rejects = _Rejects(_side_file(side, src))

    def records(on_bad: Callable[[BadRow], None] | None) -> Iterator[list[SourceRecord]]:
        return read_source(
            src, fmt, chunk_size=chunk_size, max_bytes=max_bytes, label_field=label_field, on_bad_row=on_bad,
            gold_field="gold" if project is not None else None,  # as the REST import: a gold task's answer
        )

    if ontology is not None and not allow_unmapped:  # dry run: refuse before writing anything
        scan = MappingReport()
        for chunk in records((lambda _bad: None) if skip_bad else None):
            ontology.unmapped(chunk, scan)
        if scan.unmapped:
            raise InvalidInputError(
                f"{src}: {scan.unmapped_message()}; map them in the ontology or pass --allow-unmapped",
                details=sorted(scan.unmapped),
            )
    if project is not None:  # who may import where, before the source is read
        with db.transaction(write=False) as s:
            _project_dataset(s, actor, project, dataset)

    total = count_records(src, fmt)
    mapping = MappingReport()
    on_bad = rejects if skip_bad else None

    def row_chunks() -> Iterator[_pipeline.RowChunk]:
        for chunk in records(on_bad):
            if ontology is not None:
                ontology.apply(chunk, allow_unmapped=True, report=mapping)
            yield item_rows(chunk)

    # Items (and their labels) only: the reader hands over ready rows. A large source is read in
    # a second process, a small one (or one with an ontology to apply) in a thread; either way
    # the next chunk is read while this one is stored. A project import stores records.
    stream: Iterator[Any]
    if project is not None:
        stream = prefetched(records(on_bad))
    elif ontology is None and total is not None and total >= _pipeline.PROCESS_MIN_ROWS and _pipeline.can_use_process():
        stream = rows_in_process(
            src, fmt, on_bad=on_bad, chunk_size=chunk_size, max_bytes=max_bytes, label_field=label_field
        )
    else:
        stream = prefetched(row_chunks())
    try:
        with closing(stream), gc_paused():
            # The first chunk is read before anything is stored: a source that cannot be read, or
            # that holds no records, leaves no dataset and no import batch behind.
            try:
                first = next(stream, None)
            except InvalidInputError as exc:
                exc.message = f"{exc.message}; nothing was imported"
                exc.args = (exc.message,)
                raise
            if first is None and not rejects.count:
                raise InvalidInputError(f"{src}: no records", details={"source": str(src)})
            report, schema, project_info, seen_filter = _start_batch(db, actor, project, dataset, src, fmt)
            chunks = chain([first], stream) if first is not None else stream
            done = 0
            status = "complete"
            try:  # from here on the batch is always finished: complete, or stopped with what was stored
                if project_info is None:
                    for items, labels in chunks:
                        with _chunk_transaction(db, report, bulk=True) as s:
                            _store_rows(s, items, labels, report, seen_filter)
                        done += len(items)
                        if progress is not None:
                            progress(done + rejects.count, total)
                else:
                    for chunk in chunks:
                        if ontology is not None:
                            ontology.apply(chunk, allow_unmapped=True, report=mapping)
                        with _chunk_transaction(db, report) as s:
                            _store_chunk(s, chunk, report, on_bad, schema, project_info, seen_filter)
                        done += len(chunk)
                        if progress is not None:
                            progress(done + rejects.count, total)
            except BaseException as exc:
                error = exc
                if isinstance(exc, UnicodeEncodeError):  # text a reader let through that cannot be stored
                    error = InvalidInputError(f"{src}: a record holds text that is not valid UTF-8 ({exc.reason})")
                status = f"stopped: {error}"
                if isinstance(error, InvalidInputError):
                    kept = f"{report.imported} item(s) in earlier chunks were imported (batch {report.batch_id})"
                    error.message = f"{error.message}; import stopped, {kept}"
                    error.args = (error.message,)
                if error is exc:
                    raise
                raise error from None
            finally:
                rejects.close()
                report.rejected = rejects.count
                report.rejected_path = str(rejects.path) if rejects.path is not None and rejects.count else None
                report.errors = rejects.samples
                report.unmapped = sorted(mapping.unmapped)
                _finish_batch(db, report, status, actor, mapping)
    finally:
        rejects.close()
    return report


def _side_file(path: Path, source: Path) -> Path:
    """The file for rejected rows, checked before the import reads or writes anything.

    It may not be a folder, the source itself (after resolving links), or inside a source folder;
    it must be writable or creatable.
    """
    target = path.resolve()
    what = f"{path}: the file for rejected rows"
    if target.is_dir():
        raise InvalidInputError(f"{what} is a folder; name a file")
    try:
        same = target == source or (target.exists() and source.exists() and os.path.samefile(target, source))
    except OSError:
        same = False
    if same:
        raise InvalidInputError(f"{what} is the source being imported; name another file")
    if source.is_dir() and target.is_relative_to(source):
        raise InvalidInputError(f"{what} is inside the folder being imported; name a file outside it")
    existing = next(p for p in (target, *target.parents) if p.exists())
    if existing != target and not existing.is_dir():
        raise InvalidInputError(f"{what} cannot be created: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise InvalidInputError(f"{what} cannot be written: permission denied on {existing}")
    return path


def _project_dataset(s: Session, actor: Actor | None, project: int | str, dataset: str) -> tuple[Project, Dataset]:
    """The project an import names and the dataset it fills: the project's own, or ``dataset`` when the
    project labels it."""
    proj = _project(s, actor, project)
    ds = s.get(Dataset, proj.dataset_id)
    assert ds is not None
    if dataset and dataset != ds.name:
        linked = s.execute(
            select(Dataset)
            .join(ProjectDataset, ProjectDataset.dataset_id == Dataset.id)
            .where(ProjectDataset.project_id == proj.id, Dataset.name == dataset)
        ).scalar_one_or_none()
        if linked is None:
            raise InvalidInputError(
                f"dataset {dataset!r} is not labelled by project {proj.name!r}; its own dataset is {ds.name!r}"
            )
        ds = linked
    return proj, ds


def _start_batch(
    db: Database, actor: Actor | None, project: int | str | None, dataset: str, src: Path, fmt: str
) -> tuple[ImportReport, dict[str, Any] | None, tuple[int, int, int] | None, _HashFilter | None]:
    """Create the dataset (when new) and the import batch (status ``running``).

    Returns the report to fill, the project's label schema and ``(id, schema version, labels
    wanted)`` (None without a project), and the in-memory duplicate filter when the dataset is
    empty and no other import is filling it (None: duplicates are looked up chunk by chunk).
    """
    with db.transaction() as s:
        if project is not None:
            proj, ds = _project_dataset(s, actor, project, dataset)
        else:
            proj, ds = None, _dataset(s, dataset, create=True)
        batch = ImportBatch(
            dataset_id=ds.id,
            source=str(src),
            format=fmt,
            importer_version=IMPORTER_VERSION,
            created_by=actor.user_id if actor else None,
            report={"status": "running"},
        )
        s.add(batch)
        s.flush()
        report = ImportReport(
            dataset=ds.name,
            dataset_id=ds.id,
            batch_id=batch.id,
            source=str(src),
            format=fmt,
            project_id=proj.id if proj else None,
        )
        schema = dict(proj.label_schema) if proj else None
        project_info = (proj.id, proj.schema_version, proj.min_labels or proj.overlap) if proj else None
        # Into an empty dataset that no other import is filling, the hashes to check against are
        # only this import's own: an in-memory filter replaces the per-chunk index lookups.
        # read first: an item stored after this read makes the filter stale (``_HashFilter.still_alone``)
        top = s.execute(select(func.coalesce(func.max(Item.id), 0))).scalar_one()
        fresh = (
            s.execute(select(Item.id).where(Item.dataset_id == ds.id).limit(1)).first() is None
            and s.execute(
                select(func.count())
                .select_from(ImportBatch)
                .where(ImportBatch.dataset_id == ds.id, ImportBatch.id != batch.id, ImportBatch.n_items == 0)
            ).scalar_one()
            == 0
        )
    return report, schema, project_info, _HashFilter(top) if fresh else None


@contextmanager
def _chunk_transaction(db: Database, report: ImportReport, *, bulk: bool = False) -> Iterator[Session]:
    """The transaction of one chunk; when it fails (nothing of the chunk is stored) the report's
    counts go back to what the committed chunks stored.

    The batch's item and duplicate counts are written with the chunk, so that a batch whose process
    was killed still says what it stored (it stays ``running``; importing the source again skips
    the stored items as duplicates)."""
    counts = (report.imported, report.duplicates, report.labels_imported, report.labels_parked)
    n_samples = len(report.duplicate_of)
    try:
        with db.transaction(bulk=bulk) as s:
            yield s
            s.execute(
                update(ImportBatch)
                .where(ImportBatch.id == report.batch_id)
                .values(n_items=report.imported, n_duplicates=report.duplicates)
            )
    except BaseException:
        report.imported, report.duplicates, report.labels_imported, report.labels_parked = counts
        del report.duplicate_of[n_samples:]
        raise


def _store_chunk(
    s: Session,
    chunk: list[SourceRecord],
    report: ImportReport,
    rejects: _Rejects | None,
    schema: dict[str, Any] | None,
    project_info: tuple[int, int, int],
    seen_filter: _HashFilter | None = None,
) -> None:
    """Write one chunk of a project import in the caller's transaction: items, tasks and annotations."""
    lock_dataset(s, report.dataset_id)
    if seen_filter is not None and not seen_filter.still_alone(s):
        seen_filter = None
    if schema is not None:
        chunk = _validated(chunk, schema, rejects)

    key_of = dict(zip((r.content_hash for r in chunk), hash_keys([r.content_hash for r in chunk]), strict=True))

    def known(hashes: list[str]) -> dict[str, int]:
        if seen_filter is not None:
            hashes = seen_filter.candidates(hashes, [key_of[h] for h in hashes])
            if not hashes:
                return {}
        return existing_hashes(s, report.dataset_id, hashes)

    unique, dups = exact_duplicates(chunk, known=known)
    keys = [key_of[r.content_hash] for r in unique]
    if seen_filter is not None:
        seen_filter.add(keys)
    report.duplicates += len(dups)
    for d in dups[: max(0, MAX_SAMPLES - len(report.duplicate_of))]:
        first = d.first
        ref = {"item_id": first} if isinstance(first, int) else {"source": first[0], "row": first[1]}
        report.duplicate_of.append({"source": d.record.source, "row": d.record.row, "duplicate_of": ref})
    if not unique:
        return
    created = now()
    # Raw executemany (SQLite) or COPY (PostgreSQL) with the canonical JSON computed for the hash:
    # no ORM and no per-row bind processing (services._bulk.insert_rows).
    item_ids = insert_rows(
        s,
        "items",
        IMPORT_ITEM_COLUMNS,
        [item_row(r, key) for r, key in zip(unique, keys, strict=True)],
        created_at=created,
        fixed={"dataset_id": report.dataset_id, "batch_id": report.batch_id},
    )
    if seen_filter is not None:
        seen_filter.stored(item_ids)
    project_id, schema_version, target = project_info
    task_ids = insert_rows(
        s,
        "tasks",
        TASK_COLUMNS,
        [
            (project_id, iid, "open", gold is not None, None if gold is None else canonical_json(gold), False, 1.0,
             GOLD_TARGET if gold is not None else target, 0, 0)
            for iid, gold in zip(item_ids, (r.meta.get("gold") for r in unique), strict=True)
        ],
        created_at=created,
    )
    names = {a["annotator"] for r in unique for a in r.annotations if a.get("annotator")}
    names |= {a["annotator"] for r in unique for a in r.meta.get("parked_annotations", ()) if a.get("annotator")}
    users = _annotator_ids(s, names)
    ann_rows = []
    for rec, tid in zip(unique, task_ids, strict=True):
        for ann, status in [(a, "active") for a in rec.annotations] + [
            (a, "parked") for a in rec.meta.get("parked_annotations", ())
        ]:
            reason = f" ({ann['reason']})" if ann.get("reason") else ""
            ann_rows.append(
                {
                    "task_id": tid,
                    "project_id": project_id,
                    "user_id": users.get(ann.get("annotator") or ""),
                    "value": ann["value"],
                    "schema_version": schema_version,
                    "origin": "import",
                    "source": f"import batch {report.batch_id}: {ann.get('origin')}{reason}",
                    "status": status,
                    "created_at": created,
                }
            )
            if status == "active":
                report.labels_imported += 1
            else:
                report.labels_parked += 1
    if ann_rows:
        s.execute(insert(Annotation.__table__), ann_rows)
    report.imported += len(item_ids)


def _store_rows(
    s: Session,
    items: list[ItemRow],
    labels: list[LabelRow],
    report: ImportReport,
    seen_filter: _HashFilter | None,
) -> None:
    """Write one chunk of an import without a project in the caller's bulk transaction.

    ``items`` and ``labels`` are :func:`services._pipeline.item_rows`. Exact duplicates (of an
    item already in the dataset, or of an earlier row of the chunk) are counted and sampled, not
    stored, and neither are their labels. On SQLite a bulk transaction does not check foreign
    keys row by row, so the dataset and the batch are checked here once, under the write lock;
    the labels point to items inserted just before.
    """
    conn = s.connection()
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM datasets WHERE id = ?) + (SELECT count(*) FROM import_batches WHERE id = ?)",
            (report.dataset_id, report.batch_id),
        ).scalar_one()
        if found != 2:
            raise StorageError(
                f"dataset {report.dataset!r} or its import batch {report.batch_id} was deleted during the import"
            )
    lock_dataset(s, report.dataset_id)
    if seen_filter is not None and not seen_filter.still_alone(s):
        seen_filter = None
    hashes = [r[2] for r in items]
    keys = [r[3] for r in items]
    wanted = hashes if seen_filter is None else seen_filter.candidates(hashes, keys)
    existing = existing_hashes(s, report.dataset_id, wanted) if wanted else {}
    kept: list[int] | None = None  # positions of the rows stored; None: all of them
    if existing or len(set(hashes)) != len(hashes):
        kept = []
        first_at: dict[str, int] = {}
        for i, h in enumerate(hashes):
            if h in existing:
                ref: dict[str, Any] = {"item_id": existing[h]}
            elif h in first_at:
                first = items[first_at[h]]
                ref = {"source": first[4], "row": first[5]}
            else:
                first_at[h] = i
                kept.append(i)
                continue
            report.duplicates += 1
            if len(report.duplicate_of) < MAX_SAMPLES:
                report.duplicate_of.append({"source": items[i][4], "row": items[i][5], "duplicate_of": ref})
        items = [items[i] for i in kept]
        keys = [keys[i] for i in kept]
    if seen_filter is not None:
        seen_filter.add(keys)
    if not items:
        return
    created = now()
    batch = {"batch_id": report.batch_id}
    item_ids = insert_rows(
        s, "items", IMPORT_ITEM_COLUMNS, items, created_at=created, fixed={"dataset_id": report.dataset_id, **batch}
    )
    if seen_filter is not None:
        seen_filter.stored(item_ids)
    report.imported += len(item_ids)
    if kept is not None:  # the labels of stored rows, pointing to their place among the stored rows
        place = {p: n for n, p in enumerate(kept)}
        labels = [(place[r[0]], *r[1:]) for r in labels if r[0] in place]
    parked = [r[5] for r in labels].count("parked")
    report.labels_imported += len(labels) - parked
    report.labels_parked += parked
    if conn.dialect.name == "sqlite":  # consecutive ids (checked by insert_rows): the item id is place + first id
        insert_rows(
            s, "item_labels", IMPORT_LABEL_COLUMNS, labels, created_at=created, fixed=batch, first_offset=item_ids[0]
        )
    else:
        rows = [(item_ids[r[0]], *r[1:]) for r in labels]
        insert_rows(s, "item_labels", IMPORT_LABEL_COLUMNS, rows, created_at=created, fixed=batch)


def _validated(chunk: list[SourceRecord], schema: dict[str, Any], rejects: _Rejects | None) -> list[SourceRecord]:
    """Check imported labels and gold answers against the project's schema; a label of another kind
    is parked, a bad value is a bad row."""
    out = []
    for rec in chunk:
        kept = []
        ok = True
        if rec.meta.get("gold") is not None:
            try:
                validate_value(schema, rec.meta["gold"], item=rec.data, where="gold")
            except SchemaValidationError as exc:
                bad = BadRow(rec.source, rec.row, exc.message)
                if rejects is None:
                    raise InvalidInputError(bad.message(), details={"source": rec.source, "row": rec.row}) from None
                rejects(bad)
                continue
        for ann in rec.annotations:
            kind = ann.get("kind")
            if kind != schema["kind"]:
                parked = {**ann, "reason": f"kind {kind} does not fit the project's {schema['kind']} schema"}
                rec.meta.setdefault("parked_annotations", []).append(parked)
                continue
            try:
                validate_value(schema, ann["value"], item=rec.data, where="label")
            except SchemaValidationError as exc:
                bad = BadRow(rec.source, rec.row, f"{exc.message} ({ann.get('origin')})")
                if rejects is None:
                    raise InvalidInputError(bad.message(), details={"source": rec.source, "row": rec.row}) from None
                rejects(bad)
                ok = False
                break
            kept.append(ann)
        if ok:
            rec.annotations = kept
            out.append(rec)
    return out


def _finish_batch(db: Database, report: ImportReport, status: str, actor: Actor | None, mapping: MappingReport) -> None:
    summary = {
        "status": status,
        "imported": report.imported,
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "rejected_path": report.rejected_path,
        "labels_imported": report.labels_imported,
        "labels_parked": report.labels_parked,
        "labels_not_stored": report.labels_not_stored,
        "unmapped": report.unmapped,
        "labels_mapped": mapping.n_mapped,
        "duplicate_of": report.duplicate_of[:100],
        "errors": report.errors[:100],
    }
    with db.transaction() as s:
        s.execute(
            update(ImportBatch)
            .where(ImportBatch.id == report.batch_id)
            .values(
                n_items=report.imported,
                n_duplicates=report.duplicates,
                n_errors=report.rejected,
                report=json.loads(canonical_json(summary)),
            )
        )
        append_event(
            s,
            actor=actor.name if actor else "cli",
            action="dataset.import",
            object_type="dataset",
            object_id=report.dataset_id,
            payload={
                "batch": report.batch_id,
                "source": report.source,
                "format": report.format,
                **{k: summary[k] for k in ("status", "imported", "duplicates", "rejected")},
            },
        )


# --------------------------------------------------------------------------- versions
def create_version(db: Database, dataset: str, *, actor: Actor | None = None, note: str = "") -> VersionView:
    """Freeze the dataset's current items (id, external id, content hash, label) as the next version.

    The label frozen for an item is its consensus label in a project labelling the dataset, or
    else its latest active annotation; None when it has neither. Versions are never changed.
    """
    _check_writer(actor)
    with db.transaction() as s:
        ds = _dataset(s, dataset)
        number = (
            s.execute(
                select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == ds.id)
            ).scalar_one_or_none()
            or 0
        ) + 1
        version = DatasetVersion(
            dataset_id=ds.id, number=number, note=note, created_by=actor.user_id if actor else None
        )
        s.add(version)
        s.flush()
        consensus = (
            select(Consensus.label)
            .join(Task, Task.id == Consensus.task_id)  # tasks.item_id is indexed, consensus.item_id is not
            .where(Task.item_id == Item.id)
            .order_by(Consensus.project_id)
            .limit(1)
            .scalar_subquery()
        )
        latest = (
            select(Annotation.value)
            .join(Task, Task.id == Annotation.task_id)
            .where(Task.item_id == Item.id, Annotation.status == "active")
            .order_by(Annotation.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        source_label = (
            select(ItemLabel.value)
            .where(ItemLabel.item_id == Item.id, ItemLabel.status == "active")
            .order_by(ItemLabel.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        s.execute(
            insert(DatasetVersionItem).from_select(
                ["version_id", "item_id", "external_id", "content_hash", "label"],
                select(
                    literal(version.id),
                    Item.id,
                    Item.external_id,
                    Item.content_hash,
                    func.coalesce(consensus, latest, source_label),
                ).where(Item.dataset_id == ds.id),
            )
        )
        n = s.execute(
            select(func.count()).select_from(DatasetVersionItem).where(DatasetVersionItem.version_id == version.id)
        ).scalar_one()
        version.n_items = n
        append_event(
            s,
            actor=actor.name if actor else "cli",
            action="dataset.version",
            object_type="dataset",
            object_id=ds.id,
            payload={"version": number, "n_items": n, "note": note},
        )
        s.flush()
        return VersionView(ds.name, number, n, note, iso(version.created_at))


def list_versions(db: Database, dataset: str) -> list[VersionView]:
    with db.transaction(write=False) as s:
        ds = _dataset(s, dataset)
        rows = s.execute(
            select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id).order_by(DatasetVersion.number)
        ).scalars()
        return [VersionView(ds.name, v.number, v.n_items, v.note, iso(v.created_at)) for v in rows]


def _version_id(s: Session, ds: Dataset, number: int) -> int:
    vid = s.execute(
        select(DatasetVersion.id).where(DatasetVersion.dataset_id == ds.id, DatasetVersion.number == number)
    ).scalar_one_or_none()
    if vid is None:
        raise NotFoundError(f"dataset {ds.name!r} has no version {number}")
    return vid


def diff_versions(
    db: Database, dataset: str, v1: int, v2: int, *, limit: int | None = None, actor: Actor | None = None
) -> VersionDiff:
    """Items added, removed, relabelled (label changed) and changed (content hash changed) from v1 to v2.

    ``limit`` caps each list (None: all of them). With an ``actor``, items marked above their
    clearance are left out (None: the local CLI, which sees everything).
    """
    out = VersionDiff(dataset, v1, v2)
    with db.transaction(write=False) as s:
        ds = _dataset(s, dataset)
        id1, id2 = _version_id(s, ds, v1), _version_id(s, ds, v2)
        cols = (
            DatasetVersionItem.item_id,
            DatasetVersionItem.external_id,
            DatasetVersionItem.content_hash,
            DatasetVersionItem.label,
        )
        def rows(version_id: int) -> Select[Any]:
            q = select(*cols).where(DatasetVersionItem.version_id == version_id)
            if actor is not None:
                q = q.join(Item, Item.id == DatasetVersionItem.item_id).where(Item.sensitivity <= actor.clearance)
            return q.order_by(DatasetVersionItem.item_id)

        a = {r[0]: r for r in s.execute(rows(id1))}
        for iid, ext, h, label in s.execute(rows(id2)):
            old = a.pop(iid, None)
            if old is None:
                out.added.append({"item_id": iid, "external_id": ext, "label": label})
                continue
            if canonical_json(old[3]) != canonical_json(label):
                out.relabelled.append({"item_id": iid, "external_id": ext, "old": old[3], "new": label})
            if old[2] != h:
                out.changed.append({"item_id": iid, "external_id": ext})
        out.removed = [{"item_id": r[0], "external_id": r[1], "label": r[3]} for r in sorted(a.values())]
    if limit is not None:
        for name in ("added", "removed", "relabelled", "changed"):
            setattr(out, name, getattr(out, name)[:limit])
    return out


# --------------------------------------------------------------------------- export
def _dataset_records(
    db: Database, dataset_id: int, version_id: int | None, clearance: int | None, batch: int = 10_000
) -> Iterator[list[SourceRecord]]:
    """Items of a dataset (or of a version) as records with their label and annotations, in id order."""
    sqlite = db.is_sqlite
    with db.transaction(write=False) as s:  # a dataset no project labels has no annotations to fetch
        labelled = (
            s.execute(
                select(Task.id).join(Item, Item.id == Task.item_id).where(Item.dataset_id == dataset_id).limit(1)
            ).first()
            is not None
        )
        with_item_labels = (
            s.execute(
                select(ItemLabel.id)
                .join(Item, Item.id == ItemLabel.item_id)
                .where(Item.dataset_id == dataset_id)
                .limit(1)
            ).first()
            is not None
        )
    after = 0
    while True:
        with db.transaction(write=False) as s:
            cols = (Item.id, Item.external_id, Item.data, Item.content_hash, Item.source, Item.source_row)
            if version_id is None:
                # On SQLite "dataset_id + 0" keeps the planner on the primary key: with the
                # (dataset_id, ...) index it would re-scan and sort the whole dataset for every page.
                in_dataset = (Item.dataset_id + 0 if sqlite else Item.dataset_id) == dataset_id
                q = select(*cols, literal(None)).where(in_dataset, Item.id > after)
            else:
                q = (
                    select(*cols, DatasetVersionItem.label)
                    .join(DatasetVersionItem, DatasetVersionItem.item_id == Item.id)
                    .where(DatasetVersionItem.version_id == version_id, Item.id > after)
                )
            if clearance is not None:
                q = q.where(Item.sensitivity <= clearance)
            rows = list(s.execute(q.order_by(Item.id).limit(batch)))
            if not rows:
                return
            ids = [r[0] for r in rows] if labelled else []
            anns: dict[int, list[dict[str, Any]]] = {}
            for iid, value, origin, src, name in (
                []
                if not ids
                else s.execute(
                    select(Task.item_id, Annotation.value, Annotation.origin, Annotation.source, User.name)
                    .join(Task, Task.id == Annotation.task_id)
                    .outerjoin(User, User.id == Annotation.user_id)
                    .where(Task.item_id.in_(ids), Annotation.status == "active")
                    .order_by(Annotation.id)
                )
            ):
                anns.setdefault(iid, []).append(
                    {"kind": None, "value": value, "annotator": name, "origin": src or origin}
                )
            if with_item_labels and rows:
                page = set(ids) if ids else {r[0] for r in rows}
                for iid, kind, value, annotator, origin in s.execute(
                    select(ItemLabel.item_id, ItemLabel.kind, ItemLabel.value, ItemLabel.annotator, ItemLabel.origin)
                    .where(ItemLabel.item_id.between(rows[0][0], rows[-1][0]), ItemLabel.status == "active")
                    .order_by(ItemLabel.id)
                ):
                    if iid in page:
                        anns.setdefault(iid, []).append(
                            {"kind": kind, "value": value, "annotator": annotator, "origin": origin}
                        )
            consensus: dict[int, tuple[Any, Any]] = {}
            if version_id is None and ids:
                for iid, label, conf in s.execute(
                    select(Task.item_id, Consensus.label, Consensus.confidence)
                    .join(Consensus, Consensus.task_id == Task.id)
                    .where(Task.item_id.in_(ids))
                    .order_by(Consensus.project_id.desc())
                ):
                    consensus[iid] = (label, conf)
        chunk = []
        for iid, ext, data, digest, source, row, version_label in rows:
            label, conf = consensus.get(iid, (version_label, None))
            rec_anns = [{**a, "kind": a["kind"] or infer_kind(a["value"])} for a in anns.get(iid, ())]
            chunk.append(
                SourceRecord(
                    data=data,
                    external_id=ext,
                    source=source or "",
                    row=row or 0,
                    content_hash=digest,
                    annotations=rec_anns,
                    meta={"item_id": iid, "label": label, "confidence": conf},
                )
            )
        yield chunk
        after = rows[-1][0]


def export_dataset(
    db: Database,
    dataset: str,
    format: str,
    out: str | os.PathLike[str],
    *,
    version: int | None = None,
    actor: Actor | None = None,
    copy_images: bool = True,
) -> ExportReport:
    """Write a dataset (its current items, or version ``version``) in ``format`` to ``out``.

    The export names its dataset and version: in the file where the format has room (COCO
    ``info``, Parquet metadata) and in ``OUT.meta.json`` (JSONL, CSV) or ``OUT/veracity.json``
    (YOLO, VOC). Exporting the current items names the latest version they may differ from.
    Every export is recorded in the audit log (``dataset.export``; the local CLI as actor ``cli``).
    """
    _check_reader(actor)
    with db.transaction() as s:
        ds = _dataset(s, dataset)
        vid = _version_id(s, ds, version) if version is not None else None
        latest = s.execute(
            select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == ds.id)
        ).scalar_one_or_none()
        ds_id, ds_name = ds.id, ds.name
        append_event(s, actor=actor.name if actor else "cli", action="dataset.export", object_type="dataset",
                     object_id=ds_id, payload={"format": format, "version": version, "out": os.fspath(out),
                                               "clearance": actor.clearance if actor else None})
    info = {
        "dataset": ds_name,
        "version": version if version is not None else "current",
        "latest_version": latest,
        "exported_at": now().isoformat(),
        "exporter": IMPORTER_VERSION,
    }
    with gc_paused():
        summary = write_export(
            _dataset_records(db, ds_id, vid, actor.clearance if actor else None),
            out,
            format,
            copy_images=copy_images,
            info=info,
        )
    return ExportReport(str(summary.path), summary.format, summary.n_records, ds_name, version)


def export_project(
    db: Database,
    actor: Actor,
    project_id: int,
    format: str,
    out: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
) -> ExportReport:
    """Write a project's items with their consensus and annotations in any export format.

    For the REST export endpoint: ``format`` is one of ``veracity.ingest.EXPORT_FORMATS``; for
    COCO/YOLO/VOC the consensus label (a list of shapes) is what is written when there is one,
    else every active annotation. Permission as ``projects.iter_export_records``.
    """
    with db.transaction(write=False) as s:
        project, _ = require_role(s, actor, project_id, ("manager", "reviewer", "viewer"))
        schema = dict(project.label_schema)
        name = project.name

    def chunks() -> Iterator[list[SourceRecord]]:
        buf: list[SourceRecord] = []
        for rec in iter_export_records(db, actor, project_id, format=format):
            anns = [
                {
                    "kind": schema["kind"],
                    "value": a["value"],
                    "annotator": a.get("annotator"),
                    "origin": a.get("origin"),
                }
                for a in rec["annotations"]
            ]
            if schema["kind"] in ("boxes", "polygons") and rec.get("label") is not None:
                anns = [{"kind": schema["kind"], "value": rec["label"], "annotator": None, "origin": "consensus"}]
            buf.append(
                SourceRecord(
                    data=rec["data"],
                    external_id=rec.get("external_id"),
                    source="",
                    row=0,
                    content_hash="",
                    annotations=anns,
                    meta={"item_id": rec["id"], "label": rec.get("label"), "confidence": rec.get("confidence")},
                )
            )
            if len(buf) >= 5000:
                yield buf
                buf = []
        if buf:
            yield buf

    with gc_paused():
        summary = write_export(
            chunks(),
            out,
            format,
            labels=labels or schema.get("labels"),
            info={"project": name, "exported_at": now().isoformat(), "exporter": IMPORTER_VERSION},
        )
    return ExportReport(str(summary.path), summary.format, summary.n_records, name, None)


# --------------------------------------------------------------------------- near duplicates
def near_duplicates(
    db: Database,
    dataset: str,
    *,
    field: str | None = None,
    threshold: float = 0.8,
    max_distance: int = 6,
    limit: int = 200_000,
    actor: Actor | None = None,
    media_root: Path | None = None,
) -> list[dict[str, Any]]:
    """Clusters of near-duplicate items of a dataset: texts by MinHash/LSH, images by dHash.

    With an ``actor`` (a user's request through the API or UI) only images that
    :func:`safe_local_image` allows are compared (inside ``media_root`` or the folder an image
    importer read); the CLI (no actor) compares every local path the items name.

    Parameters
    ----------
    field : str, optional
        Data field to compare: a text field, or ``image`` (a local path). Default: ``text`` when
        the first item has one, else ``image``.
    threshold : float
        Jaccard similarity of character shingles above which two texts are near duplicates.
    max_distance : int
        Largest Hamming distance (of 64 bits) between the dHashes of two near-duplicate images.
    limit : int
        Items compared at most (in id order); the texts are held in memory.

    Returns
    -------
    list of dict
        ``{"size", "items": [{"item_id", "external_id"}, ...]}`` per cluster, largest first.
    """
    _check_reader(actor)
    with db.transaction(write=False) as s:
        ds = _dataset(s, dataset)
        q = (
            select(Item.id, Item.external_id, Item.data, ImportBatch.source, ImportBatch.format)
            .outerjoin(ImportBatch, ImportBatch.id == Item.batch_id)
            .where(Item.dataset_id == ds.id)
        )
        if actor is not None:
            q = q.where(Item.sensitivity <= actor.clearance)
        rows = list(s.execute(q.order_by(Item.id).limit(limit)))
    if not rows:
        return []
    key = field or ("text" if isinstance(rows[0][2].get("text"), str) else "image")
    usable = [(iid, ext, data[key]) for iid, ext, data, _, _ in rows if isinstance(data.get(key), str)]
    if key == "image" and actor is not None:
        # On a user's request only files the server may open (see safe_local_image): hashing a
        # path a row merely names would tell whether that file exists.
        safe = {
            iid: path
            for iid, _, data, source, fmt in rows
            if (path := safe_local_image(data.get(key), source, fmt, media_root)) is not None
        }
        usable = [(iid, ext, str(safe[iid])) for iid, ext, _ in usable if iid in safe]
    values = [v for _, _, v in usable]
    if key == "image":
        clusters = near_duplicate_images(values, max_distance=max_distance)
    else:
        clusters = near_duplicate_texts(values, threshold=threshold)
    out = [
        {"size": len(c), "items": [{"item_id": usable[i][0], "external_id": usable[i][1]} for i in c]} for c in clusters
    ]
    return sorted(out, key=lambda c: -c["size"])


IMAGE_FORMATS = ("images", "coco", "yolo", "voc")  # importers that read (and hashed) the image files


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.is_relative_to(root.resolve())
    except OSError:
        return False


#: How item data names a file of the server's ``data_dir/media`` (``web/routers/catalogue_pages.py`` serves it).
MEDIA_URL_PREFIX = "/media/"


def safe_local_image(value: Any, source: str | None, fmt: str | None, media_root: Path | None = None) -> Path | None:
    """The file an item's ``image`` value names, when a server may open it on a user's request.

    Only files with an image suffix that lie (after resolving links) inside ``media_root`` or
    inside the folder the item's import batch read, when that batch's importer read the images
    itself (:data:`IMAGE_FORMATS`); ``/media/<path>`` (the URL screens load) names ``media_root/<path>``.
    A path that a JSONL or CSV row merely names (``/etc/passwd``, a link out of the folder) gives None,
    so that neither its content nor its existence leaks.
    """
    if not isinstance(value, str) or "://" in value:
        return None
    roots = [media_root] if media_root is not None else []
    if source and fmt in IMAGE_FORMATS and "://" not in source:
        src = Path(source)
        folder = src if src.is_dir() else src.parent
        if folder != Path(folder.anchor):  # never a whole file system
            roots.append(folder)
    if media_root is not None and value.startswith(MEDIA_URL_PREFIX):
        # the form the screens load (``/media/<path>``, served from ``media_root``)
        value = str(media_root / value.removeprefix(MEDIA_URL_PREFIX))
    try:
        path = Path(value).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
        return None
    return path if any(_inside(path, r) for r in roots) else None


# --------------------------------------------------------------------------- lineage
def item_lineage(db: Database, item_id: int, *, actor: Actor | None = None) -> dict[str, Any]:
    """Where an item came from and what happened to it: source, batch, labels, versions.

    Annotators may not read it (it shows every annotator's labels); items above the caller's
    clearance answer NotFound.
    """
    if actor is not None and actor.role == "annotator":
        raise PermissionDeniedError("annotators cannot see item lineage; ask a manager")
    with db.transaction(write=False) as s:
        item = s.get(Item, item_id)
        if item is None or (actor is not None and item.sensitivity > actor.clearance):
            raise NotFoundError(f"item {item_id} not found")
        ds = s.get(Dataset, item.dataset_id)
        batch = s.get(ImportBatch, item.batch_id) if item.batch_id is not None else None
        creator = s.get(User, batch.created_by) if batch is not None and batch.created_by else None
        annotations = [
            {
                "id": a.id,
                "project_id": a.project_id,
                "task_id": a.task_id,
                "annotator": name,
                "value": a.value,
                "origin": a.origin,
                "source": a.source,
                "status": a.status,
                "created_at": iso(a.created_at),
            }
            for a, name in s.execute(
                select(Annotation, User.name)
                .join(Task, Task.id == Annotation.task_id)
                .outerjoin(User, User.id == Annotation.user_id)
                .where(Task.item_id == item_id)
                .order_by(Annotation.id)
            )
        ]
        source_labels = [
            {
                "kind": lab.kind,
                "value": lab.value,
                "annotator": lab.annotator,
                "origin": lab.origin,
                "status": lab.status,
                "import_batch": lab.batch_id,
            }
            for lab in s.execute(
                select(ItemLabel).where(ItemLabel.item_id == item_id).order_by(ItemLabel.id)
            ).scalars()
        ]
        consensus = [
            {
                "project_id": c.project_id,
                "label": c.label,
                "confidence": c.confidence,
                "method": c.method,
                "n_labels": c.n_labels,
            }
            for c in s.execute(select(Consensus).where(Consensus.item_id == item_id)).scalars()
        ]
        versions = [
            {"version": number, "label": label, "content_hash": h}
            for number, label, h in s.execute(
                select(DatasetVersion.number, DatasetVersionItem.label, DatasetVersionItem.content_hash)
                .join(DatasetVersion, DatasetVersion.id == DatasetVersionItem.version_id)
                .where(DatasetVersionItem.item_id == item_id)
                .order_by(DatasetVersion.number)
            )
        ]
        return {
            "item_id": item.id,
            "dataset": ds.name if ds else None,
            "external_id": item.external_id,
            "data": item.data,
            "content_hash": item.content_hash,
            "source": item.source,
            "source_row": item.source_row,
            "created_at": iso(item.created_at),
            "import_batch": None
            if batch is None
            else {
                "id": batch.id,
                "source": batch.source,
                "format": batch.format,
                "importer_version": batch.importer_version,
                "created_by": creator.name if creator else None,
                "created_at": iso(batch.created_at),
            },
            "annotations": annotations,
            "source_labels": source_labels,
            "consensus": consensus,
            "versions": versions,
        }
