"""Undo of an annotator's last submission: see :func:`veracity.services.tasks.undo_last_annotation`."""

from __future__ import annotations

from veracity.services.tasks import undo_last_annotation

__all__ = ["undo_last_annotation"]
