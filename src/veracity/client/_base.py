"""Pieces both clients share: headers and the base URL."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["USER_AGENT", "auth_headers", "server_root"]

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


def server_root(base_url: str) -> str:
    """Where the server is served from: ``base_url`` without a trailing slash or ``/api/v1``, which
    the calls add themselves (so ``http://host:8000`` and ``http://host:8000/api/v1/`` both work)."""
    root = base_url.strip().rstrip("/")
    if root.endswith("/api/v1"):
        root = root.removesuffix("/api/v1").rstrip("/")
    if not root:
        raise ValueError("base_url: expected the server's address, e.g. 'http://127.0.0.1:8000'")
    return root
