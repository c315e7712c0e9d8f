"""The ``veracity`` command line: a thin Typer shell over ``veracity.services`` and the engines.

Each module registers its own commands through ``register(app)``. Errors that Veracity raises on
purpose (:class:`veracity.errors.VeracityError`) end the command with one line on stderr and exit
code 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from veracity import __version__
from veracity.cli import aggregate, align, data, label_issues, ops, workspace
from veracity.cli._common import err_console
from veracity.errors import VeracityError

__all__ = ["app", "main"]



def _report(exc: VeracityError) -> None:
    err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)


class _VeracityGroup(TyperGroup):
    """The root command group: a VeracityError ends any command with one line and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VeracityError as exc:
            _report(exc)
            raise typer.Exit(2) from exc


app = typer.Typer(
    name="veracity",
    cls=_VeracityGroup,
    help="Veracity: unify, label, verify, align and decide on trustworthy data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"veracity {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Veracity command line."""


for _module in (workspace, aggregate, label_issues, data, align, ops):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``veracity`` script."""
    try:
        app(args=argv, prog_name="veracity")
    except VeracityError as exc:
        _report(exc)
        sys.exit(2)
