"""Helpers for the bulk paths (file imports, REST imports, exports)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk operation runs (reference counting goes on).

    A chunk of 20,000 records is ~100,000 container objects that all stay alive until the chunk
    is stored, so the collector's generation scans find nothing to free yet cost about a third of
    an import's CPU. The records hold no reference cycles. Nested and concurrent uses (two
    imports in one server) share one pause; the collector is restored when the last one ends.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
