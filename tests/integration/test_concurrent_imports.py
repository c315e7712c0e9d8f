"""Imports into one dataset at the same time store each content once (duplicates are counted)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from _accounts import new_user
from _pg_locks import behind_lock
from veracity.services import ingest
from veracity.services import projects as project_service
from veracity.storage import Database
from veracity.storage.models import Item


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def _counts(db: Database) -> tuple[int, int]:
    with db.transaction(write=False) as s:
        n = s.execute(select(func.count()).select_from(Item)).scalar_one()
        distinct = s.execute(select(func.count(func.distinct(Item.content_hash)))).scalar_one()
    return int(n), int(distinct)


def test_an_import_started_into_an_empty_dataset_sees_a_later_import(db: Database, tmp_path: Path) -> None:
    """A imports into an empty dataset (its duplicate filter holds only its own items); B starts
    after A and stores some of A's later rows between two of A's chunks: A counts them as duplicates."""
    a = _write(tmp_path / "a.jsonl", [f"t{i}" for i in range(10)])
    b = _write(tmp_path / "b.jsonl", [f"t{i}" for i in range(5, 10)])
    seen: list[ingest.ImportReport] = []

    def between_chunks(done: int, total: int | None) -> None:
        if not seen:  # after A's first chunk (rows t0..t4) was committed
            seen.append(ingest.import_source(db, b, dataset="D"))

    report = ingest.import_source(db, a, dataset="D", chunk_size=5, progress=between_chunks)
    assert seen[0].imported == 5
    assert (report.imported, report.duplicates) == (5, 5)
    assert _counts(db) == (10, 10)


def test_the_same_items_posted_twice_at_once_are_stored_once(postgresql_url: str) -> None:
    """PostgreSQL: two REST imports of the same records both look for duplicates before either
    commits; the dataset lock makes the second wait and see the first's items."""
    db = Database(postgresql_url)
    try:
        admin = new_user(db, "admin", "admin")
        p = project_service.create_project(db, admin, name="P", schema={"kind": "classification", "labels": ["a"]})
        records = [{"text": f"t{i}"} for i in range(20)]
        got = behind_lock(db, "SELECT * FROM datasets FOR UPDATE",
                          [lambda: project_service.import_items(db, admin, p.id, records),
                           lambda: project_service.import_items(db, admin, p.id, records)])
        assert not any(isinstance(g, Exception) for g in got), got
        assert sorted((g.imported, g.duplicates) for g in got) == [(0, 20), (20, 0)]
        assert _counts(db) == (20, 20)
    finally:
        db.dispose()
