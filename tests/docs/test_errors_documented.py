"""Every error class and its code appear in the hierarchy tree that opens ``veracity.errors``."""

from __future__ import annotations

import pytest

from veracity import errors

ERROR_CLASSES = sorted(
    (obj for name in errors.__all__ if isinstance(obj := getattr(errors, name), type)),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_error_class_in_the_tree(cls: type) -> None:
    assert errors.__doc__ is not None
    assert cls.__name__ in errors.__doc__, f"{cls.__name__} is missing from the tree in veracity/errors.py"
    assert cls.__doc__, f"{cls.__name__} needs a docstring"


@pytest.mark.parametrize(
    "cls",
    [cls for cls in ERROR_CLASSES if issubclass(cls, errors.VeracityError) and cls is not errors.VeracityError],
    ids=lambda cls: cls.__name__,
)
def test_error_code_in_the_tree(cls: type[errors.VeracityError]) -> None:
    assert errors.__doc__ is not None
    line = next(line for line in errors.__doc__.splitlines() if f" {cls.__name__} " in f" {line} ")
    assert f'"{cls.default_code}"' in line, f"the tree line of {cls.__name__} should give code {cls.default_code!r}"
