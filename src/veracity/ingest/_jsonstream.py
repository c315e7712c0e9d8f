"""Read the elements of a JSON array from a file one by one, holding one block of text at a time.

``json.load`` holds the whole document and every object in it: for a Label Studio export or a
JSON array of a million records that is several times the file size. This reader keeps a text
buffer of about one block (1 MB), decodes each element with the standard library's own scanner
(``JSONDecoder.scan_once``, so the grammar and the values are exactly those of ``json.loads``) and
hands it to the caller before reading on. An element cut by the end of the buffer is decoded again
once more text is in (the buffer doubles each time, so a huge element costs linear time).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from veracity._text import not_utf8
from veracity.errors import InvalidInputError
from veracity.ingest._safety import check_size

__all__ = ["iter_json_array_file", "iter_json_object_file"]

_BLOCK = 1 << 20  # characters read at a time
_WS = " \t\n\r"
_AFTER_NUMBER = frozenset(_WS + ",]}")


class _Buffer:
    """A window on the file's text: ``text[pos:]`` is unread; ``lines`` counts newlines dropped."""

    def __init__(self, fh: Any, path: Path, block: int) -> None:
        self.fh = fh
        self.path = path
        self.block = block
        self.text = ""
        self.pos = 0
        self.lines = 0  # newlines dropped from the front of the buffer
        self.column0 = 0  # characters of the current line dropped from the front
        self.eof = False

    def more(self, at_least: int = 0) -> bool:
        """Read on (at least ``at_least`` characters when the file has them); False at the end."""
        if self.eof:
            return False
        try:
            chunk = self.fh.read(max(self.block, at_least))
        except UnicodeDecodeError as exc:
            raise InvalidInputError(not_utf8(self.path, exc)) from None
        if not chunk:  # the buffer stays as it is, so positions in it still hold
            self.eof = True
            return False
        dropped = self.text[: self.pos]
        newlines = dropped.count("\n")
        self.lines += newlines
        self.column0 = len(dropped) - dropped.rfind("\n") - 1 if newlines else self.column0 + len(dropped)
        self.text = self.text[self.pos :] + chunk
        self.pos = 0
        return True

    def skip_ws(self) -> str:
        """The next non-blank character ('' at the end of the file), not consumed."""
        while True:
            text, pos, n = self.text, self.pos, len(self.text)
            while pos < n and text[pos] in _WS:
                pos += 1
            self.pos = pos
            if pos < n:
                return text[pos]
            if not self.more():
                return ""

    def error(self, msg: str, at: int) -> InvalidInputError:
        line = self.lines + self.text.count("\n", 0, at) + 1
        start = self.text.rfind("\n", 0, at)
        column = at - start if start >= 0 else self.column0 + at + 1
        return InvalidInputError(f"{self.path}: malformed JSON at line {line} column {column}: {msg}")


def iter_json_array_file(
    path: Path,
    max_bytes: int | None,
    *,
    not_array: Callable[[Any], Iterable[Any]],
    block: int = _BLOCK,
) -> Iterator[Any]:
    """The elements of the JSON array in ``path``, decoded one at a time.

    When the document is not an array it is decoded whole and ``not_array(document)`` gives the
    elements (or raises). Malformed JSON raises :class:`InvalidInputError` naming the line and
    column, after the elements before it have been yielded.
    """
    check_size(path, max_bytes)
    scan = json.JSONDecoder().scan_once
    with path.open("r", encoding="utf-8") as fh:
        buf = _Buffer(fh, path, block)
        first = buf.skip_ws()
        if first and first != "[":
            while buf.more():
                pass
            try:
                value, end = scan(buf.text, buf.pos)
            except StopIteration as exc:
                raise buf.error("Expecting value", exc.value) from None
            except json.JSONDecodeError as exc:
                raise buf.error(exc.msg, exc.pos) from None
            buf.pos = end
            if buf.skip_ws():
                raise buf.error("Extra data", buf.pos)
            yield from not_array(value)
            return
        if not first:
            raise buf.error("Expecting value", buf.pos)
        yield from _array_elements(buf, scan)
        if buf.skip_ws():
            raise buf.error("Extra data", buf.pos)


def _array_elements(buf: _Buffer, scan: Callable[[str, int], tuple[Any, int]]) -> Iterator[Any]:
    """The elements of the array whose ``[`` is at ``buf.pos``, one at a time; ends past its ``]``."""
    buf.pos += 1
    if buf.skip_ws() == "]":
        buf.pos += 1
        return
    while True:
        if not buf.skip_ws():
            raise buf.error("Expecting value", buf.pos)
        yield _scan_value(buf, scan)
        delimiter = buf.skip_ws()
        if delimiter == "]":
            buf.pos += 1
            return
        if delimiter != ",":
            raise buf.error("Expecting ',' delimiter", buf.pos)
        buf.pos += 1


def _scan_value(buf: _Buffer, scan: Callable[[str, int], tuple[Any, int]]) -> Any:
    """Decode the value at ``buf.pos`` (reading on as needed) and move past it."""
    while True:
        start = buf.pos
        try:
            value, end = scan(buf.text, start)
        except StopIteration as exc:
            if buf.more(len(buf.text)):
                continue
            raise buf.error("Expecting value", exc.value) from None
        except json.JSONDecodeError as exc:
            if buf.more(len(buf.text)):
                continue
            raise buf.error(exc.msg, exc.pos) from None
        if (
            type(value) in (int, float)
            and (end >= len(buf.text) or buf.text[end] not in _AFTER_NUMBER)
            and buf.more(len(buf.text))
        ):
            continue
        buf.pos = end
        return value


def iter_json_object_file(
    path: Path,
    max_bytes: int | None,
    *,
    streamed: frozenset[str],
    not_object: str = "expected a JSON object",
    block: int = _BLOCK,
) -> Iterator[tuple[str, int | None, Any]]:
    """The members of the JSON object in ``path``, in file order, as ``(key, index, value)``.

    A member whose key is in ``streamed`` and whose value is an array comes element by element
    (``index`` counts from 1, after a ``(key, 0, None)`` that marks the start of the array); any
    other member comes whole (``index`` None). Raises :class:`InvalidInputError` when the
    document is not a JSON object or is malformed.
    """
    check_size(path, max_bytes)
    scan = json.JSONDecoder().scan_once
    with path.open("r", encoding="utf-8") as fh:
        buf = _Buffer(fh, path, block)
        if buf.skip_ws() != "{":
            raise InvalidInputError(f"{path}: {not_object}")
        buf.pos += 1
        if buf.skip_ws() == "}":
            buf.pos += 1
        else:
            while True:
                if buf.skip_ws() != '"':
                    raise buf.error("Expecting property name enclosed in double quotes", buf.pos)
                key = _scan_value(buf, scan)
                if buf.skip_ws() != ":":
                    raise buf.error("Expecting ':' delimiter", buf.pos)
                buf.pos += 1
                if buf.skip_ws() == "[" and key in streamed:
                    yield key, 0, None
                    for index, value in enumerate(_array_elements(buf, scan), start=1):
                        yield key, index, value
                else:
                    yield key, None, _scan_value(buf, scan)
                delimiter = buf.skip_ws()
                if delimiter == "}":
                    buf.pos += 1
                    break
                if delimiter != ",":
                    raise buf.error("Expecting ',' delimiter", buf.pos)
                buf.pos += 1
        if buf.skip_ws():
            raise buf.error("Extra data", buf.pos)
