"""One configuration object, read once at the edge (CLI entry, ``create_app``) and passed down.

Values come, highest priority first, from keyword arguments, ``VERACITY_*`` environment variables,
a TOML file (``VERACITY_CONFIG`` or ``./veracity.toml`` when present) and the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from veracity.errors import InvalidInputError

__all__ = ["DEFAULT_DB", "Settings", "get_settings"]

DEFAULT_DB = "sqlite:///./veracity.db"


def _toml_path() -> Path | None:
    explicit = os.environ.get("VERACITY_CONFIG")
    if explicit:
        if not Path(explicit).is_file():
            raise InvalidInputError(f"VERACITY_CONFIG: {explicit} is not a file")
        return Path(explicit)
    local = Path("veracity.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Veracity settings. Every field is documented; ``tests/docs`` checks that it stays so."""

    model_config = SettingsConfigDict(env_prefix="VERACITY_", extra="ignore")

    db: str = Field(
        DEFAULT_DB,
        description="Database URL: sqlite:///path.db (default ./veracity.db) or postgresql+psycopg://...",
    )
    data_dir: Path = Field(Path("."), description="Folder for media files, exports and backups.")
    host: str = Field("127.0.0.1", description="Address `veracity serve` binds to.")
    port: int = Field(8000, description="Port `veracity serve` listens on.")
    secret_key: str = Field(
        "",
        description="Key that signs session cookies; a random one is generated per process when empty.",
    )
    lease_seconds: int = Field(
        600, description="How long an annotator holds a task before it returns to the queue."
    )
    max_upload_bytes: int = Field(
        512 * 1024 * 1024, description="Largest request body or imported file accepted, in bytes."
    )
    cookie_secure: bool = Field(False, description="Mark session cookies Secure (set behind HTTPS).")
    log_level: str = Field("info", description="Log level of the server: debug, info, warning, error.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _toml_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def get_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment, the TOML file and ``overrides`` (non-None only)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
