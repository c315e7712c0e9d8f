"""The ``veracity`` command line: a thin Typer shell over ``veracity.services`` and the engines.

Each module registers its own commands through ``register(app)``. The root group imports a module
only when one of its commands runs (or help lists it), so ``veracity label-issues`` does not pay
for SQLAlchemy and the services, nor ``veracity serve`` for scipy.optimize. ``COMMANDS`` maps each
top-level command to its module; ``tests/unit/test_cli_lazy.py`` checks it against ``register``.

Errors that Veracity raises on purpose (:class:`veracity.errors.VeracityError`) end the command
with one line on stderr and exit code 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

import veracity
from veracity.cli._common import err_console
from veracity.errors import VeracityError

__all__ = ["COMMANDS", "SUMMARIES", "app", "main"]

# top-level command -> module of veracity.cli that registers it, in the order help lists them
COMMANDS = {
    "init": "workspace", "serve": "workspace", "demo": "workspace", "users": "workspace",
    "import": "data", "export": "data", "show": "data", "version": "data", "diff": "data", "duplicates": "data",
    "aggregate": "aggregate", "agreement": "aggregate", "label-issues": "label_issues", "drift": "align",
    "predictions": "ops", "quality": "ops", "decide": "ops", "audit": "ops", "backup": "ops",
}
# the first paragraph of each command's help, as ``veracity --help`` lists it without loading the
# command modules (that takes over a second: databases, scipy, pyarrow); tests/unit/test_cli_lazy.py
# checks that every line matches its command
SUMMARIES = {
    "init": "Create the workspace database (or upgrade it to the latest schema).",
    "serve": "Serve the web UI and the REST API.",
    "demo": "Build (idempotently) a sample workspace with data, then serve it on 127.0.0.1.",
    "users": "Manage users and API tokens.",
    "import": "Import a source into a dataset, with provenance, duplicate report and progress.",
    "export": "Export a dataset (or one of its versions) in a standard format.",
    "show": "Show an item's lineage: source, row, hash, import batch, labels and versions.",
    "version": "Immutable dataset versions.",
    "diff": "List items added, removed and relabelled between two versions.",
    "duplicates": "List clusters of near-duplicate items (texts by MinHash/LSH, images by perceptual hash).",
    "aggregate": "Infer one label per task from many workers' answers (truth inference).",
    "agreement": "Inter-annotator agreement (Krippendorff's alpha, Fleiss' or Cohen's kappa, percent).",
    "label-issues": "Find likely mislabelled items; write them ranked, most likely mislabelled first.",
    "drift": "Test whether OPERATIONS still looks like TRAIN: per feature, as a whole, and by slice.",
    "predictions": "Model predictions (pre-labels and probabilities).",
    "quality": "Project consensus and annotator skill.",
    "decide": "Decision support: conformal policies and the analyst queue.",
    "audit": "The tamper-evident audit log.",
    "backup": "Write a consistent copy of the workspace database (SQLite online backup, or pg_dump).",
}


@cache
def module_commands(module: str) -> Any:
    """The Click command (or group of commands) that ``veracity.cli.<module>`` registers."""
    sub = typer.Typer(add_completion=False)
    importlib.import_module(f"veracity.cli.{module}").register(sub)
    sub.callback()(lambda: None)  # keep a group even for a module with one command
    return typer.main.get_command(sub)


def _report(exc: VeracityError) -> None:
    """Print the error's message as it is: brackets in it (a file name, raw JSON) are not Rich markup."""
    from rich.markup import escape

    err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


class _VeracityGroup(TyperGroup):
    """The root command group: a VeracityError ends any command with one line and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VeracityError as exc:
            _report(exc)
            raise typer.Exit(2) from exc

    _listing = False  # True while the root help is written: commands are then their summaries only

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        if self._listing and cmd_name in SUMMARIES:
            return TyperCommand(cmd_name, help=SUMMARIES[cmd_name])
        return module_commands(module).get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


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
        typer.echo(f"veracity {veracity.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Veracity command line."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``veracity`` script."""
    try:
        app(args=argv, prog_name="veracity")
    except VeracityError as exc:
        _report(exc)
        sys.exit(2)
