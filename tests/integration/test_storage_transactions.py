"""Units of work of ``veracity.storage.Database``: the Core ``connect`` and SQLite writer turns."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text, update

from veracity.storage import Database
from veracity.storage.models import User


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
