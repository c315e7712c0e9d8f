"""Veracity's align engine: drift between training and operational data, label shift, coverage.

Pure numpy/scipy: no I/O, no database, no pandas at import. Usable as a library on its own.

>>> from veracity.align import detect_drift
>>> # report = detect_drift(reference, current, method="auto", alpha=0.05)
>>> # report.drift, report.p_value, report.per_feature, report.slices, report.to_html()
"""

from __future__ import annotations

from veracity.align.drift import METHODS, DriftReport, FeatureDrift, detect_drift
from veracity.align.label_shift import LabelShiftResult, bbse, em_prior_adjustment, estimate_label_shift, reweight_probs
from veracity.align.multivariate import TwoSampleTest, classifier_two_sample_test, mmd_test
from veracity.align.slices import Slice, category_slices, cluster_slices, kmeans
from veracity.align.univariate import (
    CORRECTIONS,
    adjust_p_values,
    chi2_test,
    ks_test,
    psi_categorical,
    psi_numeric,
)

__all__ = [
    "CORRECTIONS",
    "METHODS",
    "DriftReport",
    "FeatureDrift",
    "LabelShiftResult",
    "Slice",
    "TwoSampleTest",
    "adjust_p_values",
    "bbse",
    "category_slices",
    "chi2_test",
    "classifier_two_sample_test",
    "cluster_slices",
    "detect_drift",
    "em_prior_adjustment",
    "estimate_label_shift",
    "kmeans",
    "ks_test",
    "mmd_test",
    "psi_categorical",
    "psi_numeric",
    "reweight_probs",
]
