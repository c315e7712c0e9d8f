"""``read_source`` and ``write_export``: format sniffing and dispatch to the readers and writers."""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from veracity.errors import InvalidInputError
from veracity.ingest._archive import extract_zip
from veracity.ingest._coco import read_coco, write_coco
from veracity.ingest._common import NOT_UTF8, ReadOptions
from veracity.ingest._hf import read_hf, write_hf
from veracity.ingest._images import iter_image_files, read_image_folder
from veracity.ingest._labelstudio import read_labelstudio, write_labelstudio
from veracity.ingest._safety import DEFAULT_MAX_BYTES, check_size
from veracity.ingest._tabular import (
    read_crowd,
    read_csv,
    read_json_array,
    read_jsonl,
    read_parquet,
    write_crowd,
    write_csv,
    write_jsonl,
    write_parquet,
)
from veracity.ingest._voc import read_voc, write_voc
from veracity.ingest._yolo import read_yolo, write_yolo
from veracity.ingest.records import BadRow, SourceRecord
from veracity.types import Record

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ExportSummary",
    "count_records",
    "normalise_format",
    "read_source",
    "sniff_format",
    "write_export",
]

Reader = Callable[[Path, ReadOptions], Iterator[list[SourceRecord]]]

_READERS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "json": read_json_array,
    "csv": read_csv,
    "parquet": read_parquet,
    "images": read_image_folder,
    "coco": read_coco,
    "yolo": read_yolo,
    "voc": read_voc,
    "labelstudio": read_labelstudio,
    "crowd": read_crowd,
    "hf": read_hf,
}
IMPORT_FORMATS: tuple[str, ...] = tuple(_READERS)
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "coco", "yolo", "voc", "labelstudio", "crowd", "hf")

_ALIASES = {
    "ndjson": "jsonl",
    "tsv": "csv",
    "pq": "parquet",
    "imagefolder": "images",
    "image-folder": "images",
    "label-studio": "labelstudio",
    "label_studio": "labelstudio",
    "pascal-voc": "voc",
    "pascal_voc": "voc",
    "answers": "crowd",
    "huggingface": "hf",
    "datasets": "hf",
}


def normalise_format(name: str, *, allowed: Sequence[str] = IMPORT_FORMATS) -> str:
    """The canonical name of a format (``ndjson`` -> ``jsonl``); unknown names are refused."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in allowed:
        raise InvalidInputError(f"unknown format {name!r}: expected one of {', '.join(allowed)}")
    return key


def _csv_header(path: Path) -> set[str]:
    """The column names of a CSV file's first line (a guess: enough to tell crowd answers)."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 16)  # only this line is decoded: a bad byte further on is the reader's to report
    try:
        line = codecs.getincrementaldecoder("utf-8-sig")().decode(first, final=False)  # may end mid-character
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: header (line 1): {NOT_UTF8}") from None
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    return {h.strip().strip('"') for h in line.rstrip("\r\n").split(sep)}


