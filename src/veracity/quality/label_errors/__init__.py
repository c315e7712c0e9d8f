"""Label issues: find items whose given label is likely wrong (confident learning) and rank them.

Public functions take ``labels`` (n_items,) and out-of-sample ``pred_probs`` (n_items, n_classes)
as numpy arrays; see :func:`find_label_issues`.
"""

from __future__ import annotations

from veracity.quality.label_errors._checks import validate_label_inputs
from veracity.quality.label_errors.count import (
    calibrate_confident_joint,
    compute_confident_joint,
    confident_thresholds,
    estimate_noise_matrices,
)
from veracity.quality.label_errors.crossval import cross_val_pred_probs
from veracity.quality.label_errors.filter import FILTER_METHODS, LabelIssues, find_label_issues
from veracity.quality.label_errors.rank import RANKING_METHODS, get_label_quality_scores

__all__ = [
    "FILTER_METHODS",
    "RANKING_METHODS",
    "LabelIssues",
    "calibrate_confident_joint",
    "compute_confident_joint",
    "confident_thresholds",
    "cross_val_pred_probs",
    "estimate_noise_matrices",
    "find_label_issues",
    "get_label_quality_scores",
    "validate_label_inputs",
]
