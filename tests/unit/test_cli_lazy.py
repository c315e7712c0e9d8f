"""The CLI's root group loads command modules on demand; its command map must match them."""

from __future__ import annotations

import subprocess
import sys

import typer

from veracity.cli import COMMANDS, module_commands


def test_command_map_matches_what_each_module_registers() -> None:
    for module in set(COMMANDS.values()):
        sub = typer.Typer()
        __import__(f"veracity.cli.{module}", fromlist=["register"]).register(sub)
        sub.callback()(lambda: None)
        group = typer.main.get_command(sub)
        registered = set(group.list_commands(None))  # type: ignore[attr-defined, arg-type]
        mapped = {name for name, mod in COMMANDS.items() if mod == module}
        assert registered == mapped, f"veracity.cli.{module}: registers {registered}, COMMANDS says {mapped}"
        assert all(module_commands(module).get_command(None, name) is not None for name in mapped)


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_starting_the_cli_loads_neither_the_database_nor_scipy() -> None:
    loaded = _loaded_after("import veracity.cli")
    assert "sqlalchemy" not in loaded and "scipy" not in loaded and "veracity.services" not in loaded


def test_label_issues_does_not_load_the_database() -> None:
    loaded = _loaded_after("from veracity.cli import module_commands\nmodule_commands('label_issues')")
    assert "sqlalchemy" not in loaded and "fastapi" not in loaded


def test_label_checks_do_not_load_truth_inference() -> None:
    loaded = _loaded_after("from veracity.quality import find_label_issues")
    assert "scipy.optimize" not in loaded and "veracity.quality.aggregation" not in loaded
    loaded = _loaded_after("from veracity.quality import aggregate")
    assert "veracity.quality.aggregation" in loaded


def test_root_help_summaries_match_the_commands() -> None:
    """``veracity --help`` lists SUMMARIES without loading the modules; each must be its command's first paragraph."""
    from veracity.cli import SUMMARIES

    assert list(SUMMARIES) == list(COMMANDS)
    for name, module in COMMANDS.items():
        command = module_commands(module).get_command(None, name)
        first = (command.short_help or command.help or "").split("\n\n")[0].strip()
        assert SUMMARIES[name] == first, f"SUMMARIES[{name!r}] is out of date: the command says {first!r}"


def test_root_help_loads_no_command_module() -> None:
    code = ("import sys\nfrom veracity.cli import main\nsys.argv = ['veracity', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "Commands" in out and "label-issues" in out
    assert not {f"veracity.cli.{m}" for m in COMMANDS.values()} & loaded
