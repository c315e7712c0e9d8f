"""Units of work of ``veracity.storage.Database``: the Core ``connect`` and SQLite writer turns."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, text, update

from veracity.storage import Database, WriteLockBusy
from veracity.storage.models import User
from veracity.web.deps import run_hot


def test_connect_commits_on_success_and_rolls_back_on_error(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.connect() as c:
            c.execute(text("INSERT INTO users (name, role, clearance, is_active, created_at) "
                           "VALUES ('kept', 'viewer', 0, TRUE, CURRENT_TIMESTAMP)"))
        with pytest.raises(RuntimeError), db.connect() as c:
            c.execute(text("INSERT INTO users (name, role, clearance, is_active, created_at) "
                           "VALUES ('dropped', 'viewer', 0, TRUE, CURRENT_TIMESTAMP)"))
            raise RuntimeError("boom")
        with db.connect(write=False) as c:
            names = set(c.execute(select(User.name)).scalars())
        assert "kept" in names and "dropped" not in names
    finally:
        db.dispose()


def test_concurrent_writers_of_one_process_all_commit(db_url: str) -> None:
    """Eight threads incrementing one counter in write transactions (read, then write): no update is
    lost or refused ("database is locked")."""
    db = Database(db_url)
    try:
        with db.connect() as c:
            c.execute(text("INSERT INTO users (name, role, clearance, is_active, created_at) "
                           "VALUES ('counter', 'viewer', 0, TRUE, CURRENT_TIMESTAMP)"))
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work(use_session: bool) -> None:
            barrier.wait()
            try:
                for _ in range(15):
                    if use_session:
                        with db.transaction() as s:
                            n = s.execute(select(User.clearance).where(User.name == "counter")
                                          .with_for_update()).scalar_one()
                            s.execute(update(User).where(User.name == "counter").values(clearance=n + 1))
                    else:
                        with db.connect() as c:
                            n = c.execute(select(User.clearance).where(User.name == "counter")
                                          .with_for_update()).scalar_one()
                            c.execute(update(User).where(User.name == "counter").values(clearance=n + 1))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with db.connect(write=False) as c:
            assert c.execute(select(User.clearance).where(User.name == "counter")).scalar_one() == 8 * 15
    finally:
        db.dispose()


def test_sqlite_writers_of_one_process_take_turns(sqlite_url: str) -> None:
    """While a write transaction is open, another thread cannot take the write turn; a read can run."""
    db = Database(sqlite_url)
    try:
        other: list[bool] = []

        def try_turn() -> None:
            got = db._writer.acquire(blocking=False)
            if got:
                db._writer.release()
            other.append(got)

        with db.connect():
            t = threading.Thread(target=try_turn)
            t.start()
            t.join()
            with db.connect(write=False) as reader:  # readers never wait for the turn
                assert reader.execute(text("SELECT 1")).scalar_one() == 1
        with db.transaction(write=False):
            t = threading.Thread(target=try_turn)
            t.start()
            t.join()
        assert other == [False, True]
    finally:
        db.dispose()


def _insert_user(c: Any, name: str) -> None:
    c.execute(text("INSERT INTO users (name, role, clearance, is_active, created_at) "
                   f"VALUES ('{name}', 'viewer', 0, TRUE, CURRENT_TIMESTAMP)"))


def test_write_turn_if_free_never_waits_and_run_hot_falls_back(sqlite_url: str) -> None:
    """Another process holding SQLite's write lock: a no-wait write fails at once, before writing;
    ``run_hot`` then runs the same call in a worker thread, which waits its turn and commits."""
    db = Database(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # stands for another process
    try:
        other.execute("BEGIN IMMEDIATE")
        with db.write_turn_if_free() as mine:
            assert mine
            t0 = time.perf_counter()
            with pytest.raises(WriteLockBusy), db.connect() as c:
                _insert_user(c, "never")
            assert time.perf_counter() - t0 < 5  # did not wait out the busy timeout
        threading.Timer(0.3, other.execute, args=("COMMIT",)).start()
        assert asyncio.run(run_hot(db, lambda: _write(db, "later"))) == "later"
        with db.connect(write=False) as c:
            names = set(c.execute(select(User.name)).scalars())
        assert "later" in names and "never" not in names
        # with the turn free and no other writer, the call runs inline and commits
        assert asyncio.run(run_hot(db, lambda: _write(db, "inline"))) == "inline"
        with db.write_turn_if_free() as mine, db.connect() as c:  # the no-wait turn still writes normally
            assert mine
            _insert_user(c, "free")
    finally:
        other.close()
        db.dispose()


def _write(db: Database, name: str) -> str:
    with db.connect() as c:
        _insert_user(c, name)
    return name


def test_write_turn_if_free_is_off_on_postgresql(postgresql_url: str) -> None:
    db = Database(postgresql_url)
    try:
        with db.write_turn_if_free() as mine:
            assert not mine
        assert asyncio.run(run_hot(db, lambda: _write(db, "pg"))) == "pg"
    finally:
        db.dispose()
