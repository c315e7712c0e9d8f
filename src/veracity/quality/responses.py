"""Crowd answers as integer-coded long arrays plus the id maps that decode them.

Every aggregator and agreement metric in :mod:`veracity.quality` works on a :class:`Responses`
value: three aligned ``int64`` arrays ``task_idx``, ``worker_idx`` and ``label`` of shape
``(n_responses,)`` with codes into ``task_ids``, ``worker_ids`` and ``classes``. Strings, integers
or any other hashable values are coded once, at the edge, and every later step is array work.

Class order
    ``classes`` is sorted (numbers numerically, strings lexicographically) unless ``classes=`` is
    given, whose order (any order, no duplicates) is then kept. Aggregators break ties in favour
    of the lowest class code, so by default the tie-break is "the smallest label value".
Duplicates
    A worker who answered the same task more than once contributes every answer as its own vote
    (the rule crowd-kit and most published benchmarks use). Call :meth:`Responses.deduplicate`
    first to keep only each worker's last answer on a task instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from veracity.errors import InvalidInputError
from veracity.types import IntArray

__all__ = ["Responses", "check_classes", "encode", "sort_codes"]


def encode(values: Any, *, field: str = "value") -> tuple[IntArray, np.ndarray]:
    """Code ``values`` as integers into their sorted unique values.

    Parameters
    ----------
    values : array-like, shape (n,)
        Hashable values; ``None`` and NaN are rejected.
    field : str
        Name used in error messages.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
    uniques : ndarray, shape (n_unique,)
        Sorted unique values, so that ``uniques[codes]`` gives ``values`` back.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        if arr.ndim == 0 and (isinstance(values, (str, bytes)) or not isinstance(values, Iterable)):
            raise InvalidInputError(
                f"{field} must be a one-dimensional array-like of values, got {type(values).__name__} {values!r:.40}"
            )
        arr = np.asarray(list(values), dtype=object)
        if arr.ndim != 1:
            raise InvalidInputError(f"{field} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object and arr.size and all(type(v) is str for v in arr):
        arr = arr.astype(str)  # fixed-width unicode: np.unique sorts it in C, not via Python compares
    if arr.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in arr), dtype=bool, count=arr.size)
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise InvalidInputError(f"{field} is missing at row {row}")
        try:
            uniques, codes = np.unique(arr, return_inverse=True)
        except TypeError:  # mixed, unorderable types: order by their string form
            as_str = np.array([f"{type(v).__name__}:{v}" for v in arr], dtype=object)
            _, first, codes = np.unique(as_str, return_index=True, return_inverse=True)
            uniques = arr[first]
    else:
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            row = int(np.flatnonzero(np.isnan(arr))[0])
            raise InvalidInputError(f"{field} is missing (NaN) at row {row}")
        uniques, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64, copy=False).reshape(-1), uniques


