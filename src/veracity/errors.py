"""Veracity's exception tree.

Every error that Veracity raises on purpose derives from :class:`VeracityError` and carries a
stable machine-readable ``code``, which the web layer maps to an HTTP status in one place
(``veracity.web.errors``) and the CLI maps to exit code 2::

    VeracityError
    ├── InvalidInputError   (also a ValueError)   code "invalid_input"      -> 422 / exit 2
    │   └── SchemaValidationError                  code "schema_validation" -> 422
    ├── NotFoundError       (also a LookupError)  code "not_found"          -> 404
    ├── ConflictError                              code "conflict"           -> 409
    ├── PermissionDeniedError                      code "permission_denied"  -> 403
    │   └── AuthenticationError                    code "unauthenticated"    -> 401
    └── StorageError                               code "storage"            -> 503

Warnings: :class:`ConvergenceWarning` (an iterative estimator hit ``n_iter`` before ``tol``).

Messages say what was expected and what arrived, and name the file, row or field at fault.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "ConvergenceWarning",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "SchemaValidationError",
    "StorageError",
    "VeracityError",
]


class VeracityError(Exception):
    """Base class of every error Veracity raises on purpose."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class InvalidInputError(VeracityError, ValueError):
    """Input that does not have the expected shape, type or content."""

    default_code = "invalid_input"


class SchemaValidationError(InvalidInputError):
    """A label value that does not fit the project's label schema."""

    default_code = "schema_validation"


class NotFoundError(VeracityError, LookupError):
    """A named object (project, task, user, item, ...) does not exist or is not visible."""

    default_code = "not_found"


class ConflictError(VeracityError):
    """The request conflicts with the current state (duplicate name, expired lease, ...)."""

    default_code = "conflict"


class PermissionDeniedError(VeracityError):
    """The caller is known but not allowed to do this."""

    default_code = "permission_denied"


class AuthenticationError(PermissionDeniedError):
    """The caller could not be identified (missing or invalid token or session)."""

    default_code = "unauthenticated"


class StorageError(VeracityError):
    """The database or file store cannot be reached, opened or written."""

    default_code = "storage"


class ConvergenceWarning(UserWarning):
    """An iterative estimator stopped at ``n_iter`` before reaching ``tol``."""
