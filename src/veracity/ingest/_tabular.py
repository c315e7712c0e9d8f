"""Readers and writers for record tables: JSONL, a JSON array, CSV, Parquet and crowd answers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veracity.errors import InvalidInputError
from veracity.ingest._common import (
    EXPORT_KEYS,
    NOT_UTF8,
    ReadOptions,
    cell,
    fail,
    record_from_object,
    record_to_export,
    spill_database,
    valid_utf8,
)
from veracity.ingest._jsonstream import iter_json_array_file
from veracity.ingest._safety import check_size
from veracity.ingest.records import SourceRecord, make_annotation
from veracity.types import Record

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported by the functions that use it: it is ~30 MB of memory that a server (or a
# CSV/JSONL import) that never touches Parquet need not hold.

__all__ = [
    "read_crowd",
    "read_csv",
    "read_json_array",
    "read_jsonl",
    "read_parquet",
    "write_crowd",
    "write_csv",
    "write_jsonl",
    "write_parquet",
]

csv.field_size_limit(64 * 1024 * 1024)


# --------------------------------------------------------------------------- JSONL / JSON
def read_jsonl(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """One record per non-blank line; ``row`` is the line number.

    A leading UTF-8 byte order mark is skipped. Bytes that are not UTF-8 are kept as lone
    surrogates (``surrogateescape``) so that one bad line does not lose the lines after it; a
    record holding one is a bad row (``record_from_object``).
    """
    check_size(path, opts.max_bytes)
    source = str(path)
    decoder = json.JSONDecoder()
    decode, scan = decoder.decode, decoder.scan_once
    buf: list[SourceRecord] = []
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="\n") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                # Fast path for the usual '{...}\n' line; anything else goes through decode().
                obj, end = scan(line, 0) if line[:1] == "{" else (None, -1)
                if end < 0 or line[end:].strip():
                    obj = decode(line)
            except StopIteration:
                obj = None
                try:
                    obj = decode(line)
                except json.JSONDecodeError as exc:
                    if not line.strip():
                        continue
                    opts.bad(source, lineno, f"malformed JSON ({exc.msg} at column {exc.colno})", line.rstrip("\r\n"))
                    continue
            except json.JSONDecodeError as exc:
                if not line.strip():
                    continue
                opts.bad(source, lineno, f"malformed JSON ({exc.msg} at column {exc.colno})", line.rstrip("\r\n"))
                continue
            rec = record_from_object(obj, source=source, row=lineno, opts=opts, fmt="jsonl")
            if rec is not None:
                buf.append(rec)
                if len(buf) >= opts.chunk_size:
                    yield buf
                    buf = []
    if buf:
        yield buf


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def read_json_array(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """A JSON document holding a list of objects; ``row`` is the 1-based index in the list."""
    def not_a_list(doc: Any) -> list[Any]:
        fail(str(path), None, f"expected a JSON list of objects, got {type(doc).__name__}")

    doc = iter_json_array_file(path, opts.max_bytes, not_array=not_a_list)  # streamed element by element
    source = str(path)
    buf: list[SourceRecord] = []
    for i, obj in enumerate(doc, start=1):
        rec = record_from_object(obj, source=source, row=i, opts=opts, fmt="json")
        if rec is not None:
            buf.append(rec)
            if len(buf) >= opts.chunk_size:
                yield buf
                buf = []
    if buf:
        yield buf


def write_jsonl(chunks: Iterable[list[SourceRecord]], path: Path) -> int:
    """Write the export layout, one JSON object per line."""
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for chunk in chunks:
            fh.write("".join(json.dumps(record_to_export(r), ensure_ascii=False) + "\n" for r in chunk))
            n += len(chunk)
    return n


# --------------------------------------------------------------------------- CSV
def _csv_rows(path: Path, opts: ReadOptions) -> Iterator[tuple[int, list[str], Record]]:
    """(row number, header, row dict) for each data row; bad widths are reported.

    Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``): a strict decoder
    fails on the whole block of text around the byte, at the wrong row and losing the rows after
    it. The row that holds one is a bad row where it becomes a record (``record_from_object``).
    """
    check_size(path, opts.max_bytes)
    source = str(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            fail(source, None, "empty file: expected a header row")
        except csv.Error as exc:
            fail(source, 1, f"cannot read the header ({exc})")
        if not valid_utf8(header):
            fail(source, None, f"header (line 1): {NOT_UTF8}")
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            fail(source, None, f"duplicate column names in the header: {', '.join(dupes)}")
        row = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                row += 1
                opts.bad(source, row, f"cannot parse (line {reader.line_num}: {exc})")
                continue
            row += 1
            if not values:
                continue
            if len(values) != len(header):
                opts.bad(
                    source,
                    row,
                    f"expected {len(header)} fields, got {len(values)} (line {reader.line_num})",
                    delimiter.join(values),
                )
                continue
            yield row, header, dict(zip(header, values, strict=True))


def read_csv(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """A CSV (or ``.tsv``) file with a header; ``row`` counts data rows from 1."""
    source = str(path)
    buf: list[SourceRecord] = []
    for row, _header, obj in _csv_rows(path, opts):
        rec = record_from_object(obj, source=source, row=row, opts=opts, fmt="csv")
        if rec is not None:
            buf.append(rec)
            if len(buf) >= opts.chunk_size:
                yield buf
                buf = []
    if buf:
        yield buf


def _flat_columns(chunk: list[SourceRecord], path: Path) -> list[str]:
    keys: dict[str, None] = {}
    for rec in chunk:
        for k in rec.data:
            if k in EXPORT_KEYS:
                raise InvalidInputError(
                    f"{path}: data field {k!r} of {rec.source} row {rec.row} collides with an export "
                    "column; export as JSONL instead"
                )
            keys.setdefault(k)
    return list(keys)


def _flat_row(rec: SourceRecord, columns: list[str], path: Path) -> Record:
    extra = rec.data.keys() - set(columns)
    if extra:
        raise InvalidInputError(
            f"{path}: {rec.source} row {rec.row} has field(s) {', '.join(sorted(extra))} that the first "
            "chunk did not have; export as JSONL for records of varying shape"
        )
    out: Record = {"id": rec.external_id}
    out.update({c: rec.data.get(c) for c in columns})
    label = rec.meta.get("label")
    out["label"] = label if label is None or isinstance(label, str) else json.dumps(label)
    out["confidence"] = rec.meta.get("confidence")
    out["annotations"] = _annotations_json(rec)
    return out


def _annotations_json(rec: SourceRecord) -> str:
    if not rec.annotations:
        return "[]"
    keys = ("kind", "value", "annotator", "origin")
    return json.dumps([{k: a.get(k) for k in keys} for a in rec.annotations], ensure_ascii=False)


def _arrow_table(chunk: list[SourceRecord], columns: list[str], schema: pa.Schema, path: Path) -> pa.Table:
    """Column-wise conversion of a chunk (faster than one dict per row)."""
    import pyarrow as pa

    allowed = set(columns)
    for rec in chunk:
        if not rec.data.keys() <= allowed:
            _flat_row(rec, columns, path)  # raises the error naming the record
    arrays: dict[str, list[Any]] = {"id": [r.external_id for r in chunk]}
    for c in columns:
        arrays[c] = [r.data.get(c) for r in chunk]
    labels = [r.meta.get("label") for r in chunk]
    arrays["label"] = [v if v is None or isinstance(v, str) else json.dumps(v) for v in labels]
    arrays["confidence"] = [r.meta.get("confidence") for r in chunk]
    arrays["annotations"] = [_annotations_json(r) for r in chunk]
    return pa.Table.from_arrays([pa.array(arrays[f.name], type=f.type) for f in schema], schema=schema)


def write_csv(chunks: Iterable[list[SourceRecord]], path: Path) -> int:
    """Write ``id``, the data fields as columns, ``label``, ``confidence`` and ``annotations`` (JSON)."""
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        columns: list[str] | None = None
        for chunk in chunks:
            if columns is None:
                columns = _flat_columns(chunk, path)
                writer.writerow(["id", *columns, "label", "confidence", "annotations"])
            for rec in chunk:
                writer.writerow(["" if v is None else cell(v) for v in _flat_row(rec, columns, path).values()])
            n += len(chunk)
        if columns is None:
            writer.writerow(["id", "label", "confidence", "annotations"])
    return n


# --------------------------------------------------------------------------- Parquet
def read_parquet(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """Row groups streamed with ``iter_batches`` (memory bounded by ``chunk_size``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_size(path, opts.max_bytes)
    source = str(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        fail(source, None, f"not a readable Parquet file ({exc})")
    row = 0
    batches = pf.iter_batches(batch_size=opts.chunk_size)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowException, OSError) as exc:  # a damaged row group
            fail(source, None, f"not a readable Parquet file after row {row} ({exc})")
        buf: list[SourceRecord] = []
        for obj in batch.to_pylist():
            row += 1
            obj = {k: v for k, v in obj.items() if v is not None}
            rec = record_from_object(obj, source=source, row=row, opts=opts, fmt="parquet")
            if rec is not None:
                buf.append(rec)
        if buf:
            yield buf


def _arrow_schema(rows: list[Record]) -> pa.Schema:
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    fields = []
    for f in table.schema:
        if pa.types.is_null(f.type):
            f = f.with_type(pa.string())
        if f.name == "confidence":
            f = f.with_type(pa.float64())
        if f.name in ("id", "label", "annotations"):
            f = f.with_type(pa.string())
        fields.append(f)
    return pa.schema(fields)


def write_parquet(chunks: Iterable[list[SourceRecord]], path: Path, *, info: Record | None = None) -> int:
    """Write the flat export layout; the schema is taken from the first chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    columns: list[str] = []
    try:
        for chunk in chunks:
            if not chunk:
                continue
            if schema is None:
                columns = _flat_columns(chunk, path)
                schema = _arrow_schema([_flat_row(rec, columns, path) for rec in chunk])
                if info:
                    schema = schema.with_metadata({"veracity": json.dumps(info)})
                writer = pq.ParquetWriter(path, schema)
            try:
                table = _arrow_table(chunk, columns, schema, path)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InvalidInputError(
                    f"{path}: records from {chunk[0].source} do not fit the column types of the first "
                    f"chunk ({exc}); export as JSONL instead"
                ) from None
            assert writer is not None
            writer.write_table(table)
            n += len(chunk)
        if writer is None:
            empty = pa.schema([("id", pa.string()), ("annotations", pa.string())])
            pq.write_table(empty.empty_table(), path)
    finally:
        if writer is not None:
            writer.close()
    return n


# --------------------------------------------------------------------------- crowd answers
CROWD_COLUMNS = ("worker", "task", "label")


def _crowd_rows(path: Path, opts: ReadOptions) -> Iterator[tuple[int, Record]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        for row, _header, obj in _csv_rows(path, opts):
            yield row, obj
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        check_size(path, opts.max_bytes)
        row = 0
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=opts.chunk_size, columns=list(CROWD_COLUMNS))
            for batch in batches:
                for obj in batch.to_pylist():
                    row += 1
                    yield row, obj
        except (pa.ArrowException, OSError) as exc:
            fail(str(path), None, f"not a readable Parquet file with columns {', '.join(CROWD_COLUMNS)} ({exc})")
    else:
        check_size(path, opts.max_bytes)
        with path.open("rb") as fh:
            for row, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except json.JSONDecodeError as exc:
                    opts.bad(str(path), row, f"malformed JSON ({exc.msg} at column {exc.colno})", _text(raw))
                    continue
                except UnicodeDecodeError:
                    opts.bad(str(path), row, NOT_UTF8, _text(raw))
                    continue
                yield row, obj


def read_crowd(path: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """A table of answers ``worker,task,label``: one record per task, one annotation per answer.

    The answers of a task may be anywhere in the file, so they are first written to a temporary
    SQLite file (indexed by task), then read back grouped by task, the tasks in order of first
    appearance and each task's answers in file order. Memory stays bounded whatever the file size.
    """
    source = str(path)
    with spill_database(
        "veracity-crowd-",
        "CREATE TABLE task (first_row INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE answer (row INTEGER PRIMARY KEY, task TEXT, worker TEXT, label TEXT)",
    ) as spill:
        answers: list[tuple[int, str, str, str]] = []

        def flush() -> None:
            spill.executemany("INSERT OR IGNORE INTO task VALUES (?, ?)", [(a[0], a[1]) for a in answers])
            spill.executemany("INSERT INTO answer VALUES (?, ?, ?, ?)", answers)
            answers.clear()

        for row, obj in _crowd_rows(path, opts):
            if not isinstance(obj, dict):
                opts.bad(source, row, f"expected an object, got {type(obj).__name__}")
                continue
            missing = [c for c in CROWD_COLUMNS if obj.get(c) in (None, "")]
            if missing:
                opts.bad(source, row, f"missing field {missing[0]!r}")
                continue
            if not (valid_utf8(obj["task"]) and valid_utf8(obj["worker"]) and valid_utf8(obj["label"])):
                opts.bad(source, row, NOT_UTF8)
                continue
            answers.append((row, str(obj["task"]), str(obj["worker"]), json.dumps(obj["label"])))
            if len(answers) >= 10_000:
                flush()
        flush()
        spill.execute("CREATE INDEX answer_task ON answer (task, row)")
        chunk: list[SourceRecord] = []
        rec: SourceRecord | None = None
        query = (
            "SELECT t.first_row, t.name, a.row, a.worker, a.label FROM task t "
            "JOIN answer a ON a.task = t.name ORDER BY t.first_row, a.row"
        )
        for first_row, task, row, worker, label in spill.execute(query):
            if rec is None or rec.external_id != task:
                if len(chunk) >= opts.chunk_size:
                    yield chunk
                    chunk = []
                rec = SourceRecord.from_data({"task": task}, source=source, row=first_row, external_id=task)
                chunk.append(rec)
            rec.annotations.append(make_annotation(json.loads(label), origin=f"crowd:row {row}", annotator=worker))
        if chunk:
            yield chunk


def write_crowd(chunks: Iterable[list[SourceRecord]], path: Path) -> int:
    """One ``worker,task,label`` row per annotation that has an annotator and a single label."""
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CROWD_COLUMNS)
        for chunk in chunks:
            for rec in chunk:
                task = rec.external_id if rec.external_id is not None else rec.data.get("task", rec.row)
                for ann in rec.annotations:
                    if ann.get("annotator") is None:
                        continue
                    writer.writerow([ann["annotator"], task, cell(ann["value"])])
                    n += 1
    return n
