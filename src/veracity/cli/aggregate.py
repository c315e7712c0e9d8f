"""``veracity aggregate`` and ``veracity agreement``: truth inference and agreement on answer files.

Answers are read with pyarrow from ``.csv``, ``.parquet`` or ``.jsonl`` (header/fields
``worker, task, label``; other columns are ignored). Bad input raises
:class:`~veracity.errors.InvalidInputError` naming the file and the line (CSV and JSONL: the
physical line, the header being line 1), the row (Parquet) or the field; the CLI entry turns it
into exit code 2.

Values
    ``worker``, ``task`` and ``label`` are text. Only an empty CSV field, a missing or null JSON or
    Parquet value, or a NaN number counts as missing (an error); ``NA``, ``null`` or ``N/A`` are
    ordinary values. Labels are classes by their text, so ``1`` and ``1.0`` are two classes for
    ``aggregate`` and for nominal agreement (JSONL and Parquet numbers are written in one way, so
    there they are one class). When every label is a finite number, classes are sorted by value
    (aggregation ties go to the smallest), and the ordinal, interval and ratio levels of
    ``agreement`` compare the numbers: there ``1`` and ``1.0`` are one value.
Repeated answers
    A worker who answered a task more than once casts every answer as its own vote, the rule of
    :class:`~veracity.quality.Responses`, in ``aggregate`` and in ``agreement`` alike; only
    Cohen's kappa, which pairs one answer of each rater per task, keeps a rater's last answer.
"""

from __future__ import annotations

import codecs
import csv
import json
import mmap
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import typer

from veracity.cli._arrow import as_objects, from_numpy, to_numpy
from veracity.cli._common import console, err_console, first_bad_utf8_line
from veracity.errors import InvalidInputError
from veracity.quality import Responses
from veracity.quality.aggregation import AGGREGATORS, aggregate
from veracity.quality.agreement import LEVELS, METRICS, AgreementResult, agreement

__all__ = ["read_answers", "read_table", "register"]

_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
_PROGRESS_MIN_ROWS = 200_000
_CSV_BLOCK_SIZE = 1 << 24  # bytes pyarrow parses per block (and thread)
_SCAN_CHUNK = 1 << 26  # bytes counted per numpy pass when checking a CSV's line count


def _file_error(path: Path, message: str) -> InvalidInputError:
    return InvalidInputError(f"{path}: {message}")


def read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """Read ``columns`` of a CSV / Parquet / JSONL file as strings with pyarrow.

    Raises :class:`InvalidInputError` naming the file and the missing field or bad line (row).
    """
    if not path.exists():
        raise _file_error(path, "file not found")
    if path.is_dir():
        raise _file_error(path, "is a directory, expected a file")
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise _file_error(path, f"unsupported file type {suffix or '(none)'}; expected .csv, .parquet or .jsonl")
    if path.stat().st_size == 0:
        raise _file_error(path, f"file is empty; expected a header with {', '.join(columns)}")
    try:
        if suffix == ".csv":
            table = _read_csv(path, columns)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq  # 19 ms that CSV and JSONL runs do not need

            schema = pq.read_schema(path)
            _check_columns(path, schema.names, columns)
            table = pq.read_table(path, columns=list(columns))
        else:
            table = _read_jsonl(path, columns)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        msg = str(exc)
        if "UTF8" in msg or "utf8" in msg.lower():
            line = first_bad_utf8_line(path)
            where = f"line {line}: " if line else ""
            raise _file_error(path, f"{where}not valid UTF-8 text (save the file as UTF-8)") from None
        if "Empty CSV" in msg:
            raise _file_error(path, f"file is empty; expected a header with {', '.join(columns)}") from None
        raise _file_error(path, f"cannot be read: {msg.splitlines()[0]}") from None
    except OSError as exc:
        raise _file_error(path, f"cannot be read: {exc}") from None
    return pa.table({name: _text_column(path, table.column(name), name) for name in columns})