def sort_codes(codes: Any, uniques: Any, *, field: str = "value") -> tuple[IntArray, np.ndarray]:
    """Re-code ``codes`` into unsorted ``uniques`` (a factorisation) so that the uniques are sorted.

    Cheap: only the (few) uniques are sorted, then the codes are remapped by one take. A code
    ``-1``, or a unique that is ``None`` or NaN, is a missing value and an error.
    """
    u = np.asarray(uniques)
    if u.dtype == object and u.size and all(type(v) is str for v in u):
        u = u.astype(str)
    c = np.asarray(codes).astype(np.int64, copy=False)
    if c.size and c.min() < 0:
        row = int(np.flatnonzero(c < 0)[0])
        raise InvalidInputError(f"{field} is missing at row {row}")
    # Arrow's dictionary_encode keeps NaN (and None in object arrays) as a value: it is missing
    missing = np.isnan(u) if u.dtype.kind == "f" else None
    if u.dtype == object:
        missing = np.fromiter((_is_missing(v) for v in u), dtype=bool, count=u.size)
    if missing is not None and missing.any():
        row = int(np.flatnonzero(np.isin(c, np.flatnonzero(missing)))[0])
        raise InvalidInputError(f"{field} is missing (NaN) at row {row}")
    try:
        order = np.argsort(u, kind="stable")
    except TypeError:
        order = np.argsort(np.array([f"{type(v).__name__}:{v}" for v in u.tolist()]), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return (rank[c] if c.size else c), u[order]


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


@dataclass(frozen=True, eq=False)
class Responses:
    """Integer-coded crowd answers.

    Attributes
    ----------
    task_idx, worker_idx, label : ndarray of int64, shape (n_responses,)
        Codes into ``task_ids``, ``worker_ids`` and ``classes``.
    task_ids : ndarray, shape (n_tasks,)
    worker_ids : ndarray, shape (n_workers,)
    classes : ndarray, shape (n_classes,)
        Label values in code order (sorted). May include values nobody answered (for example
        gold-only labels or the full label schema).

    Examples
    --------
    >>> r = Responses.from_arrays(task=["a", "a", "b"], worker=[1, 2, 1], label=["x", "y", "x"])
    >>> r.n_tasks, r.n_workers, r.n_classes, r.label.tolist()
    (2, 2, 2, [0, 1, 0])
    """

    task_idx: IntArray
    worker_idx: IntArray
    label: IntArray
    task_ids: np.ndarray
    worker_ids: np.ndarray
    classes: np.ndarray

    @property
    def n_responses(self) -> int:
        return int(self.task_idx.shape[0])

    @property
    def n_tasks(self) -> int:
        return int(self.task_ids.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.worker_ids.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.classes.shape[0])

    def __len__(self) -> int:
        return self.n_responses

    def __repr__(self) -> str:
        return (
            f"Responses(n_responses={self.n_responses}, n_tasks={self.n_tasks}, "
            f"n_workers={self.n_workers}, n_classes={self.n_classes})"
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        task: Any,
        worker: Any,
        label: Any,
        *,
        classes: Sequence[Any] | np.ndarray | None = None,
    ) -> Responses:
        """Code raw ``task``, ``worker`` and ``label`` values (each shape ``(n_responses,)``).

        ``classes`` fixes the label set (and so the class order); answers outside it are an error.
        """
        t, task_ids = encode(task, field="task")
        w, worker_ids = encode(worker, field="worker")
        lab, label_values = encode(label, field="label")
        return cls._coded(t, w, lab, task_ids, worker_ids, label_values, classes)

    @classmethod
    def _coded(
        cls,
        t: IntArray,
        w: IntArray,
        lab: IntArray,
        task_ids: np.ndarray,
        worker_ids: np.ndarray,
        label_values: np.ndarray,
        classes: Sequence[Any] | np.ndarray | None,
    ) -> Responses:
        """Check the lengths, re-code the labels to ``classes`` when given, and build."""
        if not (t.shape[0] == w.shape[0] == lab.shape[0]):
            raise InvalidInputError(
                f"task, worker and label must be the same length, got {t.shape[0]}, {w.shape[0]} and {lab.shape[0]}"
            )
        if classes is not None:
            cls_arr = check_classes(classes)
            lab = _recode(lab, label_values, cls_arr, field="label")
            label_values = cls_arr
        return cls(t, w, lab, task_ids, worker_ids, label_values)

    @classmethod
    def from_factorized(
        cls,
        task: tuple[Any, Any],
        worker: tuple[Any, Any],
        label: tuple[Any, Any],
        *,
        classes: Sequence[Any] | np.ndarray | None = None,
    ) -> Responses:
        """Build from ``(codes, uniques)`` factorisations (as from pandas ``factorize`` or Arrow
        ``dictionary_encode``); the uniques need not be sorted. Codes ``-1`` mean missing."""
        t, task_ids = sort_codes(*task, field="task")
        w, worker_ids = sort_codes(*worker, field="worker")
        lab, label_values = sort_codes(*label, field="label")
        return cls._coded(t, w, lab, task_ids, worker_ids, label_values, classes)

    @classmethod
    def from_codes(
        cls,
        task_idx: Any,
        worker_idx: Any,
        label: Any,
        *,
        task_ids: Any = None,
        worker_ids: Any = None,
        classes: Any = None,
        n_tasks: int | None = None,
        n_workers: int | None = None,
        n_classes: int | None = None,
    ) -> Responses:
        """Wrap arrays that are already integer codes (no re-coding, only checks).

        Ids default to ``arange(n)``; ``n_*`` default to ``max(code) + 1`` (or the id map's length).
        """
        arrays = []
        for name, a in (("task_idx", task_idx), ("worker_idx", worker_idx), ("label", label)):
            arr = np.asarray(a)
            if arr.ndim != 1:
                raise InvalidInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
            if arr.size and arr.dtype.kind not in "iu":
                raise InvalidInputError(f"{name} must hold integer codes, got dtype {arr.dtype}")
            arrays.append(arr.astype(np.int64, copy=False))
        t, w, lab = arrays
        if not (t.shape[0] == w.shape[0] == lab.shape[0]):
            raise InvalidInputError(
                "task_idx, worker_idx and label must be the same length, "
                f"got {t.shape[0]}, {w.shape[0]} and {lab.shape[0]}"
            )
        maps = []
        for name, codes, ids, n in (
            ("task_idx", t, task_ids, n_tasks),
            ("worker_idx", w, worker_ids, n_workers),
            ("label", lab, classes, n_classes),
        ):
            size = (
                n if n is not None else (len(ids) if ids is not None else (int(codes.max()) + 1 if codes.size else 0))
            )
            if codes.size and (codes.min() < 0 or codes.max() >= size):
                raise InvalidInputError(
                    f"{name} codes must lie in [0, {size}), got values from {int(codes.min())} to {int(codes.max())}"
                )
            id_arr = np.arange(size) if ids is None else np.asarray(ids)
            if id_arr.shape[0] != size:
                raise InvalidInputError(f"{name} id map has {id_arr.shape[0]} entries, expected {size}")
            maps.append(id_arr)
        return cls(t, w, lab, maps[0], maps[1], maps[2])

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        task: str = "task",
        worker: str = "worker",
        label: str = "label",
        classes: Sequence[Any] | None = None,
    ) -> Responses:
        """Code an iterable of mappings with ``task``, ``worker`` and ``label`` keys."""
        tasks: list[Any] = []
        workers: list[Any] = []
        labels: list[Any] = []
        for i, rec in enumerate(records):
            try:
                tasks.append(rec[task])
                workers.append(rec[worker])
                labels.append(rec[label])
            except KeyError as exc:
                raise InvalidInputError(f"record {i} has no field {exc.args[0]!r}") from None
            except TypeError:
                raise InvalidInputError(f"record {i} is not a mapping, got {type(rec).__name__}") from None
        return cls.from_arrays(
            np.array(tasks, dtype=object),
            np.array(workers, dtype=object),
            np.array(labels, dtype=object),
            classes=classes,
        )

    # ------------------------------------------------------------------ transforms
    def with_classes(self, classes: Sequence[Any] | np.ndarray) -> Responses:
        """The same answers with the label set widened (or reordered) to ``classes``.

        ``classes`` may be in any order; it becomes the code (and output column) order.
        """
        cls_arr = check_classes(classes)
        lab = _recode(self.label, self.classes, cls_arr, field="label")
        return Responses(self.task_idx, self.worker_idx, lab, self.task_ids, self.worker_ids, cls_arr)

    def deduplicate(self, keep: Literal["first", "last"] = "last") -> Responses:
        """Keep one answer per (task, worker) pair: the ``first`` or ``last`` in row order."""
        key = self.task_idx * max(self.n_workers, 1) + self.worker_idx
        order = np.arange(self.n_responses)
        if keep == "last":
            _, first_rev = np.unique(key[::-1], return_index=True)
            idx = np.sort(self.n_responses - 1 - first_rev)
        elif keep == "first":
            _, idx = np.unique(key, return_index=True)
            idx = np.sort(idx)
        else:
            raise InvalidInputError(f"keep must be 'first' or 'last', got {keep!r}")
        del order
        return Responses(
            self.task_idx[idx], self.worker_idx[idx], self.label[idx], self.task_ids, self.worker_ids, self.classes
        )

    def vote_counts(self) -> np.ndarray:
        """Answers per task and class, shape ``(n_tasks, n_classes)`` (float64)."""
        k = self.n_classes
        counts = np.bincount(self.task_idx * k + self.label, minlength=self.n_tasks * k)
        return counts.reshape(self.n_tasks, k).astype(np.float64)

    def task_codes(self, values: Any, *, field: str = "task") -> IntArray:
        """Codes of task ids ``values``; ``-1`` where a value is not a known task."""
        return _lookup(self.task_ids, values, field=field)

    def class_codes(self, values: Any, *, field: str = "label") -> IntArray:
        """Codes of label values; raises :class:`InvalidInputError` for unknown values."""
        codes = _lookup(self.classes, values, field=field)
        if codes.size and codes.min() < 0:
            bad = np.asarray(values, dtype=object)[codes < 0][0]
            bad = bad.item() if isinstance(bad, np.generic) else bad
            raise InvalidInputError(f"{field} value {bad!r} is not one of the classes {self.classes.tolist()}")
        return codes


