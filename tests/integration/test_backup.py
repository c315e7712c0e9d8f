"""``veracity backup``: a checked copy of the database as it is, or nothing at the named path."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from veracity.storage import Database
from veracity.storage.migrate import current_revision, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def old_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at schema revision 0003 (an older Veracity's)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0003")
        yield url
        return
    server = request.getfixturevalue("postgresql_server")
    name = f"backup_{os.getpid()}"
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {name}")
    url = server.url_for(name)
    upgrade(url, "0003")
    yield url
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _revision(url: str) -> str | None:
    db = Database(url, create=False)
    try:
        return current_revision(db.engine)
    finally:
        db.dispose()


def test_backup_copies_the_database_without_migrating_it(old_db_url: str, tmp_path: Path, cli_runner: Any) -> None:
    """A backup taken before an upgrade must hold the old schema; the source is not touched."""
    target = tmp_path / "before-upgrade.bak"
    result = cli_runner.run("backup", str(target), "--db", old_db_url)
    assert result.exit_code == 0, result.output
    assert _revision(old_db_url) == "0003"
    if old_db_url.startswith("sqlite"):
        assert _revision(f"sqlite:///{target}") == "0003"
    else:
        listing = subprocess.run(["pg_restore", "--list", str(target)], capture_output=True, text=True, check=True)
        assert "alembic_version" in listing.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if "bak" in p.name) == ["before-upgrade.bak"]


def test_a_failed_sqlite_backup_leaves_nothing_at_the_path(
    sqlite_url: str, tmp_path: Path, cli_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is written, then the backup fails (an I/O error): no file that looks like a backup remains."""
    from veracity.cli import ops

    source = Path(sqlite_url.removeprefix("sqlite:///"))

    class FailsAfterCopy:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def backup(self, target: sqlite3.Connection) -> None:
            self.conn.backup(target)
            raise sqlite3.OperationalError("disk I/O error")

        def close(self) -> None:
            self.conn.close()

    def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
        conn = sqlite3.connect(path, *args, **kwargs)
        return FailsAfterCopy(conn) if Path(path) == source else conn

    monkeypatch.setattr(ops, "sqlite3", SimpleNamespace(connect=connect, Error=sqlite3.Error))
    out = tmp_path / "backups"
    out.mkdir()
    target = out / "nightly.db"
    result = cli_runner.run("backup", str(target), "--db", sqlite_url)
    assert result.exit_code == 2
    assert "disk I/O error" in result.output and "nothing was written" in result.output
    assert list(out.iterdir()) == []


def test_pg_dump_gets_the_password_in_its_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The password must not be on pg_dump's command line, where any local user reads it (ps)."""
    from sqlalchemy.engine import make_url

    from veracity.cli import ops

    calls: list[tuple[list[str], dict[str, str] | None]] = []

    def run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append((args, kw.get("env")))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(ops.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(ops.subprocess, "run", run)
    url = make_url("postgresql+psycopg://veracity:s3cret-pw@db.example:5432/work")
    ops._backup_postgresql(SimpleNamespace(engine=SimpleNamespace(url=url)), tmp_path / "b.dump")  # type: ignore[arg-type]
    (dump_args, dump_env), _check = calls
    assert "s3cret-pw" not in " ".join(dump_args)
    assert "postgresql://veracity@db.example:5432/work" in dump_args
    assert dump_env is not None and dump_env["PGPASSWORD"] == "s3cret-pw"
