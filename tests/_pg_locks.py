"""PostgreSQL interleavings for tests: ``from _pg_locks import behind_lock``.

A separate connection holds a row lock; the calls under test are started one after the other,
each once PostgreSQL reports it waiting on a lock (a polled condition, not a fixed sleep), and
then the lock is released, so they run in a known order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from veracity.storage import Database


def _lock_waiters(conn: Connection) -> int:
    """Sessions of this database waiting on a lock."""
    n = conn.execute(
        text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    ).scalar_one()
    conn.rollback()
    return int(n)


def behind_lock(db: Database, lock_sql: str, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads, each started once the previous one waits on the lock that
    ``lock_sql`` takes; release the lock; return each call's result or exception, in call order."""
    engine = create_engine(make_url(db.url), poolclass=NullPool)
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # checked by the caller
            results[i] = exc

    try:
        with engine.connect() as blocker, engine.connect() as probe:
            blocker.execute(text(lock_sql))
            threads = []
            for i in range(len(calls)):
                threads.append(threading.Thread(target=run, args=(i,)))
                threads[-1].start()
                deadline = time.monotonic() + 30
                while _lock_waiters(probe) < i + 1:  # a condition, polled; the timeout only stops a hang
                    assert time.monotonic() < deadline, f"call {i} never waited on the lock: {results}"
                    time.sleep(0.01)
            blocker.rollback()
            for t in threads:
                t.join()
    finally:
        engine.dispose()
    return results


def wait_for_waiters(db: Database, n: int, timeout: float = 30) -> None:
    """Return once ``n`` sessions of the database wait on a lock (fail after ``timeout`` s, a hang)."""
    engine = create_engine(make_url(db.url), poolclass=NullPool)
    try:
        with engine.connect() as probe:
            deadline = time.monotonic() + timeout
            while _lock_waiters(probe) < n:
                assert time.monotonic() < deadline, f"fewer than {n} sessions ever waited on a lock"
                time.sleep(0.01)
    finally:
        engine.dispose()
