"""Where a text file stops being UTF-8: for the error messages of every file reader."""

from __future__ import annotations

import os

__all__ = ["first_bad_utf8", "not_utf8"]


def first_bad_utf8(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Line and column (both 1-based; the column counts bytes) of the first byte of the file at
    ``path`` that is not UTF-8, or None when the whole file is UTF-8.

    Reads the file line by line: for error messages, after a fast reader has failed. A newline is
    one byte in UTF-8, so no character is split between two lines.
    """
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return None


def not_utf8(path: str | os.PathLike[str], exc: UnicodeDecodeError | None = None) -> str:
    """``"PATH: not UTF-8 text at line L column C (reason)"``, the place found by :func:`first_bad_utf8`."""
    where = first_bad_utf8(path)
    at = f" at line {where[0]} column {where[1]}" if where else ""
    reason = f" ({exc.reason})" if exc is not None else ""
    return f"{path}: not UTF-8 text{at}{reason}; save the file as UTF-8"
