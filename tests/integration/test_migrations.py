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
