"""Pieces both clients share: headers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["USER_AGENT", "auth_headers"]

try:
    _VERSION = version("veracity")
except PackageNotFoundError:  # pragma: no cover - a source tree without install
    _VERSION = "0"

USER_AGENT = f"veracity-client/{_VERSION}"


def auth_headers(token: str) -> dict[str, str]:
    token = token.strip()
    if not token:
        raise ValueError("token: expected an API token (veracity users create NAME --role ROLE prints one)")
    return {"Authorization": f"Bearer {token}"}
