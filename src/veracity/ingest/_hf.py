"""Hugging Face ``datasets`` directories (``save_to_disk``), only when that package is installed."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from veracity.errors import InvalidInputError
from veracity.ingest._common import ReadOptions, record_from_object, record_to_export
from veracity.ingest.records import SourceRecord

__all__ = ["hf_available", "read_hf", "write_hf"]


def hf_available() -> bool:
    """Whether the optional ``datasets`` package can be imported."""
    return importlib.util.find_spec("datasets") is not None


def _datasets() -> Any:
    if not hf_available():
        raise InvalidInputError("format 'hf' needs the optional package 'datasets' (pip install datasets)")
    return importlib.import_module("datasets")


def write_hf(chunks: Iterable[list[SourceRecord]], folder: Path) -> int:
    """``datasets.Dataset.save_to_disk`` of the export layout (data and annotations as JSON text)."""
    ds_mod = _datasets()
    rows: list[dict[str, Any]] = []
    for chunk in chunks:
        for rec in chunk:
            out = record_to_export(rec)
            rows.append(
                {
                    "id": out["id"],
                    "data": json.dumps(out["data"], ensure_ascii=False),
                    "label": None if out["label"] is None else json.dumps(out["label"]),
                    "confidence": out["confidence"],
                    "annotations": json.dumps(out["annotations"], ensure_ascii=False),
                }
            )
    ds_mod.Dataset.from_list(rows).save_to_disk(str(folder))
    return len(rows)


def read_hf(folder: Path, opts: ReadOptions) -> Iterator[list[SourceRecord]]:
    """Read a ``save_to_disk`` folder written by :func:`write_hf` (or any flat table of records)."""
    ds_mod = _datasets()
    source = str(folder)
    try:
        ds = ds_mod.load_from_disk(str(folder))
    except (OSError, ValueError) as exc:  # missing or unreadable dataset_info/state/arrow files
        raise InvalidInputError(f"{source}: not a readable Hugging Face dataset folder ({exc})") from None
    if not isinstance(ds, ds_mod.Dataset):
        raise InvalidInputError(f"{source}: a DatasetDict (several splits); import one split's folder")
    buf: list[SourceRecord] = []
    for row, obj in enumerate(ds, start=1):
        if isinstance(obj.get("data"), str) and "annotations" in obj:
            try:
                obj = {**obj, "data": json.loads(obj["data"])}
                if isinstance(obj.get("label"), str):
                    obj["label"] = json.loads(obj["label"])
            except json.JSONDecodeError as exc:
                opts.bad(source, row, f"field 'data' or 'label' is not valid JSON ({exc.msg})")
                continue
        rec = record_from_object(obj, source=source, row=row, opts=opts, fmt="hf")
        if rec is not None:
            buf.append(rec)
        if len(buf) >= opts.chunk_size:
            yield buf
            buf = []
    if buf:
        yield buf
