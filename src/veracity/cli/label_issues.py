"""``veracity label-issues``: rank items whose given label is likely wrong (confident learning).

Reads labels (n,) and out-of-sample predicted probabilities (n, k) from ``.npy``, ``.csv`` or
``.parquet`` files and writes ``ISSUES.csv`` with ``index,score,is_issue,suggested``, most likely
mislabelled first. numpy, pyarrow and the engine are imported inside the command so that
``veracity --help`` stays fast.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
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


_LABEL_COLUMNS = ("label", "labels", "given_label")


@dataclass(frozen=True)
class _Input:
    """An array read from a file, and what messages need to point into the file."""

    array: npt.NDArray[Any]
    first_line: int | None = None  # line of the first data row (text files), else rows are counted from 0
    columns: tuple[str, ...] = ()  # header or schema names, when the file has them

    def where(self, name: str, row: int) -> str:
        return f"{name} line {self.first_line + row}" if self.first_line is not None else f"{name} row {row}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_data(cell: str) -> bool:
    """A number, or numbers joined by another separator (then the row is data, not a header)."""
    return _is_number(cell) or all(_is_number(part) for part in re.split(r"[;\t|]", cell))


def _csv_cell_error(lines: list[str], first_line: int, name: str, header: list[str], use: int | None) -> None:
    """Raise naming the first line whose fields do not read as numbers (after np.loadtxt failed)."""
    width = len(header) if header else None
    like = "in the header" if header else "on the first line"
    for i, fields in enumerate(csv.reader(lines)):
        line = first_line + i
        if width is None:
            width = len(fields)
        if len(fields) != width:
            raise InvalidInputError(f"{name} line {line}: expected {width} fields {like}, got {len(fields)}")
        for j, cell in enumerate(fields):
            if use is not None and j != use:
                continue
            column = repr(header[j]) if header else str(j + 1)
            if not cell.strip():
                raise InvalidInputError(f"{name} line {line}, column {column}: empty value")
            if not _is_number(cell):
                hint = "; separate the columns with ','" if any(sep in cell for sep in ";\t|") else ""
                raise InvalidInputError(f"{name} line {line}, column {column}: {cell.strip()!r} is not a number{hint}")


def _read_csv(path: Path, name: str, columns: tuple[str, ...] = ()) -> _Input:
    """Numbers of a CSV with an optional one-row text header (quoted fields and a UTF-8 BOM allowed)."""
    import numpy as np

    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInputError(f"{name} line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():  # blank lines at the end are fine
        lines.pop()
    if not lines:
        raise InvalidInputError(f"{name}: the file is empty")
    blank = next((i for i, line in enumerate(lines) if not line.strip()), None)
    if blank is not None:
        raise InvalidInputError(f"{name} line {blank + 1} is empty; expected one row per item")
    first = [c.strip() for c in next(csv.reader([lines[0]]))]
    header = [] if all(_is_data(c) for c in first) else first
    use = None
    if header:
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise InvalidInputError(f"{name} line 1: column {', '.join(map(repr, dupes))} appears more than once")
        if len(header) > 1:
            use = next((header.index(c) for c in columns if c in header), None)
    body = lines[1:] if header else lines
    first_line = 2 if header else 1
    if not body:
        raise InvalidInputError(f"{name}: no rows after the header line ({', '.join(header)})")
    try:
        arr = np.loadtxt(body, delimiter=",", quotechar='"', dtype=np.float64, ndmin=2, usecols=use)
    except ValueError as exc:
        _csv_cell_error(body, first_line, name, header, use)
        raise InvalidInputError(f"{name}: cannot read as numbers ({exc})") from exc
    names = (header[use],) if use is not None else tuple(header)
    return _Input(arr, first_line, names)


def _read_parquet(path: Path, name: str, columns: tuple[str, ...] = ()) -> _Input:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if table.num_columns > 1:
        chosen = next((c for c in columns if c in table.column_names), None)
        if chosen is not None:
            table = table.select([chosen])
    names = tuple(table.column_names)
    if table.num_columns == 1 and str(table.schema.field(0).type).startswith(("list", "fixed_size_list", "large_list")):
        try:
            return _Input(np.asarray(table.column(0).to_pylist(), dtype=np.float64), None, names)
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
    return _Input(np.column_stack(cols), None, names)


def _read(path: Path, *, columns: tuple[str, ...] = ()) -> _Input:
    import numpy as np

    name = str(path)
    if path.is_dir():
        raise InvalidInputError(f"{name}: is a directory, expected a file")
    if not path.is_file():
        raise InvalidInputError(f"{name}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return _Input(np.load(path, allow_pickle=False))
        if suffix == ".csv":
            return _read_csv(path, name, columns)
        if suffix == ".parquet":
            return _read_parquet(path, name, columns)
        raise InvalidInputError(f"{name}: unsupported file type {suffix!r} (use .npy, .csv or .parquet)")
    except InvalidInputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{name}: cannot read ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise InvalidInputError(f"{name}: cannot read ({type(exc).__name__}: {exc})") from exc


def read_array(path: Path, *, columns: tuple[str, ...] = ()) -> npt.NDArray[Any]:
    """Read a numeric array from ``.npy``, ``.csv`` (optional one-row header) or ``.parquet``.

    When a CSV header or a Parquet schema has several columns and one is named in ``columns``,
    only that column is read (the first such name wins).

    Raises :class:`~veracity.errors.InvalidInputError` naming the file (and, for a CSV, the line)
    when it cannot be read.
    """
    return _read(path, columns=columns).array


def _as_labels(read: _Input, name: str) -> npt.NDArray[Any]:
    import numpy as np

    arr = read.array
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2 and read.columns:
        raise InvalidInputError(
            f"{name}: expected one column of labels, got {arr.shape[1]} ({', '.join(read.columns)}); "
            f"name the label column {', '.join(map(repr, _LABEL_COLUMNS))} or keep only that column"
        )
    if arr.ndim != 1:
        raise InvalidInputError(f"{name}: expected one column of labels, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= 2.0**63))
        if bad.size:
            raise InvalidInputError(
                f"{read.where(name, int(bad[0]))}: expected an integer class index, got {arr[bad[0]].item()!r}"
            )
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "u" and arr.dtype.itemsize >= 8:
        big = np.flatnonzero(arr > np.iinfo(np.int64).max)
        if big.size:
            raise InvalidInputError(
                f"{read.where(name, int(big[0]))}: label {arr[big[0]].item()} is not a class index (too large)"
            )
    return arr


def _in_lines(exc: InvalidInputError, name: str, read: _Input) -> InvalidInputError:
    """``exc`` with ``NAME row R`` (counted from 0) put as ``NAME line L`` for a text file."""
    prefix = f"{name} row "
    found = re.match(r"(\d+)(.*)", exc.message[len(prefix) :], re.S) if exc.message.startswith(prefix) else None
    if read.first_line is None or found is None:
        return exc
    return InvalidInputError(f"{read.where(name, int(found[1]))}{found[2]}")


def _put_digits(table: npt.NDArray[np.uint8], col: int, values: npt.NDArray[Any], width: int, *, pad: bool) -> None:
    """Write decimal digits of non-negative ints into ``table[:, col:col + width]``, right-aligned.

    Leading zeros are kept when ``pad``, else left as 0 bytes (dropped later).
    """
    import numpy as np

    small = width <= 9  # uint32 division is much faster than int64 division
    dtype = np.uint32 if small else np.uint64
    powers = (10 ** np.arange(width - 1, -1, -1, dtype=np.uint64)).astype(dtype)
    vals = values.astype(dtype)[:, None]
    digits = (vals // powers % 10).astype(np.uint8)
    digits += 48
    if not pad:
        digits[(vals < powers) & (powers > 1)] = 0
    table[:, col : col + width] = digits


def _csv_rows(
    index: npt.NDArray[Any], score: npt.NDArray[Any], is_issue: npt.NDArray[np.bool_], suggested: npt.NDArray[Any]
) -> bytes:
    """``index,score,is_issue,suggested`` lines for one chunk, formatted with array operations only.

    Every field goes into fixed columns of a byte matrix; unused cells stay 0 and are dropped at
    the end. The score is written with 6 decimals.
    """
    import numpy as np

    n = index.shape[0]
    if n == 0:
        return b""
    wi = len(str(int(index.max())))
    ws = len(str(int(suggested.max())))
    # index , d.dddddd , false , suggested \n
    table = np.zeros((n, wi + 1 + 8 + 1 + 5 + 1 + ws + 1), dtype=np.uint8)
    _put_digits(table, 0, index, wi, pad=False)
    col = wi
    table[:, col] = ord(",")
    micro = np.rint(np.clip(score.astype(np.float64), 0.0, 1.0) * 1e6).astype(np.uint32)
    _put_digits(table, col + 1, micro // 1_000_000, 1, pad=True)
    table[:, col + 2] = ord(".")
    _put_digits(table, col + 3, micro % 1_000_000, 6, pad=True)
    col += 9
    table[:, col] = ord(",")
    words = np.frombuffer(b"false" + b"true\0", dtype=np.uint8).reshape(2, 5)
    table[:, col + 1 : col + 6] = words[is_issue.astype(np.intp)]
    col += 6
    table[:, col] = ord(",")
    _put_digits(table, col + 1, suggested, ws, pad=False)
    table[:, -1] = ord("\n")
    return table[table != 0].tobytes()


def write_issues_csv(
    path: Path,
    ranked: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    mask: npt.NDArray[np.bool_],
    suggested: npt.NDArray[Any],
    *,
    chunk: int = 1 << 16,
) -> None:
    """Write ``index,score,is_issue,suggested`` in the order of ``ranked``.

    Rows are formatted in chunks with array operations, on a few threads (numpy releases the
    GIL), and written in order.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    def fmt(start: int) -> bytes:
        idx = ranked[start : start + chunk]
        return _csv_rows(idx, scores[idx], mask[idx], suggested[idx])

    starts = list(range(0, ranked.shape[0], chunk))
    threads = max(1, min(os.cpu_count() or 1, 4, len(starts)))
    try:
        with path.open("wb") as fh, ThreadPoolExecutor(max_workers=threads) as pool:
            fh.write(b"index,score,is_issue,suggested\n")
            for window in range(0, len(starts), 2 * threads):
                for text in pool.map(fmt, starts[window : window + 2 * threads]):
                    fh.write(text)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot write ({exc})") from exc


def label_issues(
    labels: Annotated[
        Path,
        typer.Option(
            "--labels", help="Given labels, one per item (.npy, .csv or .parquet; a column 'label' if several)."
        ),
    ],
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

    lab_in = _read(labels, columns=_LABEL_COLUMNS)
    lab = _as_labels(lab_in, str(labels))
    probs_in = _read(pred_probs)
    try:
        lab, probs = validate_label_inputs(
            lab, probs_in.array, labels_name=str(labels), pred_probs_name=str(pred_probs), n_jobs=None
        )
    except InvalidInputError as exc:  # the engine counts rows from 0; a text file has lines
        exc = _in_lines(exc, str(labels), lab_in)
        raise _in_lines(exc, str(pred_probs), probs_in) from None
    res = find_label_issues(lab, probs, method=method, rank_by=rank_by, check_input=False)  # type: ignore[arg-type]
    write_issues_csv(out, res.ranked, res.scores, res.mask, res.suggested)
    typer.echo(f"{res.num_issues} of {lab.shape[0]} items flagged ({res.method}); wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``label-issues`` to ``app``."""
    app.command("label-issues")(label_issues)
