"""Helpers shared by the CLI command modules: options, consoles, input errors."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console

from veracity.errors import InvalidInputError

__all__ = ["DbOption", "console", "err_console", "fail"]

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
