"""align_tables and detect_drift reject inputs the tests would silently misread."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.align import detect_drift
from veracity.align._table import align_tables
from veracity.errors import InvalidInputError

RNG = np.random.default_rng(0)
NUMBERS = RNG.normal(size=50)


def _with(values: list[object], row: int, value: object) -> np.ndarray:
    out = np.array(values, dtype=object)
    out[row] = value
    return out


@pytest.mark.parametrize(
    ("ref", "cur", "kwargs", "match"),
    [
        # one text cell turns a column of numbers into text: not silently categorical
        (
            {"a": NUMBERS},
            {"a": _with([str(v) for v in NUMBERS + 3], 7, "oops")},
            {},
            r"column 'a' holds numbers in reference but 'oops' \(row 7\) in current; pass categorical=\['a'\]",
        ),
        ({"a": NUMBERS}, {"a": np.r_[NUMBERS[:10], np.full(40, np.inf)]}, {}, r"current column 'a' row 10: .*finite"),
        ({"a": np.r_[-np.inf, NUMBERS]}, {"a": NUMBERS}, {}, r"reference column 'a' row 0: .*finite"),
        ({"a": NUMBERS}, {"a": np.full(50, np.nan)}, {}, r"current column 'a' has no values"),
        ({"a": NUMBERS}, {"a": NUMBERS}, {"categorical": ["zz"]}, r"categorical: no column 'zz' \(has a\)"),
    ],
)
def test_align_tables_rejects(ref: object, cur: object, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        align_tables(ref, cur, **kwargs)


def test_mixed_column_is_categorical_when_asked() -> None:
    cur = _with([str(v) for v in NUMBERS], 7, "oops")
    ref_t, cur_t = align_tables({"a": NUMBERS}, {"a": cur}, categorical=["a"])
    assert ref_t.kinds == cur_t.kinds == {"a": "categorical"}


def test_missing_values_and_an_empty_side_of_a_text_column_are_allowed() -> None:
    ref_t, cur_t = align_tables({"a": np.r_[np.nan, NUMBERS]}, {"a": np.r_[NUMBERS, np.nan]})
    assert ref_t.kinds == cur_t.kinds == {"a": "numeric"}
    # no value at all on the numeric side: categorical on both, as before
    ref_t, cur_t = align_tables({"a": np.full(3, np.nan)}, {"a": np.array(["x", "y", "x"])})
    assert cur_t.kinds == {"a": "categorical"} and ref_t.columns["a"].tolist() == ["<missing>"] * 3


def test_detect_drift_checks_n_clusters() -> None:
    with pytest.raises(InvalidInputError, match="n_clusters must be >= 0"):
        detect_drift(NUMBERS, NUMBERS, n_clusters=-1)
