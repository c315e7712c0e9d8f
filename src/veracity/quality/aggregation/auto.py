"""``auto``: choose a truth-inference model per data set without gold labels."""

from __future__ import annotations

from veracity.quality.aggregation.dawid_skene import DawidSkene

__all__ = ["AutoAggregator"]


class AutoAggregator(DawidSkene):
    """Placeholder: Dawid-Skene."""

    method = "auto"
