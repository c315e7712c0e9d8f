"""Column tables for the drift engine: arrays, mappings, pandas or Arrow tables, one shape inside.

A :class:`Table` is an ordered mapping of column name to a 1-D numpy array plus the kind of each
column (``"numeric"`` or ``"categorical"``). pandas and pyarrow are never imported: their objects
are recognised by duck typing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veracity.errors import InvalidInputError
from veracity.types import FloatArray, IntArray

__all__ = [
    "MAX_CATEGORY_CHARS",
    "MISSING",
    "Table",
    "align_tables",
    "as_table",
    "category_array",
    "category_text",
    "design_matrix",
    "level_counts",
    "pooled_mean_std",
]

#: Category given to missing values (None, NaN) of a categorical column.
MISSING = "<missing>"
#: Longest category value kept as it is; a longer one becomes its first characters and a digest
#: (see :func:`category_text`).
MAX_CATEGORY_CHARS = 200


@dataclass(frozen=True)
class Table:
    """Named columns of equal length with a kind per column."""

    columns: dict[str, np.ndarray]
    kinds: dict[str, str]

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    @property
    def n_rows(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0


#: Largest absolute value whose square, summed over any realistic number of rows, stays finite
#: in float64; beyond it the pooled mean and standard deviation are computed on rescaled values.
_SAFE_MAGNITUDE = 1e100


def _names(keys: Sequence[Any], what: str) -> list[str]:
    """``keys`` as strings; two keys with the same string (``0`` and ``"0"``, a repeated name) are an
    error rather than one column silently replacing the other."""
    names = [str(k) for k in keys]
    if len(set(names)) < len(names):
        dups = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"{what} must be unique (compared as strings), got {', '.join(map(repr, dups))} twice")
    return names


def _raw_columns(obj: Any, name: str, feature_names: Sequence[str] | None) -> dict[str, np.ndarray]:
    if isinstance(obj, Table):
        return dict(obj.columns)
    if isinstance(obj, Mapping):
        keys = list(obj.keys())
        return dict(zip(_names(keys, f"{name} column names"), (np.asarray(obj[k]) for k in keys), strict=True))
    if hasattr(obj, "column_names") and hasattr(obj, "column"):  # pyarrow.Table (duck-typed)
        keys = list(obj.column_names)
        names = _names(keys, f"{name} column names")
        return {n: np.asarray(obj.column(i).to_numpy(zero_copy_only=False)) for i, n in enumerate(names)}
    if hasattr(obj, "columns") and hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):  # pandas/polars
        keys = list(obj.columns)
        names = _names(keys, f"{name} column names")
        if hasattr(obj, "iloc"):  # pandas: by position, so that a repeated label cannot pick two columns
            return {n: np.asarray(obj.iloc[:, i].to_numpy()) for i, n in enumerate(names)}
        return {n: np.asarray(obj[c].to_numpy()) for c, n in zip(keys, names, strict=True)}
    arr = np.asarray(obj)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidInputError(f"{name} must be a 2-D array (n_rows, n_features) or a table, got shape {arr.shape}")
    if isinstance(feature_names, str):
        feature_names = [feature_names]
    default = [f"x{j}" for j in range(arr.shape[1])]
    names = default if feature_names is None else _names(feature_names, "feature_names")
    if len(names) != arr.shape[1]:
        raise InvalidInputError(f"{name} has {arr.shape[1]} columns but {len(names)} feature names were given")
    return {n: arr[:, j] for j, n in enumerate(names)}


def _is_numeric(col: np.ndarray) -> bool:
    return col.dtype.kind in "iuf"


def as_table(
    obj: Any,
    *,
    name: str = "data",
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
) -> Table:
    """Turn ``obj`` into a :class:`Table`.

    ``obj`` may be a 2-D numpy array (columns named ``feature_names`` or ``x0, x1, ...``), a mapping
    of column name to values, a pandas or polars DataFrame, or a pyarrow Table. Numeric columns are
    ``"numeric"`` unless listed in ``categorical``; strings, booleans and objects are categorical.
    """
    raw = _raw_columns(obj, name, feature_names)
    if not raw:
        raise InvalidInputError(f"{name} has no columns")
    categorical = _name_list(categorical, "categorical")
    lengths = {k: v.shape[0] if v.ndim else 1 for k, v in raw.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"{name} columns must have the same length, got {lengths}")
    cat = set(categorical)
    columns: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for key, col in raw.items():
        col = np.asarray(col)
        if col.ndim != 1:
            raise InvalidInputError(f"{name} column {key!r} must be 1-D, got shape {col.shape}")
        if key not in cat and _is_numeric(col):
            columns[key] = col.astype(np.float64)
            kinds[key] = "numeric"
        else:
            columns[key] = _as_categories(col)
            kinds[key] = "categorical"
    return Table(columns, kinds)


def _name_list(names: Any, what: str) -> list[str]:
    """Column names as a list of strings; one string is one name (not its characters)."""
    if isinstance(names, str):
        return [names]
    try:
        return [str(n) for n in names]
    except TypeError:
        raise InvalidInputError(f"{what} must be a column name or a list of them, got {names!r}") from None


def pooled_mean_std(values: FloatArray, axis: int | None = None) -> tuple[Any, Any, Any]:
    """``(scale, mean, std)`` of ``values`` such that ``(values / scale - mean) / std`` standardises them.

    ``scale`` is 1 for ordinary data (the result is then exactly ``values.mean()`` and
    ``values.std()``); when some absolute value exceeds ``1e100`` the statistics are computed on
    ``values / scale`` with ``scale`` the largest absolute value, so that squaring cannot overflow
    and very large numbers are standardised like any others. A zero standard deviation becomes 1.
    """
    big = float(np.max(np.abs(values))) if values.size else 0.0
    scale = big if big > _SAFE_MAGNITUDE else 1.0
    scaled = values / scale if scale != 1.0 else values
    mu = scaled.mean(axis=axis) if values.size else 0.0
    sd = scaled.std(axis=axis) if values.size else 1.0
    sd = np.where(sd > 0, sd, 1.0) if np.ndim(sd) else (float(sd) if sd > 0 else 1.0)
    return scale, mu, sd


def category_text(value: Any) -> str:
    """The text of a category value; one longer than :data:`MAX_CATEGORY_CHARS` characters becomes
    its first 64 characters, its length and a SHA-256 digest.

    Categories are held as a fixed-width numpy string array, as wide as the longest value: one
    300,000-character cell in 4,000 rows made a 4.8 GB array and a drift test of 160 s. Equal
    values keep equal texts and different ones different texts (up to a digest collision), so the
    counts and tests are unchanged; the report shows the shortened text.
    """
    text = str(value)
    if len(text) <= MAX_CATEGORY_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[:64]}... ({len(text):,} characters, sha256 {digest})"


def category_array(values: Any) -> np.ndarray:
    """``values`` (1-D) as a numpy string array of :func:`category_text` texts."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U" and arr.dtype.itemsize // 4 <= MAX_CATEGORY_CHARS:
        return arr
    return np.array([category_text(v) for v in arr.ravel().tolist()], dtype=str).reshape(arr.shape)


