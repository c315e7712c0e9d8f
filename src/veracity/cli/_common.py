"""Helpers shared by the CLI command modules: options, consoles, input errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from veracity._text import first_bad_utf8
from veracity.errors import InvalidInputError

__all__ = ["DbOption", "console", "err_console", "fail", "first_bad_utf8_line"]

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="VERACITY_DB",
        help="Database URL (default sqlite:///./veracity.db; postgresql+psycopg://... for PostgreSQL).",
        show_default=False,
    ),
]


def fail(message: str) -> NoReturn:
    """Abort the command with exit code 2 and one clear line on stderr."""
    raise InvalidInputError(message)


def first_bad_utf8_line(path: Path) -> int | None:
    """The 1-based number of the first line of ``path`` that is not valid UTF-8 (None: all are)."""
    where = first_bad_utf8(path)
    return None if where is None else where[0]
