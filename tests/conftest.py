"""Fixtures shared by every test folder.

``db_url`` gives each test a fresh, migrated database, once on SQLite and once on PostgreSQL:

- SQLite: Alembic runs once per session into a template file, which is copied per test.
- PostgreSQL: Alembic runs once per session into ``veracity_template_<pid>`` on the server named
  by ``--db-url`` or ``VERACITY_TEST_DATABASE_URL`` (``scripts/test`` starts a throwaway one), and
  each test gets ``CREATE DATABASE test_<pid>_<n> TEMPLATE veracity_template_<pid>``, dropped
  afterwards (names carry the process id, so parallel runs can share one server).
  Without a server the PostgreSQL case is skipped locally and fails under ``CI=true``.

Tests that use ``db_url`` are marked ``db`` automatically (``pytest -m db`` selects them).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

if TYPE_CHECKING:
    from veracity.storage import Database

# Named per test process, so that several runs can share one server without dropping each other's.
TEMPLATE_DB = f"veracity_template_{os.getpid()}"
# Environment variables that configure the test run itself, not Veracity.
TEST_RUN_VARS = {"VERACITY_TEST_DATABASE_URL", "VERACITY_CHROMIUM"}

_database_numbers = itertools.count(1)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally; under CI=true a missing service is a failure, never a skip."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def migrate(url: str) -> None:
    # Imported here, not at the top, so that unit tests never load SQLAlchemy models and Alembic.
    from veracity.storage.migrate import upgrade

    upgrade(url)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db-url",
        default=None,
        help="PostgreSQL server URL for the postgresql case of db_url "
        "(default: $VERACITY_TEST_DATABASE_URL), e.g. postgresql+psycopg://user@127.0.0.1:5432/postgres",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own VERACITY_* settings (VERACITY_DB, VERACITY_CONFIG, ...) out of tests."""
    for name in list(os.environ):
        if name.startswith("VERACITY_") and name not in TEST_RUN_VARS:
            monkeypatch.delenv(name)


# --- SQLite ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file ``tmp_path/veracity.db``."""
    path = tmp_path / "veracity.db"
    # The backup API copies a consistent image even if the template still had a WAL file.
    with closing(sqlite3.connect(sqlite_template)) as src, closing(sqlite3.connect(path)) as dst:
        src.backup(dst)
    return f"sqlite:///{path}"


# --- PostgreSQL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    admin: Engine  # connected to the maintenance database, in autocommit mode
    url: str
    template: str = TEMPLATE_DB  # the migrated database that test databases are copied from

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(sql)


@pytest.fixture(scope="session")
def postgresql_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The test PostgreSQL server with its template database migrated to head."""
    url = request.config.getoption("--db-url") or os.environ.get("VERACITY_TEST_DATABASE_URL")
    if not url:
        skip_or_fail(
            "PostgreSQL not configured: run scripts/test (it starts a throwaway cluster), "
            "or set VERACITY_TEST_DATABASE_URL or --db-url"
        )
    assert url is not None
    if not url.startswith("postgresql"):
        raise pytest.UsageError(f"--db-url must be a postgresql:// URL, got {url!r}")
    server = PostgresServer(create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool), url)
    server.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    migrate(server.url_for(TEMPLATE_DB))
    yield server
    server.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
    server.admin.dispose()


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database ``test_<pid>_<n>``, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    postgresql_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    postgresql_server.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield postgresql_server.url_for(name)
    # FORCE ends connections the test left open (an engine that was never disposed).
    postgresql_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- the fixtures tests use --------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh, migrated database; each test runs once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A :class:`Database` on ``db_url`` (both backends), disposed after the test."""
    from veracity.storage import Database

    database = Database(db_url)
    yield database
    database.dispose()


class VeracityCliRunner(CliRunner):
    """A CliRunner bound to ``veracity.cli.app``: ``cli_runner.run("users", "create", "ann")``."""

    def run(self, *args: str, **kwargs: Any) -> Result:
        from veracity.cli import app

        return self.invoke(app, list(args), **kwargs)


@pytest.fixture
def cli_runner() -> VeracityCliRunner:
    return VeracityCliRunner()
