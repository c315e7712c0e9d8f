"""align_tables and detect_drift reject inputs the tests would silently misread."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.align import detect_drift
from veracity.align._table import MAX_CATEGORY_CHARS, align_tables
from veracity.align.univariate import chi2_test
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


def test_long_category_values_are_shortened_but_kept_apart() -> None:
    """One 300,000-character cell used to widen the whole column's string array (a drift test took
    160 s); long values now become a prefix and a digest: equal values stay equal, different ones
    (even with the same prefix) stay different, and the counts are those of the raw values."""
    a, b = "x" * 300_000, "x" * 299_999 + "y"
    ref = {"c": np.array(["u", "v"] * 50 + [a, a], dtype=object)}
    cur = {"c": np.array(["u", "v"] * 50 + [a, b], dtype=object)}
    r, c = align_tables(ref, cur)
    assert r.columns["c"].dtype.itemsize // 4 <= MAX_CATEGORY_CHARS
    assert r.columns["c"][-1] == r.columns["c"][-2] == c.columns["c"][-2] != c.columns["c"][-1]
    assert c.columns["c"][-1].startswith("x" * 64) and "300,000 characters" in c.columns["c"][-1]
    _stat, p, levels, rc, cc = chi2_test(ref["c"], cur["c"])
    assert len(levels) == 4 and sorted(rc.tolist()) == [0, 2, 50, 50] and sorted(cc.tolist()) == [1, 1, 50, 50]
    report = detect_drift(ref, cur, random_state=0)
    feature = report.per_feature[0]
    assert feature.test == "chi2" and feature.p_value == pytest.approx(p)
    slices = [s for s in report.slices if s.feature == "c"]
    assert c.columns["c"][-1] in {s.value for s in slices}  # b: only in current


def test_chi2_counts_match_a_direct_count() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 7, 500).astype(str), rng.integers(2, 9, 300)
    _, _, levels, rc, cc = chi2_test(ref, cur)
    assert levels == sorted({*ref.tolist(), *map(str, cur.tolist())})
    assert rc.tolist() == [float(np.sum(ref == v)) for v in levels]
    assert cc.tolist() == [float(np.sum(cur.astype(str) == v)) for v in levels]
