"""Engines and transactions for SQLite (WAL, foreign keys on) and PostgreSQL (psycopg 3).

``Database(url)`` owns one engine. ``db.transaction()`` is a unit of work: it commits on success
and rolls back on any exception, so a caller told that a write succeeded has it on disk (SQLite
runs with ``synchronous=FULL`` in WAL mode; PostgreSQL commits are durable by default). On SQLite a
writing transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the lock
instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from veracity.errors import StorageError

__all__ = ["Database", "WriteLockBusy", "normalise_url", "sqlite_path"]

BUSY_TIMEOUT_S = 60  # SQLite: how long a writer waits for the write lock before giving up
#: SQLite: write-ahead log pages (4 KiB) between checkpoints in a ``bulk`` transaction (1,000 otherwise).
BULK_CHECKPOINT_PAGES = 32_768
#: SQLite: a write-ahead log longer than this is cut back to it after a checkpoint (bytes).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs; check the URL parses."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        expected = "sqlite:///PATH or postgresql+psycopg://..."
        raise StorageError(f"invalid database URL {url!r}: expected {expected}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _check_sqlite_path(path: Path, *, create: bool) -> None:
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"database file {path} is not readable and writable by this user")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StorageError(f"database folder {path.parent} is read-only (SQLite needs it for its journal)")
        return
    if not create:
        raise StorageError(f"database file {path} does not exist: run `veracity init --db sqlite:///{path}` first")
    if not path.parent.is_dir():
        raise StorageError(f"cannot create database {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create database {path}: folder {path.parent} is read-only")


class Database:
    """One database: an engine and a session factory.

    Parameters
    ----------
    url : str
        ``sqlite:///path.db`` or ``postgresql+psycopg://user:pw@host:port/name``.
    create : bool
        For SQLite, whether a missing file may be created (``veracity init``); otherwise a missing
        file is a :class:`~veracity.errors.StorageError`.
    """

    def __init__(self, url: str, *, create: bool = True, echo: bool = False, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        path = sqlite_path(self.url)
        if path is not None:
            _check_sqlite_path(path, create=create)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._no_wait = threading.local()  # SQLite: see write_turn_if_free
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, self._no_wait)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writer = threading.RLock()  # SQLite: this process's writers take turns (see _writer_turn)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def _writer_turn(self, write: bool) -> Iterator[None]:
        """On SQLite, a writing transaction first waits for this process's previous writer.

        SQLite lets one writer in at a time; a second ``BEGIN IMMEDIATE`` polls the lock from its
        busy handler with sleeps growing to 100 ms, so with a few concurrent writers most of the
        wait is sleep after the lock was already free. Queueing the writers of this process on a
        lock of its own hands the turn over at once; the busy timeout still covers writers in
        other processes.
        """
        if not (write and self.is_sqlite):
            yield
            return
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_S):
            raise StorageError(f"database error: no write turn within {BUSY_TIMEOUT_S} s (database is locked)")
        try:
            yield
        finally:
            self._writer.release()

    @contextmanager
    def write_turn_if_free(self) -> Iterator[bool]:
        """SQLite: take this process's write turn only if it is free right now; yields whether it did.

        While it is held, a write transaction begun in this thread does not wait for another
        process's write lock either: its ``BEGIN IMMEDIATE`` raises :class:`WriteLockBusy` at once
        (before anything was written) instead of waiting up to :data:`BUSY_TIMEOUT_S`. For callers
        that must not block, such as the web server's event loop running a short labelling call
        (``veracity.web.deps.run_hot``), which falls back to a worker thread when this yields
        False or the call raises :class:`WriteLockBusy`. Yields False, taking nothing, on PostgreSQL.
        """
        if not self.is_sqlite or not self._writer.acquire(blocking=False):
            yield False
            return
        self._no_wait.active = True
        try:
            yield True
        finally:
            self._no_wait.active = False
            self._writer.release()

    @contextmanager
    def transaction(self, *, write: bool = True, bulk: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success and rolled back on error.

        ``bulk`` (SQLite; ignored on PostgreSQL) is for a writer that stores many rows whose
        references it checks itself inside the transaction (a file import): SQLite does not check
        foreign keys row by row, and the write-ahead log is copied back into the database every
        :data:`BULK_CHECKPOINT_PAGES` pages instead of every 1,000, since an index page rewritten
        by every chunk is otherwise copied back after every chunk. Commits stay as durable
        (``synchronous=FULL``: the log is synced at each commit). The next transaction on the
        connection restores both settings.
        """
        with self._writer_turn(write):
            session = self._sessions()
            try:
                if self.is_sqlite:
                    session.connection(execution_options={"veracity_immediate": write, "veracity_bulk": bulk})
                yield session
                session.commit()
            except OperationalError as exc:
                session.rollback()
                raise StorageError(f"database error: {exc.orig}") from exc
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def connect(self, *, write: bool = True) -> Iterator[Connection]:
        """A Core connection in one transaction, committed on success and rolled back on error.

        The same unit of work as :meth:`transaction` without the ORM session: for hot paths that
        run a few prepared statements (the labelling queue), where the session's bookkeeping would
        cost more than the SQL.
        """
        with self._writer_turn(write), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(veracity_immediate=write)
            try:
                with conn.begin():
                    yield conn
            except OperationalError as exc:
                raise StorageError(f"database error: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


class WriteLockBusy(Exception):
    """Another process holds the SQLite write lock and this thread asked not to wait for it
    (:meth:`Database.write_turn_if_free`); nothing was written."""


def _configure_sqlite(engine: Engine, no_wait: threading.local) -> None:
    """WAL, foreign keys, durable commits, and BEGIN IMMEDIATE for writers (SQLAlchemy recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        immediate = options.get("veracity_immediate", True)
        # straight to the driver: this runs for every transaction, and a statement through
        # SQLAlchemy's execution machinery costs more than the BEGIN itself
        raw = conn.connection.dbapi_connection
        bulk = bool(options.get("veracity_bulk", False))
        info = conn.connection.info  # lives as long as the pooled DBAPI connection
        if info.get("veracity_bulk", False) != bulk:  # PRAGMA foreign_keys is a no-op inside a transaction
            raw.execute(f"PRAGMA foreign_keys={'OFF' if bulk else 'ON'}")
            raw.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES if bulk else 1000}")
            info["veracity_bulk"] = bulk
        if immediate and getattr(no_wait, "active", False):
            raw.execute("PRAGMA busy_timeout=0")
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # "database is locked": another process writes
                raise WriteLockBusy(str(exc)) from exc
            finally:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            return
        raw.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