def _lookup(uniques: np.ndarray, values: Any, *, field: str) -> IntArray:
    """Position of each of ``values`` in ``uniques`` (``-1`` when absent), type-tolerant."""
    vals = np.asarray(values)
    if vals.ndim != 1:
        vals = np.asarray(list(values), dtype=object)
    if vals.size == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        if uniques.dtype != object and vals.dtype != object and uniques.dtype.kind == vals.dtype.kind:
            if not uniques.shape[0]:
                return np.full(vals.shape[0], -1, dtype=np.int64)
            # ``uniques`` is sorted unless the caller chose the class order (``classes=``)
            order = None if bool(np.all(uniques[:-1] < uniques[1:])) else np.argsort(uniques, kind="stable")
            pos = np.searchsorted(uniques, vals, sorter=order)
            pos = np.clip(pos, 0, uniques.shape[0] - 1)
            if order is not None:
                pos = order[pos]
            ok = uniques[pos] == vals
            return np.where(ok, pos, -1).astype(np.int64)
    except TypeError:  # pragma: no cover - defensive: fall back to the dict path
        pass
    index: dict[Any, int] = {}
    for i, u in enumerate(uniques.tolist()):
        index.setdefault(u, i)
        index.setdefault(str(u), i)
    out = np.empty(vals.shape[0], dtype=np.int64)
    for i, v in enumerate(vals.tolist()):
        out[i] = index.get(v, index.get(str(v), -1))
    return out


