"""The exception tree of ``veracity.errors``: codes, standard-library bases, messages."""

from __future__ import annotations

import pickle
import warnings

import pytest

from veracity import errors
from veracity.errors import (
    AuthenticationError,
    ConflictError,
    ConvergenceWarning,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaValidationError,
    StorageError,
    VeracityError,
)

CODES: dict[type[VeracityError], str] = {
    VeracityError: "error",
    InvalidInputError: "invalid_input",
    SchemaValidationError: "schema_validation",
    NotFoundError: "not_found",
    ConflictError: "conflict",
    PermissionDeniedError: "permission_denied",
    AuthenticationError: "unauthenticated",
    StorageError: "storage",
}


@pytest.mark.parametrize(("cls", "code"), CODES.items(), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_default_code(cls: type[VeracityError], code: str) -> None:
    exc = cls("something went wrong")
    assert exc.code == code
    assert exc.message == "something went wrong"
    assert exc.details is None


def test_codes_are_distinct() -> None:
    assert len(set(CODES.values())) == len(CODES)


def test_every_public_error_is_covered() -> None:
    public_errors = {
        obj for name in errors.__all__ if isinstance(obj := getattr(errors, name), type) and issubclass(obj, Exception)
    }
    assert public_errors == set(CODES) | {ConvergenceWarning}


def test_explicit_code_and_details() -> None:
    exc = InvalidInputError("bad row", code="bad_row", details={"row": 3})
    assert exc.code == "bad_row"
    assert exc.details == {"row": 3}


def test_invalid_input_is_a_value_error() -> None:
    # Library users who write `except ValueError` still catch Veracity's input errors.
    with pytest.raises(ValueError, match="expected 3 labels, got 2"):
        raise InvalidInputError("expected 3 labels, got 2")
    assert issubclass(SchemaValidationError, InvalidInputError)
    assert issubclass(SchemaValidationError, ValueError)


def test_not_found_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        raise NotFoundError("project 7 not found")
    assert not issubclass(NotFoundError, ValueError)


@pytest.mark.parametrize("cls", [ConflictError, PermissionDeniedError, AuthenticationError, StorageError])
def test_other_errors_are_not_value_or_lookup_errors(cls: type[VeracityError]) -> None:
    assert issubclass(cls, VeracityError)
    assert not issubclass(cls, (ValueError, LookupError))


def test_authentication_is_a_permission_error() -> None:
    assert issubclass(AuthenticationError, PermissionDeniedError)
    assert AuthenticationError("no token").code != PermissionDeniedError("no").code


def test_str_is_the_message() -> None:
    exc = NotFoundError("task 12 does not exist", code="task_missing")
    assert str(exc) == "task 12 does not exist"
    assert exc.args == ("task 12 does not exist",)


def test_repr_names_class_message_and_code() -> None:
    assert repr(ConflictError("lease expired")) == "ConflictError('lease expired', code='conflict')"
    assert repr(StorageError("disk 'full'", code="disk")) == "StorageError(\"disk 'full'\", code='disk')"


def test_survives_pickling() -> None:
    # Errors raised in worker processes (compute/ executors) come back whole.
    exc = SchemaValidationError("label 'x' not in schema", code="unknown_label", details=["x"])
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is SchemaValidationError
    assert (str(back), back.code, back.details) == (str(exc), "unknown_label", ["x"])


def test_convergence_warning_is_a_user_warning() -> None:
    assert issubclass(ConvergenceWarning, UserWarning)
    with pytest.warns(ConvergenceWarning, match="n_iter"):
        warnings.warn("stopped at n_iter=100", ConvergenceWarning, stacklevel=1)


def test_html_error_page_escapes_the_detail() -> None:
    """An HTTP error's detail is text: on the HTML page it is escaped, not markup."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.exceptions import HTTPException

    from veracity.web.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise HTTPException(400, '<img src=x onerror="alert(1)">')

    res = TestClient(app).get("/boom", headers={"accept": "text/html"})
    assert res.status_code == 400
    assert "<img" not in res.text and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in res.text
