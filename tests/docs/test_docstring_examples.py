"""The ``>>>`` examples in Veracity's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import veracity

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(veracity.__path__, "veracity.")
    if ".migrations" not in m.name  # Alembic scripts run only inside Alembic
)


def _with_examples() -> list[str]:
    finder = doctest.DocTestFinder()
    return [name for name in MODULES if any(t.examples for t in finder.find(importlib.import_module(name)))]


@pytest.mark.parametrize("name", _with_examples())
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run python -m doctest -v)"
