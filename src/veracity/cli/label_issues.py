"""``veracity label-issues``: rank items whose given label is likely wrong (confident learning).

Reads labels (n,) and out-of-sample predicted probabilities (n, k) from ``.npy``, ``.csv`` or
``.parquet`` files and writes ``ISSUES.csv`` with ``index,score,is_issue,suggested``, most likely
mislabelled first. numpy, pyarrow and the engine are imported inside the command so that
``veracity --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from veracity.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["read_array", "register", "write_issues_csv"]

_METHODS = (
    "auto",
    "prune_by_noise_rate",
    "prune_by_class",
    "prune_by_class_margin",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
_RANK_BY = ("normalized_margin", "self_confidence", "confidence_weighted_entropy")


def _read_csv(path: Path, name: str) -> npt.NDArray[Any]:
    import numpy as np

    with path.open("r", encoding="utf-8") as fh:
        first = fh.readline()
    if not first.strip():
        raise InvalidInputError(f"{name}: the file is empty")
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InvalidInputError(f"{name}: cannot read as numbers ({exc})") from exc
    return arr


def _read_parquet(path: Path, name: str) -> npt.NDArray[Any]:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if table.num_columns == 1 and str(table.schema.field(0).type).startswith(("list", "fixed_size_list", "large_list")):
        try:
            return np.asarray(table.column(0).to_pylist(), dtype=np.float64)
        except ValueError as exc:
            raise InvalidInputError(f"{name}: rows of the list column differ in length ({exc})") from exc
    cols = []
    for i, field in enumerate(table.schema):
        col = table.column(i)
        if col.null_count:
            row = next(j for j, v in enumerate(col.to_pylist()) if v is None)
            raise InvalidInputError(f"{name} row {row}, column {field.name!r}: missing value")
        try:
            cols.append(col.to_numpy().astype(np.float64))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name}: column {field.name!r} is not numeric ({field.type})") from exc
    if not cols:
        raise InvalidInputError(f"{name}: no columns")
    return np.column_stack(cols)


def read_array(path: Path) -> npt.NDArray[Any]:
    """Read a numeric array from ``.npy``, ``.csv`` (optional header) or ``.parquet``.

    Raises :class:`~veracity.errors.InvalidInputError` naming the file when it cannot be read.
    """
    import numpy as np

    name = str(path)
    if not path.is_file():
        raise InvalidInputError(f"{name}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            arr = _read_csv(path, name)
        elif suffix == ".parquet":
            arr = _read_parquet(path, name)
        else:
            raise InvalidInputError(f"{name}: unsupported file type {suffix!r} (use .npy, .csv or .parquet)")
    except InvalidInputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{name}: cannot read ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise InvalidInputError(f"{name}: cannot read ({type(exc).__name__}: {exc})") from exc
    return arr


def _as_labels(arr: npt.NDArray[Any], name: str) -> npt.NDArray[Any]:
    import numpy as np

    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"{name}: labels must be one column, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            raise InvalidInputError(f"{name} row {bad[0]}: expected an integer class index, got {arr[bad[0]]!r}")
        arr = arr.astype(np.int64)
    return arr


def write_issues_csv(
    path: Path,
    ranked: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    mask: npt.NDArray[np.bool_],
    suggested: npt.NDArray[Any],
) -> None:
    """Write ``index,score,is_issue,suggested`` in the order of ``ranked`` (pyarrow's CSV writer)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            "index": pa.array(ranked.astype(np.int64, copy=False)),
            "score": pa.array(np.round(scores[ranked].astype(np.float64), 6)),
            "is_issue": pa.array(mask[ranked]),
            "suggested": pa.array(suggested[ranked].astype(np.int64, copy=False)),
        }
    )
    try:
        with path.open("wb") as fh:
            fh.write(b"index,score,is_issue,suggested\n")
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot write ({exc})") from exc


def label_issues(
    labels: Annotated[Path, typer.Option("--labels", help="Given labels, one per item (.npy, .csv or .parquet).")],
    pred_probs: Annotated[
        Path, typer.Option("--pred-probs", help="Out-of-sample predicted probabilities, n x k (.npy, .csv, .parquet).")
    ],
    out: Annotated[Path, typer.Option("--out", help="ISSUES.csv to write: index,score,is_issue,suggested.")],
    method: Annotated[str, typer.Option(help=f"Filter: {', '.join(_METHODS)}.")] = "auto",
    rank_by: Annotated[str, typer.Option(help=f"Score: {', '.join(_RANK_BY)}.")] = "normalized_margin",
) -> None:
    """Find likely mislabelled items; write them ranked, most likely mislabelled first."""
    if method not in _METHODS:
        raise InvalidInputError(f"--method must be one of {', '.join(_METHODS)}, got {method!r}")
    if rank_by not in _RANK_BY:
        raise InvalidInputError(f"--rank-by must be one of {', '.join(_RANK_BY)}, got {rank_by!r}")
    from veracity.quality.label_errors import find_label_issues, validate_label_inputs

    lab = _as_labels(read_array(labels), str(labels))
    probs = read_array(pred_probs)
    lab, probs = validate_label_inputs(
        lab, probs, labels_name=str(labels), pred_probs_name=str(pred_probs), n_jobs=None
    )
    res = find_label_issues(lab, probs, method=method, rank_by=rank_by, check_input=False)  # type: ignore[arg-type]
    write_issues_csv(out, res.ranked, res.scores, res.mask, res.suggested)
    typer.echo(f"{res.num_issues} of {lab.shape[0]} items flagged ({res.method}); wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``label-issues`` to ``app``."""
    app.command("label-issues")(label_issues)
