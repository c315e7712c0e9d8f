"""Every field of ``veracity.config.Settings`` has a description and a row in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from veracity.config import Settings

CONFIGURATION_MD = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
FIELDS = sorted(Settings.model_fields)


@pytest.fixture(scope="module")
def doc_rows() -> dict[str, str]:
    """The rows of the settings tables, keyed by their first cell (``VERACITY_DB``)."""
    rows = {}
    for line in CONFIGURATION_MD.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `VERACITY_") and len(cells) >= 2:
            rows[cells[0].strip("`")] = line
    return rows


def rendered_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)


@pytest.mark.parametrize("name", FIELDS)
def test_field_has_description(name: str) -> None:
    description = Settings.model_fields[name].description
    assert description and description.strip(), f"Settings.{name} needs Field(description=...)"


@pytest.mark.parametrize("name", FIELDS)
def test_field_documented_with_default(name: str, doc_rows: dict[str, str]) -> None:
    variable = f"VERACITY_{name.upper()}"
    assert variable in doc_rows, f"docs/configuration.md has no row for {variable}"
    default = rendered_default(Settings.model_fields[name].default)
    assert f"`{default}`" in doc_rows[variable], f"docs/configuration.md gives the wrong default for {variable}"


def test_no_stale_rows(doc_rows: dict[str, str]) -> None:
    documented = {f"VERACITY_{name.upper()}" for name in FIELDS}
    extra = {"VERACITY_CONFIG", "VERACITY_TEST_DATABASE_URL", "VERACITY_CHROMIUM"}
    assert set(doc_rows) - documented - extra == set(), "docs/configuration.md documents settings that do not exist"
