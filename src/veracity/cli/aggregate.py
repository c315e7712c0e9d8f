"""``veracity aggregate`` and ``veracity agreement``: truth inference and agreement on answer files.

Answers are read with pyarrow from ``.csv``, ``.parquet`` or ``.jsonl`` (header/fields
``worker, task, label``; other columns are ignored). Bad input raises
:class:`~veracity.errors.InvalidInputError` naming the file and the row or field; the CLI entry
turns it into exit code 2.
"""

from __future__ import annotations

import json
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
import pyarrow.parquet as pq
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from veracity.cli._common import console, err_console
from veracity.errors import InvalidInputError
from veracity.quality import Responses
from veracity.quality.aggregation import AGGREGATORS, aggregate
from veracity.quality.agreement import LEVELS, METRICS, AgreementResult, agreement

__all__ = ["read_answers", "read_table", "register"]

_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson", ".json")
_PROGRESS_MIN_ROWS = 200_000


def _file_error(path: Path, message: str) -> InvalidInputError:
    return InvalidInputError(f"{path}: {message}")


def _first_bad_utf8_line(path: Path) -> int | None:
    with path.open("rb") as fh:
        for i, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return None


def read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """Read ``columns`` of a CSV / Parquet / JSONL file as strings with pyarrow.

    Raises :class:`InvalidInputError` naming the file and the missing field or bad row.
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
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(columns),
                    column_types=dict.fromkeys(columns, pa.string()),
                    strings_can_be_null=True,
                ),
            )
        elif suffix == ".parquet":
            schema = pq.read_schema(path)
            _check_columns(path, schema.names, columns)
            table = pq.read_table(path, columns=list(columns))
        else:
            table = pajson.read_json(path)
            _check_columns(path, table.column_names, columns)
            table = table.select(list(columns))
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        msg = str(exc)
        if "include_columns" in msg or "does not exist" in msg:
            names = _csv_header(path)
            _check_columns(path, names, columns)
        if "UTF8" in msg or "utf8" in msg.lower():
            line = _first_bad_utf8_line(path)
            where = f"line {line}: " if line else ""
            raise _file_error(path, f"{where}not valid UTF-8 text (save the file as UTF-8)") from None
        if "Empty CSV" in msg:
            raise _file_error(path, f"file is empty; expected a header with {', '.join(columns)}") from None
        raise _file_error(path, f"cannot be read: {msg.splitlines()[0]}") from None
    except OSError as exc:
        raise _file_error(path, f"cannot be read: {exc}") from None
    casted = []
    for name in columns:
        col = table.column(name)
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            try:
                col = pc.cast(col, pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise _file_error(path, f"field {name!r} must hold text or numbers, got {col.type}") from None
        nulls = col.null_count
        if nulls:
            row = int(pc.index(pc.is_null(col), True).as_py())
            line = f"line {row + 2}" if suffix == ".csv" else f"row {row + 1}"
            raise _file_error(path, f"{line}: field {name!r} is empty")
        casted.append(col)
    return pa.table(dict(zip(columns, casted, strict=True)))


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return []
    return [c.strip().strip('"') for c in first.rstrip("\r\n").split(",")]


def _check_columns(path: Path, names: list[str], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        got = ", ".join(names) if names else "no columns"
        raise _file_error(path, f"missing field {', '.join(repr(m) for m in missing)} (header has: {got})")


def _label_values(labels: pa.Array) -> np.ndarray:
    """Label values as int64 when every one is a canonical integer, else the strings."""
    try:
        as_int = pc.cast(labels, pa.int64())
        if pc.all(pc.equal(pc.cast(as_int, pa.string()), labels)).as_py():
            return as_int.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return labels.to_numpy(zero_copy_only=False)


def _encode(col: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    enc = col.combine_chunks().dictionary_encode()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def read_answers(path: Path) -> tuple[Responses, pa.Array, pa.Array, pa.Array]:
    """Answers file -> (Responses, task dictionary, worker dictionary, class dictionary).

    Tasks and workers keep their order of first appearance; classes are sorted (numerically
    when every label is an integer) so that ties go to the smallest label.
    """
    table = read_table(path, ("worker", "task", "label"))
    if table.num_rows == 0:
        raise _file_error(path, "has a header but no answers")
    t, t_dict = _encode(table.column("task"))
    w, w_dict = _encode(table.column("worker"))
    lab, l_dict = _encode(table.column("label"))
    values = _label_values(l_dict)
    order = np.argsort(values, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    classes = values[order]
    l_dict_sorted = l_dict.take(pa.array(order))
    responses = Responses.from_codes(
        t,
        w,
        rank[lab],
        task_ids=np.arange(len(t_dict)),
        worker_ids=np.arange(len(w_dict)),
        classes=classes,
    )
    return responses, t_dict, w_dict, l_dict_sorted


def _write_table(table: pa.Table, path: Path) -> None:
    suffix = path.suffix.lower()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
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


def _gold_arrays(path: Path, t_dict: pa.Array, l_dict: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Gold file -> (task codes, class codes); gold for tasks nobody answered is dropped."""
    table = read_table(path, ("task", "label"))
    t = pc.index_in(table.column("task"), value_set=t_dict).to_numpy(zero_copy_only=False).astype(float)
    lab = pc.index_in(table.column("label"), value_set=l_dict).to_numpy(zero_copy_only=False).astype(float)
    known = ~np.isnan(t)
    bad = known & np.isnan(lab)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = table.column("label")[row].as_py()
        raise _file_error(
            path,
            f"line {row + 2}: gold label {value!r} is not among the answered labels {l_dict.to_pylist()[:20]}",
        )
    return t[known].astype(np.int64), lab[known].astype(np.int64)


@contextmanager
def _stages(enabled: bool) -> Iterator[Any]:
    if not enabled:

        class _Quiet:
            def stage(self, text: str) -> None:
                pass

        yield _Quiet()
        return
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
                "task": t_dict.take(pa.array(res.task_ids)),
                "label": l_dict.take(pa.array(res.label_idx)),
                "confidence": pa.array(np.round(res.confidence_values, 6)),
            }
        )
        _write_table(table, out)
        if workers_out is not None:
            _write_table(
                pa.table(
                    {
                        "worker": w_dict.take(pa.array(res.worker_ids)),
                        "accuracy": pa.array(np.round(res.worker_accuracy, 6)),
                        "n_answers": pa.array(res.worker_n_answers),
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
    responses, _t, w_dict, _l = read_answers(answers)
    responses = Responses(
        responses.task_idx,
        responses.worker_idx,
        responses.label,
        responses.task_ids,
        np.asarray(w_dict.to_pylist(), dtype=object),
        responses.classes,
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
