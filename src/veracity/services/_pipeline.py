"""Item rows of a file import, read in this process or in a second one while this one stores.

An import without a project stores each record as one ``items`` row and its labels as
``item_labels`` rows. :func:`item_rows` turns a chunk of records into those rows, ready for
:func:`veracity.services._bulk.insert_rows`. For a large source, :func:`rows_in_process` runs
the reader (parse, check, canonical JSON, sha256) and :func:`item_rows` in a worker process
and receives the flat tuples (cheap to pickle), so that reading uses the second core fully
instead of sharing the GIL with the thread that writes to the database.

Nothing changes for the caller but where the work runs: chunks come in source order, bad rows
are handed to ``on_bad`` (``skip_bad``) before the chunk they were read with, and the first bad
row without ``skip_bad`` raises the same :class:`~veracity.errors.InvalidInputError` (file,
row, reason) after the chunks read before it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from veracity import errors
from veracity.ingest import BadRow, SourceRecord, infer_kind, read_source
from veracity.ingest.records import canonical_json as fast_canonical_json
from veracity.ingest.records import hash_keys
from veracity.services._common import canonical_json

__all__ = ["PROCESS_MIN_ROWS", "LabelRow", "RowChunk", "can_use_process", "item_rows", "rows_in_process"]

#: Sources with at least this many rows (by :func:`veracity.ingest.sources.count_records`) are
#: read in a worker process; smaller ones in a thread (starting a process costs ~0.3 s).
PROCESS_MIN_ROWS = 50_000

#: ``(external_id, data JSON, content_hash, hash_key, source, source_row, sensitivity)``: an
#: ``items`` row (``services._bulk.IMPORT_ITEM_COLUMNS``; the dataset and batch are the import's).
ItemRow = tuple[str | None, str, str, int, str, int, int]
#: ``(index of the record's row in the chunk's items, kind, value JSON, annotator, origin,
#: status)``: an ``item_labels`` row (``IMPORT_LABEL_COLUMNS``) before its item has an id.
LabelRow = tuple[int, str, str, str | None, str, str]
#: The item rows and label rows of one chunk.
RowChunk = tuple[list[ItemRow], list[LabelRow]]


def _label_json(value: Any) -> str:
    """The JSON text of a label value (strings, the usual case, without the general encoder)."""
    if type(value) is str:
        return _json_string(value)
    try:
        return fast_canonical_json(value)
    except (TypeError, ValueError):  # NaN from a Parquet cell, say
        return canonical_json(value)


_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def item_row(r: SourceRecord, key: int) -> ItemRow:
    """The :data:`ItemRow` of record ``r`` whose content hash has the key ``key`` (``hash_keys``)."""
    return (r.external_id, r.data_json or canonical_json(r.data), r.content_hash, key, r.source, r.row,
            r.meta.get("sensitivity", 0))


def item_rows(chunk: list[SourceRecord]) -> RowChunk:
    """The ``items`` rows and label rows of a chunk (:data:`ItemRow`, :data:`LabelRow`).

    Labels are the record's annotations (status ``active``) and the ones ontology mapping parked
    (``meta["parked_annotations"]``, status ``parked``, the reason appended to the origin).
    """
    keys = hash_keys([r.content_hash for r in chunk])
    items = [item_row(r, key) for r, key in zip(chunk, keys, strict=True)]
    labels: list[LabelRow] = []
    add = labels.append
    for i, rec in enumerate(chunk):
        for ann in rec.annotations:
            value = ann["value"]
            annotator = ann.get("annotator")
            add(
                (
                    i,
                    ann.get("kind") or infer_kind(value),
                    _label_json(value),
                    annotator if annotator is None or type(annotator) is str else str(annotator),
                    ann.get("origin") or "",
                    "active",
                )
            )
        if rec.meta:
            for ann in rec.meta.get("parked_annotations", ()):
                value, annotator = ann["value"], ann.get("annotator")
                reason = f" ({ann['reason']})" if ann.get("reason") else ""
                add(
                    (
                        i,
                        ann.get("kind") or infer_kind(value),
                        _label_json(value),
                        None if annotator is None else str(annotator),
                        f"{ann.get('origin') or ''}{reason}",
                        "parked",
                    )
                )
    for row in labels:
        if len(row[1]) > 20 or (row[3] is not None and len(row[3]) > 120):  # column widths (rare)
            labels = [(r[0], r[1][:20], r[2], None if r[3] is None else r[3][:120], *r[4:]) for r in labels]
            break
    return items, labels


# --------------------------------------------------------------------------- the worker process
def _produce(conn: Connection, spec: dict[str, Any]) -> None:
    """Worker: read the source and send ``("chunk", items, labels, bad)`` messages, then one ``end`` or error."""
    gc.disable()  # the chunk's objects live until sent; nothing cyclic (see _bulk.gc_paused)
    bad: list[tuple[str, int, str, str | None]] = []

    def on_bad(row: BadRow) -> None:
        bad.append((row.source, row.row, row.reason, row.raw))

    try:
        try:
            chunks = read_source(
                spec["source"], spec["format"], on_bad_row=on_bad if spec["skip_bad"] else None, **spec["read"]
            )
            for chunk in chunks:
                items, labels = item_rows(chunk)
                del chunk
                conn.send(("chunk", items, labels, bad))
                bad = []
            conn.send(("end", bad))
        except errors.VeracityError as exc:
            conn.send(("error", type(exc).__name__, exc.message, exc.code, exc.details))
        except Exception as exc:
            try:
                conn.send(("raise", exc))
            except Exception:
                conn.send(("raise", RuntimeError(f"{type(exc).__name__}: {exc}")))
    except OSError:
        pass  # the importer stopped listening (it failed or was interrupted)
    finally:
        conn.close()


def _main(fd: str, spec: str) -> None:
    """Entry point of the worker process (see :func:`rows_in_process`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the importer, which stops this process
    _produce(Connection(int(fd), readable=False), json.loads(spec))


# The worker is a fresh interpreter started by subprocess, not by multiprocessing: "spawn" and
# "forkserver" import the caller's __main__ again (a script without a __main__ guard would run
# twice), and "fork" copies a process that holds database connections and threads.
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from veracity.services._pipeline import _main; _main(*sys.argv[2:])"
)


