"""Alembic migrations: they build exactly the schema of the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from veracity.storage import Database
from veracity.storage.migrate import alembic_config, current_revision, head_revision
from veracity.storage.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert current_revision(db.engine) == head_revision()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        db.dispose()


def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    db = Database(db_url)
    try:
        with db.engine.begin() as conn:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert {"items", "tasks", "audit_events"} <= set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_0004_fills_hash_key_of_existing_items(db_url: str) -> None:
    """Items stored before 0004 get their 64-bit hash key, so later imports still find their duplicates."""
    from sqlalchemy import text

    from veracity.ingest.records import content_hash, hash_key

    db = Database(db_url)
    try:
        cfg = alembic_config(db.url)
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        hashes = [content_hash({"text": f"t{i}"}) for i in range(3)]
        as_json = "CAST(:data AS JSONB)" if db.dialect == "postgresql" else ":data"
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO datasets (name, description, created_at) VALUES ('old', '', CURRENT_TIMESTAMP)")
            )
            ds = conn.execute(text("SELECT id FROM datasets WHERE name = 'old'")).scalar_one()
            for i, h in enumerate(hashes):
                conn.execute(
                    text(
                        "INSERT INTO items (dataset_id, data, content_hash, sensitivity, created_at) "
                        f"VALUES (:ds, {as_json}, :h, 0, CURRENT_TIMESTAMP)"
                    ),
                    {"ds": ds, "data": f'{{"text":"t{i}"}}', "h": h},
                )
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            got = dict(conn.execute(text("SELECT content_hash, hash_key FROM items")).all())
        assert got == {h: hash_key(h) for h in hashes}
    finally:
        db.dispose()
