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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from veracity.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["read_table", "register"]


def _csv_row_error(path: Path) -> None:
    """Find the first row whose field count differs from the header (raises), else return."""
    with path.open("r", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
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
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            values = [np.nan if v is None else float(v) for v in col.to_pylist()] if col.null_count else None
            cols[field.name] = np.asarray(values if values is not None else col.to_numpy(), dtype=np.float64)
        elif any(
            check(t)
            for check in (
                pa.types.is_string,
                pa.types.is_large_string,
                pa.types.is_boolean,
                pa.types.is_null,
                pa.types.is_dictionary,
                pa.types.is_temporal,
            )
        ):
            cols[field.name] = np.array([None if v is None else str(v) for v in col.to_pylist()], dtype=object)
        else:
            raise InvalidInputError(f"{path}: column {field.name!r} has type {t}; expected numbers or text")
    return cols


def _read_jsonl(path: Path) -> dict[str, np.ndarray]:
    import numpy as np

    rows: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    with path.open("r", encoding="utf-8") as fh:
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
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            import pyarrow as pa
            import pyarrow.csv as pacsv

            try:
                table = pacsv.read_csv(path)
            except pa.ArrowInvalid as exc:
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
    except (OSError, ValueError, UnicodeDecodeError) as exc:
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

    if report is not None and not report.parent.exists():
        raise InvalidInputError(f"--report {report}: folder {report.parent} does not exist")
    train_cols = read_table(train)
    ops_cols = read_table(operations)
    names = _check_columns(train_cols, ops_cols, train, operations, _split(features))
    result = detect_drift(
        {n: train_cols[n] for n in names},
        {n: ops_cols[n] for n in names},
        method,
        alpha,
        categorical=_split(categorical),
        correction=correction,
        n_permutations=permutations,
        n_clusters=clusters,
        random_state=seed,
    )
    if report is not None:
        report.write_text(result.to_html(title=f"Drift: {operations.name} vs {train.name}"), encoding="utf-8")
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
