"""Storage: SQLAlchemy 2 models, sessions and Alembic migrations (SQLite or PostgreSQL)."""

from veracity.storage.session import Database, WriteLockBusy

__all__ = ["Database", "WriteLockBusy"]