def level_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, IntArray, IntArray]:
    """Sorted levels seen on either side and their counts in ``reference`` and in ``current``."""
    levels, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
    inverse = inverse.reshape(-1)
    n_ref = reference.shape[0]
    return (
        levels,
        np.bincount(inverse[:n_ref], minlength=levels.size),
        np.bincount(inverse[n_ref:], minlength=levels.size),
    )


def _as_categories(col: np.ndarray) -> np.ndarray:
    out = np.empty(col.shape[0], dtype=object)
    for i, v in enumerate(col.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = MISSING
        else:
            out[i] = category_text(v)
    return out.astype(str)


def align_tables(
    reference: Any,
    current: Any,
    *,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    feature_names: Sequence[str] | None = None,
) -> tuple[Table, Table]:
    """Tables for ``reference`` and ``current`` with the same columns and kinds.

    ``features`` selects (and orders) columns; each must exist on both sides. Every name in
    ``categorical`` must be a column. A column numeric on one side and not on the other is an error
    (a text cell in a column of numbers), unless it is listed in ``categorical`` or has no value at
    all on its numeric side (then it is categorical on both). Numeric columns must be finite or
    missing (NaN) and hold at least one value on each side.
    """
    categorical = _name_list(categorical, "categorical")
    if features is not None:
        features = _name_list(features, "features")
        _names(features, "features")
    ref = as_table(reference, name="reference", feature_names=feature_names, categorical=categorical)
    cur = as_table(current, name="current", feature_names=feature_names, categorical=categorical)
    unknown = [str(c) for c in categorical if c not in ref.columns and c not in cur.columns]
    if unknown:
        raise InvalidInputError(f"categorical: no column {', '.join(map(repr, unknown))} (has {', '.join(ref.names)})")
    if features is not None:
        wanted = [str(f) for f in features]
        for side, tab in (("reference", ref), ("current", cur)):
            missing = [f for f in wanted if f not in tab.columns]
            if missing:
                raise InvalidInputError(
                    f"{side} has no column {', '.join(map(repr, missing))} (has {', '.join(tab.names)})"
                )
        names = wanted
    else:
        only_ref = [c for c in ref.names if c not in cur.columns]
        only_cur = [c for c in cur.names if c not in ref.columns]
        if only_ref or only_cur:
            raise InvalidInputError(
                "reference and current must have the same columns; "
                f"only in reference: {only_ref or 'none'}, only in current: {only_cur or 'none'}"
            )
        names = ref.names
    if not names:
        raise InvalidInputError("no features to compare")
    if ref.n_rows < 2 or cur.n_rows < 2:
        raise InvalidInputError(f"reference and current need at least 2 rows each, got {ref.n_rows} and {cur.n_rows}")
    cols_r: dict[str, np.ndarray] = {}
    cols_c: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for n in names:
        r, c = ref.columns[n], cur.columns[n]
        for side, col, kind in (("reference", r, ref.kinds[n]), ("current", c, cur.kinds[n])):
            if kind == "numeric":
                _check_numeric(col, side, n)
        if ref.kinds[n] == "numeric" and cur.kinds[n] == "numeric":
            if not (np.isfinite(r).any() and np.isfinite(c).any()):
                side = "reference" if not np.isfinite(r).any() else "current"
                raise InvalidInputError(f"{side} column {n!r} has no values (all missing)")
            kinds[n] = "numeric"
        else:
            for side, col, kind, other in (("reference", r, ref.kinds[n], c), ("current", c, cur.kinds[n], r)):
                if kind == "numeric" and np.isfinite(col).any():
                    row, value = _first_non_number(other)
                    raise InvalidInputError(
                        f"column {n!r} holds numbers in {side} but {value!r} (row {row}) in "
                        f"{'current' if side == 'reference' else 'reference'}; pass categorical=[{n!r}] "
                        "if the column is categorical"
                    )
            kinds[n] = "categorical"
            r = r if ref.kinds[n] == "categorical" else _numeric_as_categories(r)
            c = c if cur.kinds[n] == "categorical" else _numeric_as_categories(c)
        cols_r[n], cols_c[n] = r, c
    return Table(cols_r, dict(kinds)), Table(cols_c, dict(kinds))


def _check_numeric(col: np.ndarray, side: str, name: str) -> None:
    inf = np.flatnonzero(np.isinf(col))
    if inf.size:
        raise InvalidInputError(
            f"{side} column {name!r} row {inf[0]}: expected finite numbers (NaN for missing), got {col[inf[0]]}"
        )


def _first_non_number(col: np.ndarray) -> tuple[int, str]:
    """Row and value of the first category that is not a number (the first value if all are)."""
    for i, v in enumerate(col.tolist()):
        if v == MISSING:
            continue
        try:
            float(v)
        except ValueError:
            return i, v
    return 0, str(col[0]) if col.size else ""


def _numeric_as_categories(col: np.ndarray) -> np.ndarray:
    out = np.array(
        [MISSING if np.isnan(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))) for v in col]
    )
    return out.astype(str)


