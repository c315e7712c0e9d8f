"""agreement(): ordered categoricals, reliability matrices and bootstrap options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from veracity.errors import InvalidInputError
from veracity.quality import agreement

CATS = ["low", "mid", "high"]
LAB = ["low", "mid", "mid", "high", "low", "low", "high", "high"]


def _frame(labels):
    return pd.DataFrame({"task": [1, 1, 2, 2, 3, 3, 4, 4], "worker": ["a", "b"] * 4, "label": labels})


@pytest.mark.parametrize(("metric", "level"), [("krippendorff", "ordinal"), ("cohen", "ordinal")])
def test_ordered_categorical_uses_category_order(metric, level):
    ordered = _frame(pd.Categorical(LAB, categories=CATS, ordered=True))
    codes = _frame([CATS.index(v) for v in LAB])
    assert agreement(ordered, metric=metric, level=level) == pytest.approx(agreement(codes, metric=metric, level=level))


def test_ordered_categorical_of_strings_is_not_interval():
    ordered = _frame(pd.Categorical(LAB, categories=CATS, ordered=True))
    with pytest.raises(InvalidInputError, match="numeric labels"):
        agreement(ordered, level="interval")


def test_reliability_matrix_rejects_inf():
    with pytest.raises(InvalidInputError, match="rater 0, unit 2: values must be finite"):
        agreement(np.array([[0, 1, np.inf], [0, 1, 1.0]]), level="interval")


def test_reliability_matrix_nan_is_missing():
    full = agreement(np.array([[0, 1, 2], [0, 1, 1.0]]))
    with_gap = agreement(np.array([[0, 1, 2, np.nan], [0, 1, 1, 2.0]]))
    assert with_gap == pytest.approx(full)


def test_three_d_array_is_rejected():
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        agreement(np.zeros((2, 2, 2)))


def test_list_matrix_is_a_reliability_matrix():
    assert agreement([[0, 1, 2], [0, 1, 1]]) == pytest.approx(agreement(np.array([[0, 1, 2], [0, 1, 1]])))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ci": "x"}, "ci must be a number"),
        ({"ci": float("nan")}, "ci must be a number"),
        ({"ci": 0.9, "n_boot": "x"}, "n_boot must be an integer"),
        ({"ci": 0.9, "n_boot": 0.5}, "n_boot must be an integer"),
    ],
)
def test_bootstrap_options(kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        agreement({"task": [1, 1, 2, 2], "worker": ["a", "b"] * 2, "label": [0, 0, 1, 1]}, **kwargs)


def test_huge_interval_values_do_not_overflow():
    data = {"task": [1, 1, 2, 2, 3, 3], "worker": ["a", "b"] * 3, "label": [1e300, 1e300, -1e300, -1e300, 0, 0]}
    with np.errstate(over="raise"):
        assert agreement(data, level="interval") == pytest.approx(1.0)
