"""Helpers for the bulk paths (file imports, REST imports, exports)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from veracity.errors import StorageError
from veracity.ingest.records import hash_keys

__all__ = [
    "IMPORT_ITEM_COLUMNS",
    "IMPORT_LABEL_COLUMNS",
    "ITEM_COLUMNS",
    "TASK_COLUMNS",
    "existing_hashes",
    "gc_paused",
    "insert_rows",
    "lock_dataset",
    "prefetched",
]

T = TypeVar("T")

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk operation runs (reference counting goes on).

    A chunk of 20,000 records is ~100,000 container objects that all stay alive until the chunk
    is stored, so the collector's generation scans find nothing to free yet cost about a third of
    an import's CPU. The records hold no reference cycles. Nested and concurrent uses (two
    imports in one server) share one pause; the collector is restored when the last one ends.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


# --------------------------------------------------------------------------- bulk inserts
#: Columns of :func:`insert_rows` for ``items`` and ``tasks`` (with ``created_at``,
#: every NOT NULL column is given, since the ORM's Python-side defaults do not run for these statements).
ITEM_COLUMNS = (
    "dataset_id", "external_id", "data", "content_hash", "hash_key", "source", "source_row", "batch_id",
    "sensitivity",
)
#: The same for a file import's rows, whose ``dataset_id`` and ``batch_id`` are ``fixed`` (see services._pipeline).
IMPORT_ITEM_COLUMNS = ("external_id", "data", "content_hash", "hash_key", "source", "source_row", "sensitivity")
IMPORT_LABEL_COLUMNS = ("item_id", "kind", "value", "annotator", "origin", "status")
TASK_COLUMNS = (
    "project_id", "item_id", "status", "is_gold", "gold_value", "flagged", "priority", "target", "n_assigned",
    "n_annotations",
)
_SQLITE_STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite


def insert_rows(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    created_at: dt.datetime,
    fixed: Mapping[str, int] | None = None,
    first_offset: int = 0,
) -> list[int]:
    """Insert ``rows`` (tuples in ``columns`` order) stamped ``created_at``; their new ids, in order.

    Runs in the session's transaction. JSON columns take JSON text. ``fixed`` gives integer
    columns that have the same value in every row (a dataset or batch id): on SQLite they are
    literals of the statement, not values bound for each row. ``first_offset`` (SQLite only) is
    added to the first column by the statement (``? + offset``), so that rows can name the rows
    inserted just before by their place. No ORM and no per-row bind processing:

    - SQLite: one ``executemany`` of a prepared INSERT (the timestamp is a literal of the
      statement, in SQLAlchemy's storage format). The writer holds the database lock (BEGIN
      IMMEDIATE), and SQLite gives each new row the largest rowid so far plus one, so the ids are
      the ``len(rows)`` integers after the previous maximum; this is checked after the insert.
    - PostgreSQL: the ids are drawn from the table's sequence in one query, then the rows go in
      with ``COPY ... FROM STDIN`` (psycopg's C writer).
    """
    if not rows:
        return []
    conn = session.connection()
    n = len(rows)
    fixed = dict(fixed or {})
    if any(type(v) is not int for v in fixed.values()):
        raise TypeError(f"fixed columns take integers, got {fixed!r}")
    names = ", ".join((*columns, *fixed, "created_at"))
    if conn.dialect.name == "sqlite":
        floor = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one()
        marks = ", ".join(["?"] * len(columns) + [str(v) for v in fixed.values()])
        if first_offset:
            marks = f"? + {int(first_offset)}" + marks[1:]
        stamp = created_at.strftime(_SQLITE_STAMP)  # digits, '-', ':', '.' and a space only
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks}, '{stamp}')", rows)
        count, top = conn.exec_driver_sql(f"SELECT count(*), max(id) FROM {table} WHERE id > ?", (floor,)).one()
        if (count, top) != (n, floor + n):
            raise StorageError(f"{table}: new rows did not get consecutive ids after {floor}; nothing was stored")
        return list(range(floor + 1, floor + n + 1))
    if first_offset:
        raise ValueError("first_offset is for SQLite, whose new ids are consecutive")
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table, n))
        ids = sorted(i for (i,) in cur.fetchall())
        tail = (*fixed.values(), created_at)
        with cur.copy(f"COPY {table} (id, {names}) FROM STDIN") as copy:
            for i, row in zip(ids, rows, strict=True):
                copy.write_row((i, *row, *tail))
    return ids


def existing_hashes(session: Session, dataset_id: int, hashes: Sequence[str]) -> dict[str, int]:
    """``{content_hash: first item id}`` for the hashes already stored in the dataset.

    Looked up by the indexed 64-bit ``hash_key`` with the keys sent as one parameter (a JSON array
    read by ``json_each`` on SQLite, an array for ``= ANY`` on PostgreSQL), not thousands of bound
    values; a key match counts only when the full hash matches.
    """
    wanted = set(hashes)
    if not wanted:
        return {}
    keys = sorted(set(hash_keys(list(wanted))))
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT content_hash, min(id) FROM items WHERE dataset_id = ? AND hash_key IN "
            "(SELECT value FROM json_each(?)) GROUP BY content_hash",
            (dataset_id, json.dumps(keys)),
        )
    else:
        rows = conn.exec_driver_sql(
            "SELECT content_hash, min(id) FROM items WHERE dataset_id = %s AND hash_key = ANY(%s) "
            "GROUP BY content_hash",
            (dataset_id, keys),
        )
    return {h: i for h, i in rows if h in wanted}


def lock_dataset(session: Session, dataset_id: int) -> None:
    """PostgreSQL: hold the dataset's row lock until the transaction ends, before its items are
    looked up for duplicates and inserted, so that concurrent imports into one dataset store one
    after the other and each sees the other's items (SQLite: writers are serialised already).

    ``FOR NO KEY UPDATE`` leaves rows that merely reference the dataset (new items, batches) free
    to be written by others."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT id FROM datasets WHERE id = %s FOR NO KEY UPDATE", (dataset_id,))


def prefetched(chunks: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce the next chunks in a background thread while the current one is written.

    Parsing and hashing hold the GIL; SQLite and psycopg release it while they write and commit,
    so reading and writing overlap on a second core. Errors of the reader surface here in order,
    after the chunks read before them.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(("chunk", chunk)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="veracity-ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()