def check_classes(classes: Any) -> np.ndarray:
    """``classes`` as a 1-D array of distinct label values, in the given order."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Iterable, np.ndarray)):
        raise InvalidInputError(f"classes must be a sequence of label values, got {type(classes).__name__}")
    arr = np.asarray(classes)
    if arr.ndim != 1:
        arr = np.asarray(list(classes), dtype=object)
        if arr.ndim != 1:
            raise InvalidInputError(f"classes must be one-dimensional, got shape {arr.shape}")
    try:
        uniq, counts = np.unique(arr, return_counts=True)
        dups = uniq[counts > 1].tolist()
    except TypeError:  # mixed, unorderable types
        seen: dict[Any, int] = {}
        for v in arr.tolist():
            seen[v] = seen.get(v, 0) + 1
        dups = [v for v, n in seen.items() if n > 1]
    if dups:
        raise InvalidInputError(f"classes must be distinct, got duplicates {', '.join(map(repr, dups))}")
    return arr


def _recode(codes: IntArray, old: np.ndarray, new: np.ndarray, *, field: str) -> IntArray:
    mapping = _lookup(new, old, field=field)
    if mapping.size and mapping.min() < 0:
        bad = old[mapping < 0][0]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise InvalidInputError(f"{field} value {bad!r} is not one of the classes {new.tolist()}")
    return mapping[codes] if codes.size else codes