def design_matrix(
    ref: Table, cur: Table, *, max_levels: int = 20
) -> tuple[FloatArray, FloatArray, list[str], FloatArray, FloatArray]:
    """Numeric matrices for multivariate tests, standardised on the pooled data.

    Numeric columns are centred and scaled by the pooled mean and standard deviation (NaN becomes
    the pooled mean); categorical columns become one-hot blocks scaled by ``1 / sqrt(2)`` so that a
    change of category moves a row by distance 1, like one standard deviation of a number. At most
    ``max_levels`` most frequent levels per column are kept (the rest share one level).

    Returns ``(ref_matrix, cur_matrix, column_names, ref_numeric, cur_numeric)``; the last two hold
    only the standardised numeric columns (used by the moment statistics).
    """
    blocks_r: list[FloatArray] = []
    blocks_c: list[FloatArray] = []
    num_r: list[FloatArray] = []
    num_c: list[FloatArray] = []
    names: list[str] = []
    for n, kind in ref.kinds.items():
        r, c = ref.columns[n], cur.columns[n]
        if kind == "numeric":
            pooled = np.concatenate([r, c])
            scale, mu, sd = pooled_mean_std(pooled[np.isfinite(pooled)])
            mu, sd = float(mu), float(sd)
            if scale != 1.0:
                r, c = r / scale, c / scale
            zr = np.where(np.isfinite(r), (r - mu) / sd, 0.0)
            zc = np.where(np.isfinite(c), (c - mu) / sd, 0.0)
            blocks_r.append(zr[:, None])
            blocks_c.append(zc[:, None])
            num_r.append(zr[:, None])
            num_c.append(zc[:, None])
            names.append(n)
        else:
            levels, counts = np.unique(np.concatenate([r, c]), return_counts=True)
            keep = levels[np.argsort(-counts, kind="stable")[:max_levels]]
            scale = 1.0 / np.sqrt(2.0)
            blocks_r.append((r[:, None] == keep[None, :]).astype(np.float64) * scale)
            blocks_c.append((c[:, None] == keep[None, :]).astype(np.float64) * scale)
            names.extend(f"{n}={v}" for v in keep)
    empty_r = np.empty((ref.n_rows, 0))
    empty_c = np.empty((cur.n_rows, 0))
    return (
        np.hstack(blocks_r),
        np.hstack(blocks_c),
        names,
        np.hstack(num_r) if num_r else empty_r,
        np.hstack(num_c) if num_c else empty_c,
    )
