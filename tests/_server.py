"""Start ``veracity serve`` as a subprocess on a free loopback port, for tests that need a real server.

``start_server(db_url, workdir, env={...})`` returns a :class:`LiveServer` once ``/healthz`` answers
200; ``server.stop()`` ends it. The server gets a clean environment: the caller's ``VERACITY_*``
variables are dropped (only those passed in ``env`` count) and ``VERACITY_DATA_DIR`` is ``workdir``.
Importable from any test folder as ``from _server import start_server`` (``tests/`` is on the path
because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "LOCAL_HOST",
    "LiveServer",
    "ServerStartError",
    "free_port",
    "scoped_database",
    "start_server",
    "veracity_executable",
]

LOCAL_HOST = "127.0.0.1"
START_TIMEOUT = 60.0


class ServerStartError(RuntimeError):
    """``veracity serve`` exited or did not answer ``/healthz`` in time; the message holds its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def veracity_executable() -> str:
    """The ``veracity`` script of the environment running the tests (next to ``sys.executable``)."""
    beside = Path(sys.executable).with_name("veracity")
    if beside.is_file():
        return str(beside)
    found = shutil.which("veracity")
    if found is None:
        raise ServerStartError("the `veracity` script is not installed: run scripts/test (pip install -e '.[test]')")
    return found


@dataclass
class LiveServer:
    base_url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until_healthy(server: LiveServer, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise ServerStartError(f"`veracity serve` exited with {code}:\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    server.stop()
    raise ServerStartError(f"`veracity serve` did not answer /healthz in {timeout:.0f}s:\n{server.log.read_text()}")


def start_server(db_url: str, workdir: Path, *, env: Mapping[str, str] | None = None) -> LiveServer:
    """Start ``veracity serve --db DB_URL`` in ``workdir`` and wait until it is healthy."""
    port = free_port()
    base_url = f"http://{LOCAL_HOST}:{port}"
    log = workdir / f"server-{port}.log"
    command = [veracity_executable(), "serve", "--db", db_url, "--host", LOCAL_HOST, "--port", str(port)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERACITY_")}
    full_env = {**clean, "VERACITY_DATA_DIR": str(workdir), "VERACITY_LOG_LEVEL": "warning", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(base_url, db_url, process, log)
    try:
        wait_until_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


_module_databases = itertools.count(1)


@contextlib.contextmanager
def scoped_database(request: pytest.FixtureRequest, backend: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated database outliving one test (for a module-scoped server), on ``backend``.

    Built from the same session templates as ``db_url`` (``sqlite_template``, ``postgresql_server``
    in ``tests/conftest.py``), so the PostgreSQL case skips or fails exactly as ``db_url`` does.
    """
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = folder / "veracity.db"
        with contextlib.closing(sqlite3.connect(template)) as src, contextlib.closing(sqlite3.connect(path)) as dst:
            src.backup(dst)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("postgresql_server")
    name = f"scoped_{os.getpid()}_{next(_module_databases)}"
    server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    server.execute(f"CREATE DATABASE {name} TEMPLATE {server.template}")
    try:
        yield server.url_for(name)
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
