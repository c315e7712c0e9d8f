"""``veracity.config.Settings``: defaults, VERACITY_* variables, TOML file, and their precedence.

Precedence, highest first: keyword arguments > environment > TOML file > defaults.
(The autouse fixture in tests/conftest.py clears the developer's own VERACITY_* variables.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from veracity.config import DEFAULT_DB, Settings, get_settings


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so that no ./veracity.toml is picked up by accident."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = Settings()
    assert settings.db == DEFAULT_DB == "sqlite:///./veracity.db"
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.data_dir == Path(".")
    assert settings.cookie_secure is False


def test_env_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_DB", "postgresql+psycopg://u@127.0.0.1:5432/v")
    assert Settings().db == "postgresql+psycopg://u@127.0.0.1:5432/v"


def test_env_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_PORT", "9001")
    monkeypatch.setenv("VERACITY_COOKIE_SECURE", "true")
    monkeypatch.setenv("VERACITY_DATA_DIR", "/srv/veracity")
    settings = Settings()
    assert settings.port == 9001
    assert settings.cookie_secure is True
    assert settings.data_dir == Path("/srv/veracity")


def test_bad_env_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_PORT", "eighty")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_unprefixed_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB", "sqlite:///other.db")
    monkeypatch.setenv("PORT", "1234")
    assert (Settings().db, Settings().port) == (DEFAULT_DB, 8000)


def test_toml_file_from_veracity_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(tmp_path / "v.toml", 'db = "sqlite:///t.db"\nport = 8100\n')
    monkeypatch.setenv("VERACITY_CONFIG", str(config))
    settings = Settings()
    assert settings.db == "sqlite:///t.db"
    assert settings.port == 8100
    assert settings.host == "127.0.0.1"  # not in the file: default


def test_toml_file_in_current_folder(_empty_cwd: Path) -> None:
    write_toml(_empty_cwd / "veracity.toml", "lease_seconds = 30\n")
    assert Settings().lease_seconds == 30


def test_veracity_config_wins_over_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(tmp_path / "veracity.toml", "port = 1111\n")
    monkeypatch.setenv("VERACITY_CONFIG", str(write_toml(tmp_path / "other.toml", "port = 2222\n")))
    assert Settings().port == 2222


def test_unknown_toml_keys_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_CONFIG", str(write_toml(tmp_path / "v.toml", 'colour = "blue"\nport = 8200\n')))
    assert Settings().port == 8200


def test_precedence_kwargs_over_env_over_toml_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(
        tmp_path / "v.toml",
        'db = "sqlite:///toml.db"\nhost = "10.0.0.1"\nport = 7000\nlog_level = "debug"\n',
    )
    monkeypatch.setenv("VERACITY_CONFIG", str(config))
    monkeypatch.setenv("VERACITY_DB", "sqlite:///env.db")
    monkeypatch.setenv("VERACITY_HOST", "10.0.0.2")

    settings = Settings(db="sqlite:///kwarg.db")

    assert settings.db == "sqlite:///kwarg.db"  # kwargs beat env and TOML
    assert settings.host == "10.0.0.2"  # env beats TOML
    assert settings.port == 7000  # TOML beats the default
    assert settings.log_level == "debug"
    assert settings.lease_seconds == 600  # default


def test_get_settings_ignores_none_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # CLI options left unset arrive as None and must not hide the environment.
    monkeypatch.setenv("VERACITY_DB", "sqlite:///env.db")
    settings = get_settings(db=None, port=9100)
    assert settings.db == "sqlite:///env.db"
    assert settings.port == 9100


def test_settings_are_read_when_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("VERACITY_PORT", "9200")
    assert get_settings().port == 9200
    assert first.port == 8000


def test_a_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from veracity.errors import InvalidInputError

    monkeypatch.setenv("VERACITY_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(InvalidInputError, match=r"VERACITY_CONFIG: .*nope.toml is not a file"):
        Settings()
