"""``veracity drift``: compare operational data with training data, per feature and as a whole.

Reads two tables (``.csv`` with a header, ``.parquet``, ``.jsonl`` with one object per line, or a
``.npy`` array) with the same columns, runs :func:`veracity.align.detect_drift` and prints a
summary, or the whole report as JSON with ``--json``; ``--report`` writes a self-contained HTML
page. numpy, pyarrow and the engine are imported inside the command so that ``veracity --help``
stays fast.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from veracity.cli._common import first_bad_utf8_line
from veracity.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_table", "register"]


def _csv_reader(fh: Any) -> Any:
    """A ``csv.reader`` that accepts fields of any length (the default limit is 128 KiB)."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    return csv.reader(fh)


def _csv_row_error(path: Path) -> None:
    """Find the first row whose field count differs from the header (raises), else return."""
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = _csv_reader(fh)
        header = next(reader, None)
        if header is None:
            raise InvalidInputError(f"{path}: the file is empty")
        for i, row in enumerate(reader, start=1):
            if row and len(row) != len(header):
                raise InvalidInputError(
                    f"{path} row {i} (line {reader.line_num}): expected {len(header)} fields as in the header, "
                    f"got {len(row)}"
                )


def _columns_from_arrow(table: Any, path: Path) -> dict[str, np.ndarray]:
    import numpy as np
    import pyarrow as pa

    cols: dict[str, np.ndarray] = {}
    for field in table.schema:
        col = table.column(field.name)
        t = field.type
        if pa.types.is_null(t):  # every value missing: numbers, so that the column checks see it
            cols[field.name] = np.full(len(col), np.nan)
        elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            values = [np.nan if v is None else float(v) for v in col.to_pylist()] if col.null_count else None
            cols[field.name] = np.asarray(values if values is not None else col.to_numpy(), dtype=np.float64)
        elif any(
            check(t)
            for check in (
                pa.types.is_string,
                pa.types.is_large_string,
                pa.types.is_boolean,
                pa.types.is_dictionary,
                pa.types.is_temporal,
            )
        ):
            cols[field.name] = np.array([None if v is None else str(v) for v in col.to_pylist()], dtype=object)
        elif path.suffix.lower() == ".csv" and (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            line = first_bad_utf8_line(path)
            where = f" line {line}" if line else ""
            raise InvalidInputError(
                f"{path}{where}: not valid UTF-8 text (column {field.name!r}); save the file as UTF-8"
            )
        else:
            raise InvalidInputError(f"{path}: column {field.name!r} has type {t}; expected numbers or text")
    return cols


def _read_jsonl(path: Path) -> dict[str, np.ndarray]:
    import numpy as np

    rows: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    with path.open("r", encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path} row {line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise InvalidInputError(f"{path} row {line_no}: expected a JSON object, got {type(obj).__name__}")
            for key, value in obj.items():
                if isinstance(value, (dict, list)):
                    raise InvalidInputError(
                        f"{path} row {line_no}, field {key!r}: expected a number or text, got {type(value).__name__}"
                    )
                names.setdefault(key)
            rows.append(obj)
    if not rows:
        raise InvalidInputError(f"{path}: no rows")
    cols: dict[str, np.ndarray] = {}
    for key in names:
        values = [r.get(key) for r in rows]
        numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
        if numeric:
            cols[key] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        else:
            cols[key] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return cols


def _read_npy(path: Path) -> dict[str, np.ndarray]:
    import numpy as np

    arr = np.load(path, allow_pickle=False)
    if arr.dtype.names:
        return {name: np.asarray(arr[name]) for name in arr.dtype.names}
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidInputError(f"{path}: expected a 2-D array (rows, features), got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise InvalidInputError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return {f"x{j}": arr[:, j].astype(np.float64) for j in range(arr.shape[1])}


def read_table(path: Path) -> dict[str, np.ndarray]:
    """Columns of a ``.csv``, ``.parquet``, ``.jsonl`` or ``.npy`` file as 1-D numpy arrays.

    Numeric columns become float64 (missing values NaN); others become object arrays of strings
    (missing values ``None``). Raises :class:`~veracity.errors.InvalidInputError` naming the file and,
    where it applies, the row or column.
    """
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            import pyarrow as pa
            import pyarrow.csv as pacsv

            try:
                # blocks of 16 MB: a row must fit in one block, and a long text field is not an error
                table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24))
            except pa.ArrowInvalid as exc:
                if "Empty CSV" in str(exc):
                    raise InvalidInputError(f"{path}: the file is empty") from None
                _csv_row_error(path)
                raise InvalidInputError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from exc
            cols = _columns_from_arrow(table, path)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            cols = _columns_from_arrow(pq.read_table(path), path)
        elif suffix in (".jsonl", ".ndjson"):
            cols = _read_jsonl(path)
        elif suffix == ".npy":
            cols = _read_npy(path)
        else:
            raise InvalidInputError(f"{path}: unsupported file type {suffix!r} (use .csv, .parquet, .jsonl or .npy)")
    except InvalidInputError:
        raise
    except UnicodeDecodeError:
        line = first_bad_utf8_line(path)
        where = f" line {line}" if line else ""
        raise InvalidInputError(f"{path}{where}: not valid UTF-8 text; save the file as UTF-8") from None
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: cannot read ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise InvalidInputError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    if not cols:
        raise InvalidInputError(f"{path}: no columns")
    n_rows = len(next(iter(cols.values())))
    if n_rows < 2:
        raise InvalidInputError(f"{path}: need at least 2 rows, got {n_rows}")
    return cols


def _split(option: str | None) -> list[str]:
    return [s.strip() for s in option.split(",") if s.strip()] if option else []


def _check_columns(
    train: dict[str, Any], ops: dict[str, Any], train_path: Path, ops_path: Path, features: list[str]
) -> list[str]:
    if features:
        for path, cols in ((train_path, train), (ops_path, ops)):
            missing = [f for f in features if f not in cols]
            if missing:
                raise InvalidInputError(
                    f"{path}: no column {', '.join(map(repr, missing))} (has {', '.join(map(str, cols))})"
                )
        return features
    only_train = [c for c in train if c not in ops]
    only_ops = [c for c in ops if c not in train]
    if only_train or only_ops:
        raise InvalidInputError(
            f"{train_path} and {ops_path} must have the same columns (or pass --features); "
            f"only in {train_path}: {only_train or 'none'}; only in {ops_path}: {only_ops or 'none'}"
        )
    return list(train)


def _row_location(path: Path, row: int) -> str:
    """How messages name data row ``row`` (0-based) of ``path``: ``row N (line L)`` for text files."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open("r", encoding="utf-8-sig", newline="") as fh:
                reader = _csv_reader(fh)
                seen, end = -1, 0  # seen -1: the header comes first
                for fields in reader:
                    start, end = end + 1, reader.line_num
                    if not fields:  # blank lines are skipped, as pyarrow does
                        continue
                    if seen == row:
                        return f"row {row + 1} (line {start})"
                    seen += 1
        elif suffix in (".jsonl", ".ndjson"):
            with path.open("r", encoding="utf-8-sig") as fh:
                seen = 0
                for line_no, line in enumerate(fh, start=1):
                    if line.strip():
                        if seen == row:
                            return f"row {row + 1} (line {line_no})"
                        seen += 1
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return f"row {row + 1}"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _first_non_number(col: np.ndarray) -> tuple[int, Any] | None:
    for i, v in enumerate(col.tolist()):
        if v is not None and not _is_number(v):
            return i, v
    return None


def _check_values(names: list[str], categorical: list[str], sides: list[tuple[Path, dict[str, np.ndarray]]]) -> None:
    """Fail on columns the tests would silently misread: numbers in one file and text in the other,
    numbers but for a few cells, infinite values, or no value at all. ``--categorical`` columns
    are taken as they are."""
    import numpy as np

    known = {c for _, cols in sides for c in cols}
    unknown = [c for c in categorical if c not in known]
    if unknown:
        raise InvalidInputError(
            f"--categorical: no column {', '.join(map(repr, unknown))} (has {', '.join(map(str, sides[0][1]))})"
        )
    hint = "pass --categorical {} if the column is categorical"
    for name in names:
        if name in categorical:
            continue
        numeric = [cols[name].dtype.kind in "iuf" for _, cols in sides]
        for (path, cols), is_num in zip(sides, numeric, strict=True):
            col = cols[name]
            empty = not np.isfinite(col).any() if is_num else all(v is None for v in col.tolist())
            if empty and not (is_num and np.isinf(col).any()):
                raise InvalidInputError(
                    f"{path}: column {name!r} has no values (all {col.shape[0]} missing); "
                    f"leave it out with --features, or {hint.format(name)}"
                )
        if numeric[0] != numeric[1]:
            (text_path, text_cols), (num_path, _) = sides if numeric[1] else sides[::-1]
            first = _first_non_number(text_cols[name])
            if first is None:
                example = next(v for v in text_cols[name].tolist() if v is not None)
                raise InvalidInputError(
                    f"{text_path}: column {name!r} holds text (such as {example!r}) but numbers in {num_path}; "
                    f"store numbers in both files, or {hint.format(name)}"
                )
            row, value = first
            raise InvalidInputError(
                f"{text_path} {_row_location(text_path, row)}, column {name!r}: {value!r} is not a number, "
                f"but the column holds numbers in {num_path}; fix the value, or {hint.format(name)}"
            )
        if not numeric[0]:
            counts = Counter(v for _, cols in sides for v in cols[name].tolist() if v is not None)
            bad = sum(k for v, k in counts.items() if not _is_number(v))
            total = sum(counts.values())
            if 0 < bad <= 0.05 * total:
                path, cols = next((p, c) for p, c in sides if _first_non_number(c[name]) is not None)
                row, value = _first_non_number(cols[name]) or (0, None)
                raise InvalidInputError(
                    f"{path} {_row_location(path, row)}, column {name!r}: {value!r} is not a number, but "
                    f"{(total - bad) / total:.0%} of the column's values are; fix the value, or {hint.format(name)}"
                )
            continue
        for path, cols in sides:
            inf = np.flatnonzero(np.isinf(cols[name]))
            if inf.size:
                row = int(inf[0])
                raise InvalidInputError(
                    f"{path} {_row_location(path, row)}, column {name!r}: infinite value {cols[name][row]}; "
                    "expected a finite number (leave the cell empty if the value is missing)"
                )


def _check_report_path(report: Path) -> None:
    """Fail before any work when the HTML report could not be written."""
    if report.is_dir():
        raise InvalidInputError(f"--report {report}: is a directory; give a file name such as {report / 'drift.html'}")
    folder = report.parent
    if not folder.exists():
        raise InvalidInputError(f"--report {report}: folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInputError(f"--report {report}: {folder} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".veracity-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"--report {report}: cannot write in folder {folder} ({exc.strerror})") from None
    if report.exists() and not os.access(report, os.W_OK):
        raise InvalidInputError(f"--report {report}: the file exists and is not writable")


def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def drift(
    train: Annotated[Path, typer.Argument(help="Training (reference) data: .csv, .parquet, .jsonl or .npy.")],
    operations: Annotated[Path, typer.Argument(help="Operational (current) data with the same columns.")],
    features: Annotated[
        str | None, typer.Option("--features", help="Comma-separated columns to compare (default: all).")
    ] = None,
    categorical: Annotated[
        str | None, typer.Option("--categorical", help="Comma-separated numeric columns to treat as categories.")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="auto (combined permutation test), univariate, mmd or c2st.")
    ] = "auto",
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    correction: Annotated[
        str, typer.Option("--correction", help="Per-feature multiple-testing correction: holm, bh, bonferroni, none.")
    ] = "holm",
    permutations: Annotated[int, typer.Option("--permutations", help="Permutations of the permutation tests.")] = 99,
    clusters: Annotated[int, typer.Option("--clusters", help="k-means clusters for coverage slices (0: off).")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (permutations, clusters).")] = 0,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a self-contained HTML report to this path.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with code 1 when drift is detected (for pipelines).")
    ] = False,
) -> None:
    """Test whether OPERATIONS still looks like TRAIN: per feature, as a whole, and by slice."""
    from veracity.align import detect_drift

    if clusters < 0:
        raise InvalidInputError(f"--clusters must be >= 0 (0 turns cluster slices off), got {clusters}")
    if permutations < 1:
        raise InvalidInputError(f"--permutations must be >= 1, got {permutations}")
    if report is not None:
        _check_report_path(report)
    train_cols = read_table(train)
    ops_cols = read_table(operations)
    names = _check_columns(train_cols, ops_cols, train, operations, _split(features))
    categories = _split(categorical)
    _check_values(names, categories, [(train, train_cols), (operations, ops_cols)])
    result = detect_drift(
        {n: train_cols[n] for n in names},
        {n: ops_cols[n] for n in names},
        method,
        alpha,
        categorical=categories,
        correction=correction,
        n_permutations=permutations,
        n_clusters=clusters,
        random_state=seed,
    )
    if report is not None:
        try:
            report.write_text(result.to_html(title=f"Drift: {operations.name} vs {train.name}"), encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"--report {report}: cannot write ({exc.strerror or exc})") from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        verdict = "DRIFT" if result.drift else "no drift"
        typer.echo(
            f"{verdict}: p = {_fmt_p(result.p_value)} (method {result.method}, alpha {result.alpha}); "
            f"{result.n_reference} training rows, {result.n_current} operational rows"
        )
        typer.echo(f"{'feature':<24} {'test':<5} {'statistic':>10} {'adj. p':>10} {'PSI':>8}  drift")
        for f in sorted(result.per_feature, key=lambda f: f.p_value):
            typer.echo(
                f"{f.name[:24]:<24} {f.test:<5} {f.statistic:>10.4g} {_fmt_p(f.p_adjusted):>10} {f.psi:>8.3f}  "
                f"{'yes' if f.drift else 'no'}"
            )
        if result.slices:
            typer.echo("Slices frequent in operations but rare in training:")
            for s in result.slices[:5]:
                typer.echo(
                    f"  {s.description}: {s.share_current:.1%} of operations vs {s.share_reference:.1%} of training"
                )
        if report is not None:
            typer.echo(f"Report written to {report}")
    if fail_on_drift and result.drift:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("drift")(drift)