def _text_column(path: Path, col: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """``col`` as strings; a null (empty CSV field, missing JSON field) or NaN is an error."""
    if col.null_count:
        row = int(pc.index(pc.is_null(col), True).as_py())
        missing = "is empty" if path.suffix.lower() == ".csv" else "is missing or null"
        raise _file_error(path, f"{_where(path, row)}: field {name!r} {missing}")
    if pa.types.is_floating(col.type):
        nan = pc.is_nan(col)
        if pc.any(nan).as_py():
            row = int(pc.index(nan, True).as_py())
            raise _file_error(path, f"{_where(path, row)}: field {name!r} is NaN; expected a value")
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _file_error(path, f"field {name!r} must hold text or numbers, got {col.type}") from None
    elif path.suffix.lower() != ".csv":  # pyarrow checks UTF-8 when it parses CSV, not JSON or Parquet
        try:
            col.validate(full=True)
        except pa.ArrowInvalid:
            line = first_bad_utf8_line(path) if path.suffix.lower() != ".parquet" else None
            where = f"line {line}: " if line else ""
            raise _file_error(path, f"{where}field {name!r} is not valid UTF-8 text") from None
    return col


def _where(path: Path, row: int) -> str:
    """Where data row ``row`` (0-based) is: its physical line in a CSV or JSONL file, else its row.

    Only called on the way to an error: it reads the file again, line by line.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return f"row {row + 1}"
    records = _csv_records(path) if suffix == ".csv" else _jsonl_lines(path)
    skip = 1 if suffix == ".csv" else 0  # the CSV header is a record
    for i, record in enumerate(records):
        if i == row + skip:
            return f"line {record[0]}"
    return f"line {row + 1 + skip}"  # pragma: no cover - pyarrow and the scan disagree


def _check_columns(path: Path, names: list[str], columns: tuple[str, ...]) -> None:
    got = ", ".join(names) if names else "no columns"
    missing = [c for c in columns if c not in names]
    if missing:
        raise _file_error(path, f"missing field {', '.join(repr(m) for m in missing)} (header has: {got})")
    for name in columns:
        if names.count(name) > 1:
            raise _file_error(path, f"field {name!r} appears {names.count(name)} times (header has: {got})")


# ------------------------------------------------------------------------------------ CSV
def _read_csv(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """The ``columns`` of a CSV file (header names compared without surrounding spaces).

    pyarrow splits the file into blocks at newlines. A quoted field may hold a newline, so the
    records are checked against the lines (a vectorised count, see :func:`_csv_one_record_per_line`);
    only a file with quoted newlines or blank lines is scanned record by record, which finds an
    unterminated quote, and is read again with quote-aware splitting if pyarrow split it wrongly.
    """
    header = _csv_header(path)
    names = [h.strip() for h in header]
    _check_columns(path, names, columns)
    raw = [header[names.index(c)] for c in columns]
    try:
        table = _arrow_csv(path, raw, newlines_in_values=False)
    except pa.ArrowInvalid as exc:
        if "CSV parse error" not in str(exc):
            raise
        _csv_count_records(path, len(header))  # names the line of an unterminated quote or a ragged row
        table = _arrow_csv(path, raw, newlines_in_values=True)
    else:
        if not _csv_one_record_per_line(path, table.num_rows) and (
            _csv_count_records(path, len(header)) != table.num_rows
        ):
            table = _arrow_csv(path, raw, newlines_in_values=True)
    return table.rename_columns(list(columns))


def _arrow_csv(path: Path, names: list[str], *, newlines_in_values: bool) -> pa.Table:
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(newlines_in_values=newlines_in_values),
        convert_options=pacsv.ConvertOptions(
            include_columns=names,
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],  # only an empty field is missing: "NA", "null" and "NaN" are values
            strings_can_be_null=True,
        ),
    )


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, csv.Error):
        return []


def _csv_one_record_per_line(path: Path, n_rows: int) -> bool:
    """True when every line of the file is one record; raises if the last line leaves a quote open.

    Without a quote character a record cannot span lines. Otherwise the lines (trailing blank
    lines aside) must number ``n_rows + 1``: blank lines and quoted newlines break that, and so
    does an unterminated quote, which swallows the lines after it unless it is on the last line.
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm.find(b'"') < 0:
            return True
        end = len(mm)
        while end and mm[end - 1] in b"\r\n":
            end -= 1
        newlines = 0
        for start in range(0, end, _SCAN_CHUNK):
            chunk = np.frombuffer(mm, dtype=np.uint8, count=min(_SCAN_CHUNK, end - start), offset=start)
            newlines += int(np.count_nonzero(chunk == ord("\n")))
            del chunk  # release the buffer before the map closes
        if newlines != n_rows:
            return False
        last = mm[mm.rfind(b"\n", 0, end) + 1 : end]
    if _csv_fields(last, 1, quoted=False)[1]:
        raise _file_error(path, f"line {newlines + 1}: unterminated quote (the quoted field is never closed)")
    return True


def _csv_fields(line: bytes, fields: int, *, quoted: bool) -> tuple[int, bool]:
    """Split one physical line (no line end) as pyarrow does: (fields so far, inside quotes at the end).

    A quote opens a quoted field only at the start of a field, ``""`` inside one is a quote, and a
    quote elsewhere is a character.
    """
    pos = 0
    while True:
        if quoted:
            close = line.find(b'"', pos)
            if close < 0:
                return fields, True
            if line[close + 1 : close + 2] == b'"':
                pos = close + 2
                continue
            pos, quoted = close + 1, False
        elif line[pos : pos + 1] == b'"':
            pos, quoted = pos + 1, True
            continue
        comma = line.find(b",", pos)
        if comma < 0:
            return fields, False
        fields, pos = fields + 1, comma + 1


def _csv_records(path: Path) -> Iterator[tuple[int, int, int]]:
    """(first line, last line, number of fields) of every record, header included, blank lines skipped.

    Raises :class:`InvalidInputError` naming the line of a quote still open at the end of the file.
    """
    start, fields, quoted = 0, 0, False
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n").removeprefix(codecs.BOM_UTF8) if number == 1 else raw.rstrip(b"\r\n")
            if not quoted:
                if not line:
                    continue
                if b'"' not in line:
                    yield number, number, line.count(b",") + 1
                    continue
                start, fields = number, 1
            fields, quoted = _csv_fields(line, fields, quoted=quoted)
            if not quoted:
                yield start, number, fields
    if quoted:
        raise _file_error(path, f"line {start}: unterminated quote (the quoted field is never closed)")


def _csv_count_records(path: Path, n_fields: int) -> int:
    """Data records of a CSV file; raises naming the line of an unterminated quote or a ragged row."""
    count = -1
    for first, last, fields in _csv_records(path):
        if count >= 0 and fields != n_fields:
            spans = f" (a quoted field runs on to line {last}: is a quote not closed?)" if last > first else ""
            raise _file_error(path, f"line {first}: expected {n_fields} fields as in the header, got {fields}{spans}")
        count += 1
    return count


# ---------------------------------------------------------------------------------- JSONL
class _DuplicateFieldError(ValueError):
    pass


def _read_jsonl(path: Path, columns: tuple[str, ...]) -> pa.Table:
    try:
        table = pajson.read_json(path)
    except pa.ArrowInvalid as exc:
        raise _jsonl_error(path, str(exc)) from None
    _check_columns(path, table.column_names, columns)
    return table.select(list(columns))


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(physical line, text) of every line that is not blank, as pyarrow skips blank lines."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if raw.strip():
                yield number, raw


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise _DuplicateFieldError(key)
    return dict(pairs)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _jsonl_error(path: Path, message: str) -> InvalidInputError:
    """The error for a JSONL file pyarrow refused, naming the first bad line found by a line scan.

    pyarrow numbers rows from 0 within blocks of about 1 MB, so its row numbers are not lines.
    """
    seen: dict[str, tuple[str, int]] = {}
    for number, raw in _jsonl_lines(path):
        try:
            obj = json.loads(raw, object_pairs_hook=_json_object)
        except UnicodeDecodeError:
            return _file_error(path, f"line {number}: not valid UTF-8 text (save the file as UTF-8)")
        except _DuplicateFieldError as dup:
            return _file_error(path, f"line {number}: field {dup.args[0]!r} appears twice")
        except ValueError as exc:
            detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return _file_error(path, f"line {number}: not valid JSON ({detail})")
        if not isinstance(obj, dict):
            return _file_error(path, f"line {number}: expected one JSON object per line, got {_json_kind(obj)}")
        for key, value in obj.items():
            kind = _json_kind(value)
            if kind == "null":
                continue
            first_kind, first_line = seen.setdefault(key, (kind, number))
            if kind != first_kind:
                return _file_error(
                    path,
                    f"line {number}: field {key!r} is {kind} here but {first_kind} on line {first_line}; "
                    "use one type per field",
                )
    detail = re.sub(r"\s*in row \d+", "", message.splitlines()[0])
    return _file_error(path, f"cannot be read: {detail}")


# --------------------------------------------------------------------------------- labels
def _numbers(labels: pa.Array) -> np.ndarray | None:
    """The labels as float64 when every one is a finite number, else ``None``."""
    try:
        values = pc.cast(labels, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not pc.all(pc.is_finite(values)).as_py():
        return None
    return to_numpy(values)


def _is_finite_number(text: str) -> bool:
    try:
        return bool(np.isfinite(pc.cast(pa.array([text]), pa.float64())[0].as_py()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _class_order(labels: pa.Array) -> np.ndarray:
    """Order of the distinct labels: by value when all are numbers (then by text), else by text."""
    by_text = np.argsort(as_objects(labels), kind="stable")
    values = _numbers(labels)
    if values is None:
        return by_text
    text_rank = np.empty_like(by_text)
    text_rank[by_text] = np.arange(by_text.shape[0])
    return np.lexsort((text_rank, values))


def _encode(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    enc = col.combine_chunks().dictionary_encode()
    return to_numpy(enc.indices).astype(np.int64), enc.dictionary


def read_answers(path: Path) -> tuple[Responses, pa.Array, pa.Array, pa.Array]:
    """Answers file -> (Responses, task dictionary, worker dictionary, class dictionary).

    Tasks and workers keep their order of first appearance; classes are sorted (numerically
    when every label is a number) so that ties go to the smallest label. The Responses' ids and
    classes are codes into the three dictionaries.
    """
    table = read_table(path, ("worker", "task", "label"))
    if table.num_rows == 0:
        raise _file_error(path, "has a header but no answers")
    t, t_dict = _encode(table.column("task"))
    w, w_dict = _encode(table.column("worker"))
    lab, l_dict = _encode(table.column("label"))
    order = _class_order(l_dict)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    responses = Responses.from_codes(
        t,
        w,
        rank[lab],
        task_ids=np.arange(len(t_dict)),
        worker_ids=np.arange(len(w_dict)),
        classes=np.arange(order.shape[0]),
    )
    return responses, t_dict, w_dict, l_dict.take(from_numpy(order))


def _agreement_labels(
    path: Path, responses: Responses, l_dict: pa.Array, metric: str, level: str
) -> tuple[np.ndarray, np.ndarray]:
    """Label codes and class values for ``level``.

    Nominal, or labels that are not all finite numbers: the label texts (Krippendorff's interval
    and ratio levels refuse them). Otherwise the numbers, equal numbers merged (``1`` and ``1.0``
    are one value); the ratio level refuses negative ones.
    """
    values = None if level == "nominal" else _numbers(l_dict)
    if values is None:
        texts = l_dict.to_pylist()
        if metric == "krippendorff" and level in ("interval", "ratio"):
            bad = np.array([not _is_finite_number(t) for t in texts])
            row = int(np.flatnonzero(bad[responses.label])[0])
            label = texts[int(responses.label[row])]
            raise _file_error(
                path, f"{_where(path, row)}: label {label!r} is not a finite number; the {level} level needs numbers"
            )
        return responses.label, np.asarray(texts, dtype=object)
    uniques, inverse = np.unique(values, return_inverse=True)
    if level == "ratio" and uniques[0] < 0:
        row = int(np.flatnonzero(values[responses.label] < 0)[0])
        label = l_dict[int(responses.label[row])].as_py()
        raise _file_error(path, f"{_where(path, row)}: label {label!r} is negative; the ratio level needs values >= 0")
    return inverse.reshape(-1)[responses.label], uniques


def _write_table(table: pa.Table, path: Path) -> None:
    suffix = path.suffix.lower()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # only for Parquet output

            pq.write_table(table, path)
        elif suffix in (".jsonl", ".ndjson"):
            with path.open("w", encoding="utf-8") as fh:
                names = table.column_names
                for row in zip(*(table.column(n).to_pylist() for n in names), strict=True):
                    fh.write(json.dumps(dict(zip(names, row, strict=True))) + "\n")
        else:
            pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be written: {exc}") from None


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be a file, before any work is done."""
    if path.is_dir():
        raise _file_error(path, "is a directory; expected a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _file_error(path, f"cannot be written: {parent} is not a directory")
            break


def _gold_arrays(path: Path, t_dict: pa.Array, l_dict: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Gold file -> (task codes, class codes); gold for tasks nobody answered is dropped.

    A task listed twice must have the same gold label both times.
    """
    table = read_table(path, ("task", "label"))
    _check_gold_conflicts(path, table)
    t = to_numpy(pc.index_in(table.column("task"), value_set=t_dict), nulls_as_nan=True).astype(float)
    lab = to_numpy(pc.index_in(table.column("label"), value_set=l_dict), nulls_as_nan=True).astype(float)
    known = ~np.isnan(t)
    bad = known & np.isnan(lab)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = table.column("label")[row].as_py()
        raise _file_error(
            path,
            f"{_where(path, row)}: gold label {value!r} is not among the answered labels {l_dict.to_pylist()[:20]}",
        )
    return t[known].astype(np.int64), lab[known].astype(np.int64)


def _check_gold_conflicts(path: Path, table: pa.Table) -> None:
    tasks, _ = _encode(table.column("task"))
    labels, _ = _encode(table.column("label"))
    if tasks.size == 0:
        return
    _, first = np.unique(tasks, return_index=True)  # codes run 0..n-1, so first[code] is its first row
    clash = np.flatnonzero(labels != labels[first][tasks])
    if clash.size:
        row = int(clash[0])
        before = int(first[tasks[row]])
        task, label = table.column("task")[row].as_py(), table.column("label")
        raise _file_error(
            path,
            f"{_where(path, row)}: task {task!r} has gold label {label[row].as_py()!r}, "
            f"but {_where(path, before)} gave {label[before].as_py()!r}",
        )


@contextmanager
def _stages(enabled: bool) -> Iterator[Any]:
    if not enabled:

        class _Quiet:
            def stage(self, text: str) -> None:
                pass

        yield _Quiet()
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # 10 ms, for big files only

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console, transient=True
    ) as progress:
        current: list[Any] = []

        class _Live:
            def stage(self, text: str) -> None:
                if current:
                    progress.update(current[-1], completed=1, total=1)
                current.append(progress.add_task(text, total=None))

        yield _Live()


def _big(path: Path) -> bool:
    try:
        return path.stat().st_size > 8 * 1024 * 1024
    except OSError:
        return False


def aggregate_command(
    answers: Annotated[Path, typer.Argument(help="Answers file (.csv, .parquet, .jsonl) with worker, task, label.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write task,label,confidence.")],
    method: Annotated[str, typer.Option("--method", "-m", help=f"One of: {', '.join(AGGREGATORS)}.")] = "ds",
    workers_out: Annotated[
        Path | None, typer.Option("--workers-out", help="Also write worker,accuracy,n_answers here.")
    ] = None,
    gold: Annotated[Path | None, typer.Option("--gold", help="Known labels (task,label); kept in the output.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (calibration subsampling, auto's split).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of text.")] = False,
) -> None:
    """Infer one label per task from many workers' answers (truth inference)."""
    if method not in AGGREGATORS:
        raise InvalidInputError(f"--method must be one of {', '.join(AGGREGATORS)}, got {method!r}")
    for path in (out, workers_out):
        if path is not None:
            _check_writable(path)
    started = time.perf_counter()
    with _stages(not as_json and _big(answers)) as stages:
        stages.stage(f"Reading {answers.name}")
        responses, t_dict, w_dict, l_dict = read_answers(answers)
        gold_arg = None
        if gold is not None:
            stages.stage(f"Reading {gold.name}")
            gold_arg = _gold_arrays(gold, t_dict, l_dict)
        stages.stage(f"Inferring labels ({method}, {responses.n_responses:,} answers)")
        # gold codes are class positions; pass them as (task codes, class values)
        gold_values = None
        if gold_arg is not None:
            gold_values = (gold_arg[0], responses.classes[gold_arg[1]])
        res = aggregate(responses, method=method, gold=gold_values, random_state=seed)
        stages.stage(f"Writing {out.name}")
        table = pa.table(
            {
                "task": t_dict.take(from_numpy(res.task_ids)),
                "label": l_dict.take(from_numpy(res.label_idx)),
                "confidence": from_numpy(np.round(res.confidence_values, 6)),
            }
        )
        _write_table(table, out)
        if workers_out is not None:
            _write_table(
                pa.table(
                    {
                        "worker": w_dict.take(from_numpy(res.worker_ids)),
                        "accuracy": from_numpy(np.round(res.worker_accuracy, 6)),
                        "n_answers": from_numpy(res.worker_n_answers),
                    }
                ),
                workers_out,
            )
    summary = {
        "method": method,
        "answers": responses.n_responses,
        "tasks": responses.n_tasks,
        "workers": responses.n_workers,
        "classes": responses.n_classes,
        "out": str(out),
        "workers_out": str(workers_out) if workers_out else None,
        "seconds": round(time.perf_counter() - started, 3),
        "converged": bool(res.converged),
        "n_iter": int(res.n_iter),
    }
    if as_json:
        console.print_json(json.dumps(summary))
    else:
        console.print(
            f"Wrote {responses.n_tasks:,} labels ({method}) from {responses.n_responses:,} answers by "
            f"{responses.n_workers:,} workers to {out} in {summary['seconds']} s",
            highlight=False,
            soft_wrap=True,
        )


def agreement_command(
    answers: Annotated[Path, typer.Argument(help="Answers file (.csv, .parquet, .jsonl) with worker, task, label.")],
    metric: Annotated[str, typer.Option("--metric", help=f"One of: {', '.join(METRICS)}.")] = "krippendorff",
    level: Annotated[str, typer.Option("--level", help=f"One of: {', '.join(LEVELS)}.")] = "nominal",
    ci: Annotated[float | None, typer.Option("--ci", help="Bootstrap confidence level, for example 0.95.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Inter-annotator agreement (Krippendorff's alpha, Fleiss' or Cohen's kappa, percent)."""
    if metric not in METRICS:
        raise InvalidInputError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if level not in LEVELS:
        raise InvalidInputError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    responses, _t, w_dict, l_dict = read_answers(answers)
    label, classes = _agreement_labels(answers, responses, l_dict, metric, level)
    responses = Responses(
        responses.task_idx,
        responses.worker_idx,
        label,
        responses.task_ids,
        np.asarray(w_dict.to_pylist(), dtype=object),
        classes,
    )
    try:
        value = agreement(responses, metric=metric, level=level, ci=ci, n_boot=n_boot, random_state=seed)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{answers}: {exc}") from None
    out: dict[str, Any] = {"metric": metric, "level": level, "n_answers": responses.n_responses}
    if isinstance(value, AgreementResult):
        out.update(value=value.value, ci=[value.ci_low, value.ci_high], confidence_level=value.confidence_level)
    else:
        out["value"] = float(value)
    if as_json:
        console.print_json(json.dumps(out))
    else:
        text = f"{metric} ({level}): {out['value']:.4f}"
        if "ci" in out:
            text += f"  [{out['ci'][0]:.4f}, {out['ci'][1]:.4f}] at {out['confidence_level']:.0%}"
        console.print(text, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``aggregate`` and ``agreement`` to ``app``."""
    app.command("aggregate")(aggregate_command)
    app.command("agreement")(agreement_command)
