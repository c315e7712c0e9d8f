"""docs/cli.md documents every command and is exactly what scripts/gen_cli_docs generates."""

from __future__ import annotations

import difflib
import runpy
from pathlib import Path
from typing import Any

import pytest
import typer

from veracity.cli import app

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
REGENERATE = "run scripts/gen_cli_docs and commit docs/cli.md"


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "scripts" / "gen_cli_docs"))


def test_every_command_has_help(generator: dict[str, Any]) -> None:
    root = typer.main.get_command(app)
    undocumented = [" ".join(path) for path, command in generator["walk"](root, ("veracity",)) if not command.help]
    if undocumented:
        pytest.fail(f"commands without a docstring or help=: {undocumented}", pytrace=False)


def test_every_command_is_in_the_reference(generator: dict[str, Any]) -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    missing = [path for path in generator["command_paths"](app) if f"## `{path}`" not in text]
    if missing:
        pytest.fail(f"docs/cli.md lacks {missing}: {REGENERATE}", pytrace=False)


def test_reference_is_up_to_date(generator: dict[str, Any]) -> None:
    current = CLI_MD.read_text(encoding="utf-8").splitlines(keepends=True)
    generated = generator["render"](app).splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(current, generated, "docs/cli.md", "generated", n=1))
    if diff:
        pytest.fail(f"docs/cli.md is out of date: {REGENERATE}\n{diff}", pytrace=False)
