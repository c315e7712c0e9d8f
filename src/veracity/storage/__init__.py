"""Storage: SQLAlchemy 2 models, sessions and Alembic migrations (SQLite or PostgreSQL)."""

from veracity.storage.session import Database

__all__ = ["Database"]