def sniff_format(path: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> str:
    """Guess the format of ``path`` from its suffix, its first bytes or its folder layout."""
    p = Path(path)
    if p.is_dir():
        if (p / "Annotations").is_dir() or any(p.glob("*.xml")):
            return "voc"
        if any((p / name).is_file() for name in ("classes.txt", "obj.names", "data.yaml", "data.yml")):
            return "yolo"
        if (p / "dataset_info.json").is_file() or (p / "state.json").is_file():
            return "hf"
        if any(p.glob("*.json")) and not any(True for _ in iter_image_files(p)):
            candidates = sorted(p.glob("*.json"))
            return sniff_format(candidates[0], max_bytes=max_bytes)
        return "images"
    if not p.exists():
        raise InvalidInputError(f"{p}: file not found")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "crowd" if {"worker", "task", "label"} <= _csv_header(p) else "csv"
    if suffix == ".xml":
        return "voc"
    if suffix == ".zip":
        return "zip"
    if suffix == ".json":
        return _sniff_json(p, max_bytes)
    raise InvalidInputError(
        f"{p}: cannot tell the format from the name; pass format= (one of {', '.join(IMPORT_FORMATS)})"
    )


def _sniff_json(path: Path, max_bytes: int | None) -> str:
    check_size(path, max_bytes)
    with path.open("rb") as fh:
        head = fh.read(1 << 16).lstrip()
    if head.startswith(b"{"):
        # one object per line is JSONL even with a .json suffix
        first_line = head.split(b"\n", 1)[0]
        try:
            json.loads(first_line)
            if b"\n{" in head:
                return "jsonl"
        except json.JSONDecodeError:
            pass
        if b'"images"' in head:
            return "coco"
        return "labelstudio"
    if head.startswith(b"["):
        return "labelstudio" if b'"data"' in head and (b'"annotations"' in head or b'"predictions"' in head) else "json"
    raise InvalidInputError(f"{path}: not a JSON list or object")


def read_source(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    chunk_size: int = 10_000,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    label_field: str | None = "label",
    required: Sequence[str] = (),
    on_bad_row: Callable[[BadRow], None] | None = None,
    image_root: str | os.PathLike[str] | None = None,
    extract_dir: str | os.PathLike[str] | None = None,
    gold_field: str | None = None,
) -> Iterator[list[SourceRecord]]:
    """Stream the records of a source in chunks.

    Parameters
    ----------
    path : path-like
        A file, a folder (images, YOLO, VOC, Hugging Face) or a ``.zip`` archive of one of those.
    format : str, optional
        One of ``IMPORT_FORMATS`` (``jsonl``, ``json``, ``csv``, ``parquet``, ``images``, ``coco``,
        ``yolo``, ``voc``, ``labelstudio``, ``crowd``, ``hf``); guessed by :func:`sniff_format` when
        omitted.
    chunk_size : int
        Records per yielded list. Line and row based readers hold one chunk at a time.
    max_bytes : int or None
        Largest file accepted (each file of a folder, and the unpacked size of an archive).
    label_field : str or None
        Field of flat records (JSONL, CSV, Parquet) that carries a source label; it becomes an
        annotation instead of part of ``data``. None keeps every field in ``data``.
    required : sequence of str
        Fields every record's data must have (``"missing field 'text'"`` otherwise).
    on_bad_row : callable, optional
        Called with a :class:`BadRow` for each rejected row, and reading goes on. Without it the
        first bad row raises :class:`~veracity.errors.InvalidInputError` naming file, row and reason.
    image_root : path-like, optional
        Folder that image paths of COCO and VOC files resolve against (default: beside the file).
        Paths may not leave it.
    extract_dir : path-like, optional
        Where a ``.zip`` is unpacked (default: a folder named after the archive beside it).
    gold_field : str, optional
        Field of flat records that carries a known true answer (a gold task of a project import,
        as the REST import's ``gold``); it goes to ``meta["gold"]`` instead of ``data``. None (the
        default) keeps the field in ``data``.

    Yields
    ------
    list of SourceRecord
        Chunks of at most ``chunk_size`` records, in source order.
    """
    p = Path(path)
    fmt = normalise_format(format) if format is not None and format != "zip" else None
    if p.is_file() and p.suffix.lower() == ".zip":
        target = Path(extract_dir) if extract_dir is not None else p.with_name(p.stem + "_unpacked")
        p = _single_file(extract_zip(p, target, max_bytes=max_bytes))
        if p.is_file() and p.suffix.lower() == ".zip":
            raise InvalidInputError(f"{path}: holds only another archive ({p.name}); nested archives are not read")
    if fmt is None:
        fmt = sniff_format(p, max_bytes=max_bytes)
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be at least 1, got {chunk_size}")
    opts = ReadOptions(
        chunk_size=chunk_size,
        max_bytes=max_bytes,
        label_field=label_field,
        gold_field=gold_field,
        required=tuple(required),
        on_bad_row=on_bad_row,
        image_root=Path(image_root) if image_root is not None else None,
    )
    folder_formats = ("images", "yolo", "hf")
    if fmt in folder_formats and not p.is_dir():
        raise InvalidInputError(f"{p}: format {fmt!r} reads a folder")
    if fmt not in (*folder_formats, "voc") and not p.is_file():
        raise InvalidInputError(f"{p}: file not found" if not p.exists() else f"{p}: format {fmt!r} reads a file")
    return _READERS[fmt](p, opts)


def count_records(path: str | os.PathLike[str], format: str) -> int | None:
    """A quick estimate of how many records a source holds (for progress bars), or None.

    Lines for JSONL and CSV (blank lines and quoted line breaks make it an upper bound), the row
    count from Parquet metadata, image files for image folders and YOLO.
    """
    p = Path(path)
    fmt = normalise_format(format) if format != "zip" else "zip"
    try:
        if fmt in ("jsonl", "csv") and p.is_file():
            n = 0
            last = b"\n"
            with p.open("rb") as fh:
                while block := fh.read(1 << 20):
                    n += block.count(b"\n")
                    last = block[-1:]
            n += last != b"\n"
            return max(n - (fmt == "csv"), 0)
        if fmt == "parquet":
            import pyarrow.parquet as pq  # loaded on first use: ~30 MB a server without Parquet need not hold

            return int(pq.ParquetFile(p).metadata.num_rows)
        if fmt in ("images", "yolo") and p.is_dir():
            return sum(1 for _ in iter_image_files(p))
    except (OSError, ValueError):  # unreadable (pyarrow.ArrowInvalid is a ValueError): the reader says why
        return None
    return None


def _single_file(folder: Path) -> Path:
    """The one data file of an unpacked archive, or the folder when it holds several files."""
    files = [
        f for f in folder.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts)
    ]
    return files[0] if len(files) == 1 else folder


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What :func:`write_export` wrote."""

    path: Path
    format: str
    n_records: int


def _as_chunks(
    records: Iterable[SourceRecord] | Iterable[list[SourceRecord]], size: int = 10_000
) -> Iterator[list[SourceRecord]]:
    buf: list[SourceRecord] = []
    for r in records:
        if isinstance(r, list):
            if buf:
                yield buf
                buf = []
            yield r
            continue
        buf.append(r)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def write_export(
    records: Iterable[SourceRecord] | Iterable[list[SourceRecord]],
    path: str | os.PathLike[str],
    format: str,
    *,
    labels: Sequence[str] | None = None,
    copy_images: bool = True,
    info: Record | None = None,
) -> ExportSummary:
    """Write records (or chunks of records) to ``path`` in ``format``.

    Parameters
    ----------
    records : iterable of SourceRecord, or of lists of them
        What to write. JSONL, CSV and Parquet stream; COCO and Label Studio build one document.
    path : path-like
        A file for ``jsonl``, ``csv``, ``parquet``, ``coco``, ``labelstudio`` and ``crowd``; a
        folder for ``yolo``, ``voc`` and ``hf``.
    format : str
        One of ``EXPORT_FORMATS``.
    labels : sequence of str, optional
        Class order for COCO category ids and YOLO class indices (default: order of appearance).
    copy_images : bool
        COCO: copy images into ``images/`` beside the JSON (True) or refer to them where they are.
    info : dict, optional
        Written into the file where the format has room (COCO ``info``, Parquet metadata), and into
        ``PATH.meta.json`` beside JSONL and CSV files: for example the dataset name and version.
    """
    fmt = normalise_format(format, allowed=EXPORT_FORMATS)
    out = Path(path)
    if fmt not in ("yolo", "voc", "hf"):
        if out.is_dir():
            raise InvalidInputError(f"{out}: format {fmt!r} writes a file, got a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
    chunks = _as_chunks(records)
    writers: dict[str, Callable[[], int]] = {
        "jsonl": lambda: write_jsonl(chunks, out),
        "csv": lambda: write_csv(chunks, out),
        "parquet": lambda: write_parquet(chunks, out, info=info),
        "coco": lambda: write_coco(chunks, out, labels=labels, copy_images=copy_images, info=info),
        "yolo": lambda: write_yolo(chunks, out, labels=labels),
        "voc": lambda: write_voc(chunks, out),
        "labelstudio": lambda: write_labelstudio(chunks, out),
        "crowd": lambda: write_crowd(chunks, out),
        "hf": lambda: write_hf(chunks, out),
    }
    n = writers[fmt]()
    if info and fmt in ("jsonl", "csv", "crowd", "labelstudio"):
        out.with_name(out.name + ".meta.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    if info and fmt in ("yolo", "voc"):
        (out / "veracity.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return ExportSummary(out, fmt, n)
