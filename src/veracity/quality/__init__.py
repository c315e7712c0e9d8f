"""Veracity's quality engine: truth inference, agreement and label checks on numpy arrays.

Pure numpy/scipy: no I/O, no database, no pandas at import. Usable as a library on its own.

>>> from veracity.quality import aggregate, agreement
"""

from __future__ import annotations

from veracity.quality._base import AggregationResult
from veracity.quality.aggregation import aggregate, infer_truth
from veracity.quality.agreement import agreement
from veracity.quality.data_issues import find_data_issues
from veracity.quality.label_errors import cross_val_pred_probs, find_label_issues
from veracity.quality.responses import Responses

__all__ = [
    "AggregationResult",
    "Responses",
    "aggregate",
    "agreement",
    "cross_val_pred_probs",
    "find_data_issues",
    "find_label_issues",
    "infer_truth",
]
