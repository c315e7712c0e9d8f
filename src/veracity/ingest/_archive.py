"""Zip archives, unpacked safely before reading: no member may land outside the target folder."""

from __future__ import annotations

import hashlib
import stat
import zipfile
import zlib
from pathlib import Path

from veracity.errors import InvalidInputError
from veracity.ingest._safety import check_size, resolve_inside

__all__ = ["MARKER", "extract_zip"]

#: Hidden file of a complete unpacking, holding the archive's SHA-256 and size (readers skip hidden files).
MARKER = ".veracity-archive"


def extract_zip(path: Path, target: Path, *, max_bytes: int | None) -> Path:
    """Unpack ``path`` into ``target`` and return ``target``.

    Refused: members with absolute paths or ``..`` that resolve outside ``target``, symbolic links,
    archives whose unpacked size exceeds ``max_bytes`` (zip bombs, counted from the bytes actually
    unpacked as well as from the sizes the archive declares), archives with no files, damaged
    archives, and a ``target`` that already holds other files (they would be imported with the
    archive). A complete unpacking leaves the hidden file :data:`MARKER` with the archive's SHA-256;
    the same archive is then not unpacked again.
    """
    check_size(path, max_bytes)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"{path}: not a readable zip archive ({exc})") from None
    with zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if max_bytes is not None and total > max_bytes:
            raise InvalidInputError(
                f"{path}: archive unpacks to {total} bytes, larger than the limit of {max_bytes} bytes"
            )
        if not any(not m.is_dir() for m in members):
            raise InvalidInputError(f"{path}: archive holds no files")
        stamp = _stamp(path)
        marker = target / MARKER
        if target.is_dir() and any(target.iterdir()):
            if marker.is_file() and marker.read_text(encoding="utf-8", errors="replace") == stamp:
                return target  # this very archive was unpacked here in full before
            raise InvalidInputError(
                f"{path}: {target} already holds other files (not this archive unpacked); remove the folder "
                "or unpack somewhere else, so that no stray file is imported with the archive"
            )
        target.mkdir(parents=True, exist_ok=True)
        for m in members:
            where = f"{path}: member {m.filename!r}"
            if stat.S_ISLNK(m.external_attr >> 16):
                raise InvalidInputError(f"{where}: symbolic links are not allowed in archives; refused")
            if m.filename.startswith(("/", "\\")) or ":" in m.filename.split("/")[0]:
                raise InvalidInputError(f"{where}: absolute path; refused")
            resolve_inside(target, m.filename, where=where)
        written = 0
        for m in members:
            where = f"{path}: member {m.filename!r}"
            dest = resolve_inside(target, m.filename, where=where)
            if m.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(m) as src, dest.open("wb") as out:
                    while block := src.read(1 << 20):
                        written += len(block)
                        if max_bytes is not None and written > max_bytes:
                            raise InvalidInputError(
                                f"{where}: archive unpacks to more than the limit of {max_bytes} bytes"
                            )
                        out.write(block)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                # a damaged member (bad CRC, truncated data), an unsupported method or encryption
                raise InvalidInputError(f"{where}: cannot be unpacked ({exc})") from None
    marker.write_text(stamp, encoding="utf-8")  # written last: only a complete unpacking is reused
    return target


def _stamp(path: Path) -> str:
    """What identifies an archive's content: its SHA-256 and size."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return f"{digest.hexdigest()} {path.stat().st_size}\n"
