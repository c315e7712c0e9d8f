"""Veracity's decide engine: calibration, conformal prediction sets and decision policies.

Pure numpy/scipy: no I/O, no database, no pandas at import. Usable as a library on its own.

>>> from veracity.decide import SplitConformal
>>> # cp = SplitConformal(coverage=0.9, score="aps").fit(cal_probs, cal_labels)
>>> # sets = cp.predict_sets(test_probs)     # bool (n, k), never empty unless allow_empty=True
"""

from __future__ import annotations

from veracity.decide.calibration import (
    IsotonicCalibrator,
    ReliabilityDiagram,
    TemperatureScaling,
    expected_calibration_error,
    isotonic_regression,
    reliability_diagram,
)
from veracity.decide.conformal import (
    SCORES,
    CoverageWarning,
    SetEvaluation,
    SplitConformal,
    conformal_quantile,
    evaluate_sets,
)
from veracity.decide.policy import (
    ACCEPT,
    CALIBRATIONS,
    REVIEW,
    DecisionPolicy,
    Decisions,
    PolicyPredictor,
    RiskCoverageCurve,
    decide,
    risk_coverage_curve,
)

__all__ = [
    "ACCEPT",
    "CALIBRATIONS",
    "REVIEW",
    "SCORES",
    "CoverageWarning",
    "DecisionPolicy",
    "Decisions",
    "IsotonicCalibrator",
    "PolicyPredictor",
    "ReliabilityDiagram",
    "RiskCoverageCurve",
    "SetEvaluation",
    "SplitConformal",
    "TemperatureScaling",
    "conformal_quantile",
    "decide",
    "evaluate_sets",
    "expected_calibration_error",
    "isotonic_regression",
    "reliability_diagram",
    "risk_coverage_curve",
]