def _rebuild(name: str, message: str, code: str, details: Any) -> errors.VeracityError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.VeracityError)):
        cls = errors.VeracityError
    return cls(message, code=code, details=details)


def can_use_process() -> bool:
    """Whether :func:`rows_in_process` can start its worker here (POSIX, a Python executable)."""
    return os.name == "posix" and bool(sys.executable)


def rows_in_process(
    source: str | os.PathLike[str],
    fmt: str,
    *,
    on_bad: Callable[[BadRow], None] | None = None,
    **read_options: Any,
) -> Iterator[RowChunk]:
    """The :func:`item_rows` of every chunk of ``read_source(source, fmt, **read_options)``, read in a worker process.

    The worker reads one chunk ahead (the pipe holds one message). ``on_bad`` (given: bad rows
    are skipped and handed to it, in order) runs in this process. Closing the iterator early
    stops the worker.
    """
    spec = {
        "source": str(Path(source)),
        "format": fmt,
        "read": read_options,
        "skip_bad": on_bad is not None,
    }
    read_fd, write_fd = os.pipe()
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(write_fd), json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # the worker holds the only writing end: its exit ends the pipe
    receiver = Connection(read_fd, writable=False)
    finished = False
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                code = worker.wait()
                raise errors.VeracityError(
                    f"{source}: the reader process stopped unexpectedly (exit code {code})"
                ) from None
            kind = message[0]
            if kind == "chunk":
                _, items, labels, bad = message
                if on_bad is not None:
                    for row in bad:
                        on_bad(BadRow(*row))
                yield items, labels
            elif kind == "end":
                if on_bad is not None:
                    for row in message[1]:
                        on_bad(BadRow(*row))
                finished = True
                return
            elif kind == "error":
                raise _rebuild(*message[1:])
            else:
                raise message[1]
    finally:
        receiver.close()
        if not finished and worker.poll() is None:
            worker.terminate()
        worker.wait()
