"""Input handling of label-shift estimation (veracity.align.label_shift)."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.align import estimate_label_shift
from veracity.align.label_shift import em_prior_adjustment
from veracity.errors import InvalidInputError

RNG = np.random.default_rng(0)
PROBS = RNG.dirichlet(np.ones(3), size=60)
LABELS = np.arange(60) % 3


@pytest.mark.parametrize("method", ["bbse", "em"])
def test_class_absent_from_source_labels_is_rejected(method: str) -> None:
    with pytest.raises(InvalidInputError, match="source_labels has no item of class 2"):
        estimate_label_shift(PROBS, LABELS % 2, PROBS, method=method)


@pytest.mark.parametrize("method", ["bbse", "em"])
@pytest.mark.parametrize(("factor", "name"), [(7.0, "source_probs"), (0.5, "target_probs")])
def test_rows_that_are_not_probabilities_are_rejected(method: str, factor: float, name: str) -> None:
    source = PROBS * factor if name == "source_probs" else PROBS
    target = PROBS * factor if name == "target_probs" else PROBS
    with pytest.raises(InvalidInputError, match=f"{name} row 0 is not a probability vector"):
        estimate_label_shift(source, LABELS, target, method=method)


def test_rows_within_tolerance_are_renormalised() -> None:
    a = estimate_label_shift(PROBS, LABELS, PROBS * (1 + 5e-4), method="em")
    b = estimate_label_shift(PROBS, LABELS, PROBS, method="em")
    np.testing.assert_allclose(a.target_priors, b.target_priors)


@pytest.mark.parametrize("method", ["bbse", "em"])
def test_class_count_mismatch_names_target_probs(method: str) -> None:
    target = PROBS[:, :2] / PROBS[:, :2].sum(axis=1, keepdims=True)
    with pytest.raises(InvalidInputError, match="target_probs must have 3 columns"):
        estimate_label_shift(PROBS, LABELS, target, method=method)


def test_em_source_priors_length_names_target_probs_columns() -> None:
    with pytest.raises(InvalidInputError, match="source_priors has 3 values but target_probs has 2 columns"):
        em_prior_adjustment(np.full((4, 2), 0.5), [0.2, 0.3, 0.5])
