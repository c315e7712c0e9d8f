"""Guards every reader goes through: file size, paths inside the source root, XML, images."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers import expat

from PIL import Image, UnidentifiedImageError

from veracity._text import not_utf8
from veracity.errors import InvalidInputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "check_size",
    "load_json",
    "parse_xml",
    "read_image",
    "resolve_inside",
]

DEFAULT_MAX_BYTES = 2 * 1024**3
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


def check_size(path: Path, max_bytes: int | None) -> int:
    """The size of ``path``; refuse it when larger than ``max_bytes`` (None = no limit)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: file not found") from None
    if max_bytes is not None and size > max_bytes:
        raise InvalidInputError(f"{path}: file is {size} bytes, larger than the limit of {max_bytes} bytes")
    return size


def resolve_inside(root: Path, relative: str | os.PathLike[str], *, where: str) -> Path:
    """Resolve ``relative`` against ``root`` and refuse anything that lands outside ``root``.

    Absolute paths, ``..`` components and symbolic links that lead out of the root are all refused,
    naming ``where`` (the file and row that asked for the path).
    """
    root_resolved = root.resolve()
    candidate = (root_resolved / relative).resolve()
    if not candidate.is_relative_to(root_resolved):
        raise InvalidInputError(
            f"{where}: path {str(relative)!r} resolves outside the source folder {root_resolved}; refused"
        )
    return candidate


def load_json(path: Path, max_bytes: int | None) -> Any:
    """Parse a whole JSON document, naming the line and column of a syntax error."""
    check_size(path, max_bytes)
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(not_utf8(path, exc)) from None


def _refuse(path: Path, what: str) -> Any:
    def handler(*_args: Any) -> None:
        raise InvalidInputError(f"{path}: XML {what} are not allowed (refused for safety)")

    return handler


def parse_xml(path: Path, max_bytes: int | None) -> ET.Element:
    """Parse an XML file, refusing DTDs and entity declarations (billion laughs, external entities).

    The expat parser feeds an ElementTree builder directly, with the declaration handlers set to
    refuse, as ``defusedxml`` does.
    """
    check_size(path, max_bytes)
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = lambda tag: builder.end(tag)
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse(path, "document type declarations (DTD)")
    parser.EntityDeclHandler = _refuse(path, "entity declarations")
    parser.UnparsedEntityDeclHandler = _refuse(path, "entity declarations")
    parser.ExternalEntityRefHandler = _refuse(path, "external entities")
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as exc:
        raise InvalidInputError(f"{path}: malformed XML at line {exc.lineno} column {exc.offset}") from None
    return builder.close()


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """An image checked to decode: its sha256 and pixel size."""

    sha256: str
    width: int
    height: int


def read_image(path: Path, max_bytes: int | None, *, where: str | None = None) -> ImageInfo:
    """Read an image, check that Pillow can decode it, and hash its bytes."""
    label = where or str(path)
    check_size(path, max_bytes)
    if not path.is_file():
        raise InvalidInputError(f"{label}: {path} is not a file")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{label}: image {path.name} cannot be read ({exc.strerror})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as im:
                width, height = im.size
                im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"{label}: image {path.name} cannot be decoded ({exc})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(f"{label}: image {path.name} is too large to decode safely ({exc})") from None
    return ImageInfo(hashlib.sha256(blob).hexdigest(), width, height)
