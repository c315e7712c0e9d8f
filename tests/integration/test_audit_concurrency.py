"""The audit log's first events, appended by two transactions at once on PostgreSQL."""

from __future__ import annotations

import threading

from _pg_locks import wait_for_waiters
from veracity.services.audit import append_event, verify_chain
from veracity.storage import Database


def test_two_first_events_at_once_both_commit_in_one_chain(postgresql_url: str) -> None:
    """Neither transaction found a head row; the second waits for the first's and chains after it
    (it used to fail on the head's primary key, losing the write it audited)."""
    db = Database(postgresql_url)
    appended, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with db.transaction() as s:
            append_event(s, actor="a", action="test.first", object_type="test")
            appended.set()
            release.wait()

    def second() -> None:
        try:
            with db.transaction() as s:
                append_event(s, actor="b", action="test.second", object_type="test")
        except BaseException as exc:  # checked below
            errors.append(exc)

    try:
        t1 = threading.Thread(target=first)
        t1.start()
        appended.wait()
        t2 = threading.Thread(target=second)
        t2.start()
        wait_for_waiters(db, 1)  # the second appender waits on the first's uncommitted head row
        release.set()
        t1.join()
        t2.join()
        assert errors == []
        report = verify_chain(db)
        assert report.ok and report.n_events == 2
    finally:
        release.set()
        db.dispose()
