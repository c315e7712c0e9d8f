"""Workspace commands: init, users, demo, serve failures, audit and backup (SQLite files)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from veracity.services.users import authenticate_token
from veracity.storage import Database

VERACITY = str(Path(sys.executable).with_name("veracity"))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A world-readable folder, so that a test may also run the CLI as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="veracity-cli-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_users_create_prints_a_working_token_on_the_last_line(cli_runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = cli_runner.run("users", "create", "alice", "--role", "manager", "--db", url)
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    db = Database(url)
    actor = authenticate_token(db, token)
    assert (actor.name, actor.role) == ("alice", "manager")
    db.dispose()
    again = cli_runner.run("users", "create", "alice", "--role", "manager", "--db", url)
    assert again.exit_code == 2 and "already exists" in again.output


def test_bad_role_is_a_clear_error(cli_runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli_runner.run("users", "create", "bob", "--role", "wizard", "--db", f"sqlite:///{tmp_path / 'w.db'}")
    assert result.exit_code == 2 and "role: expected one of" in result.output


def test_error_messages_keep_their_brackets(cli_runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Messages are printed as text, not Rich markup: a name like ``[admin]`` stays in them."""
    result = cli_runner.run("users", "create", "[admin]", "--role", "[root]", "--db", f"sqlite:///{tmp_path / 'w.db'}")
    assert result.exit_code == 2 and "got '[root]'" in result.output


def test_demo_is_idempotent_and_has_labels(cli_runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = cli_runner.run("demo", "--no-serve", "--db", url)
    assert first.exit_code == 0, first.output
    assert "Created sample workspace" in first.output
    with closing(sqlite3.connect(tmp_path / "demo.db")) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM annotations),"
                              " (SELECT count(*) FROM projects)").fetchone()
    second = cli_runner.run("demo", "--no-serve", "--db", url)
    assert second.exit_code == 0 and "Found existing" in second.output
    with closing(sqlite3.connect(tmp_path / "demo.db")) as conn:
        again = conn.execute("SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM annotations),"
                             " (SELECT count(*) FROM projects)").fetchone()
    assert counts == again
    assert counts[0] == 300 + 36 and counts[1] > 300 and counts[2] == 2
    assert len(list((tmp_path / "media" / "demo").glob("*.png"))) == 36


def _serve(url: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VERACITY, "serve", "--db", url, "--port", "0"], capture_output=True, text=True,
                          timeout=60, check=False, **kwargs)  # type: ignore[call-overload]


def test_serve_on_a_missing_folder_fails_with_one_line(workdir: Path) -> None:
    proc = _serve(f"sqlite:///{workdir / 'no' / 'such' / 'folder' / 'x.db'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_serve_on_a_read_only_database_fails_with_one_line(workdir: Path) -> None:
    """Root writes through file modes, so as root the database sits on a tmpfs remounted read-only."""
    folder = workdir / "ro"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                                 capture_output=True, check=False).returncode == 0
        assert mounted, "root could not mount a tmpfs to make a read-only database folder"
    url = f"sqlite:///{folder / 'ro.db'}"
    try:
        subprocess.run([VERACITY, "init", "--db", url], check=True, capture_output=True)
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        else:
            (folder / "ro.db").chmod(0o444)
            folder.chmod(0o555)
        proc = _serve(url)
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and ("not readable and writable" in lines[0] or "read-only" in lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr


def test_audit_verify_and_backup(cli_runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert cli_runner.run("users", "create", "root", "--role", "admin", "--db", url).exit_code == 0
    result = cli_runner.run("audit", "verify", "--db", url)
    assert result.exit_code == 0 and "intact: 1 events" in result.output
    with closing(sqlite3.connect(tmp_path / "w.db")) as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory'")
        conn.commit()
    result = cli_runner.run("audit", "verify", "--db", url)
    assert result.exit_code == 1 and "does not match" in result.output
    backup = tmp_path / "backup.db"
    assert cli_runner.run("backup", str(backup), "--db", url).exit_code == 0
    with closing(sqlite3.connect(backup)) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("root",)]
    again = cli_runner.run("backup", str(backup), "--db", url)
    assert again.exit_code == 2 and "already exists" in again.output
