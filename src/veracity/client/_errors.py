"""Turn an error response of the REST API back into the :mod:`veracity.errors` class it came from.

The server answers ``{"ok": false, "error": {"code", "message", "details"}}``; the ``code`` names
the class (``veracity.web.errors`` maps classes to statuses in the other direction). Responses
without that body (a proxy's 502, say) fall back to the HTTP status.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from veracity.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaValidationError,
    StorageError,
    VeracityError,
)

__all__ = ["ApiError", "error_from_response"]

ERRORS_BY_CODE: dict[str, type[VeracityError]] = {
    "invalid_input": InvalidInputError,
    "schema_validation": SchemaValidationError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "permission_denied": PermissionDeniedError,
    "unauthenticated": AuthenticationError,
    "storage": StorageError,
}
ERRORS_BY_STATUS: dict[int, type[VeracityError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidInputError,
}


class ApiError(VeracityError):
    """An error response the client cannot map to a more specific class (an unexpected 500, a proxy
    error page, ...). ``status_code`` holds the HTTP status (as it does on every error the clients
    raise, with ``method`` and ``path``)."""

    default_code = "api_error"

    def __init__(self, message: str, *, status_code: int, code: str | None = None, details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.status_code = status_code


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _where(response: httpx.Response) -> tuple[str, str]:
    """The request's method and path (no query string: it is not needed to tell which call failed)."""
    try:
        request = response.request
    except RuntimeError:  # a response built by hand, without its request
        return "", ""
    return request.method, request.url.path


def _build(response: httpx.Response) -> VeracityError:
    err = _error_body(response)
    status = response.status_code
    method, path = _where(response)
    where = f"{method} {path} -> " if method else ""
    if err is not None:
        code = str(err.get("code") or "")
        message = str(err.get("message") or f"HTTP {status}")
        details = err.get("details")
        cls = ERRORS_BY_CODE.get(code)
        if cls is not None:
            return cls(message, code=code, details=details)
        # not one of Veracity's own errors (an unknown route, a wrong method): say which request it was
        message = f"{where}HTTP {status}: {message}"
        fallback = ERRORS_BY_STATUS.get(status)
        if fallback is not None:
            return fallback(message, code=code or None, details=details)
        return ApiError(message, status_code=status, code=code or None, details=details)
    text = response.text.strip()[:200] if response.content else ""
    message = f"{where}HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    cls = ERRORS_BY_STATUS.get(status)
    if cls is not None:
        return cls(message)
    return ApiError(message, status_code=status)


def error_from_response(response: httpx.Response) -> VeracityError:
    """The exception for a non-success response, keeping the server's code, message and details.

    Every one also carries ``status_code``, ``method`` and ``path`` of the failed request; messages
    that did not come from Veracity itself (a proxy's error page, an unknown route) name them too.
    """
    exc = _build(response)
    method, path = _where(response)
    exc.status_code = response.status_code  # type: ignore[attr-defined]
    exc.method = method  # type: ignore[attr-defined]
    exc.path = path  # type: ignore[attr-defined]
    return exc
