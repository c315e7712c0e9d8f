"""numpy <-> Arrow helpers of the CLI (``veracity.cli._arrow``): the same values as pyarrow's own
conversions, and ``veracity aggregate`` no longer imports pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from veracity.cli._arrow import as_objects, from_numpy, to_numpy

NUMBER_DTYPES = st.sampled_from([np.int8, np.int32, np.int64, np.uint16, np.uint64, np.float32, np.float64])


@given(hnp.arrays(NUMBER_DTYPES, st.integers(0, 50)), st.integers(0, 5), st.integers(0, 5))
def test_round_trip_keeps_values_and_type(values: np.ndarray, lo: int, cut: int) -> None:
    arr = from_numpy(values)
    assert arr.type == pa.from_numpy_dtype(values.dtype)
    assert arr.null_count == 0
    np.testing.assert_array_equal(to_numpy(arr), values)
    # a slice has an offset into its buffer
    part = arr.slice(min(lo, len(values)), cut)
    np.testing.assert_array_equal(to_numpy(part), values[min(lo, len(values)) :][:cut])
    np.testing.assert_array_equal(to_numpy(part), part.to_numpy(zero_copy_only=False))


def test_from_numpy_copies_and_refuses_other_shapes() -> None:
    x = np.arange(4)
    arr = from_numpy(x)
    x[0] = 99
    assert arr.to_pylist() == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="1-d array of numbers"):
        from_numpy(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="1-d array of numbers"):
        from_numpy(np.array(["a"]))


@given(st.lists(st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), max_size=20), min_size=1, max_size=4))
def test_chunked_arrays_and_nulls(chunks: list[list[int | None]]) -> None:
    col = pa.chunked_array(chunks, type=pa.int64())
    flat = [v for c in chunks for v in c]
    if any(v is None for v in flat):
        with pytest.raises(TypeError, match="without nulls"):
            to_numpy(col)
        expected = np.array([np.nan if v is None else v for v in flat], dtype=float)
        np.testing.assert_array_equal(to_numpy(col, nulls_as_nan=True), expected)
    else:
        np.testing.assert_array_equal(to_numpy(col), np.array(flat, dtype=np.int64))


def test_to_numpy_refuses_text_and_as_objects_keeps_it() -> None:
    texts = pa.chunked_array([["b", "a"], ["c"]])
    with pytest.raises(TypeError, match="expected numbers"):
        to_numpy(texts)
    out = as_objects(texts)
    assert out.dtype == object and out.tolist() == ["b", "a", "c"]


def test_aggregate_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas for ``pa.array`` and ``to_numpy``; the aggregate command avoids both
    (with gold too), so a run does not load pandas at all."""
    answers = tmp_path / "answers.csv"
    answers.write_text("worker,task,label\nw1,t1,a\nw2,t1,a\nw3,t1,b\nw1,t2,b\nw2,t2,b\nw3,t2,b\n", encoding="utf-8")
    gold = tmp_path / "gold.csv"
    gold.write_text("task,label\nt1,a\nt9,b\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from veracity.cli import main\n"
        f"sys.argv = ['veracity', 'aggregate', {str(answers)!r}, '--out', {str(tmp_path / 'out.csv')!r},"
        f" '--workers-out', {str(tmp_path / 'workers.csv')!r}, '--gold', {str(gold)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
    rows = [line.split(",") for line in (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()]
    assert [r[:2] for r in rows] == [['"task"', '"label"'], ['"t1"', '"a"'], ['"t2"', '"b"']]
    assert rows[1][2] == "1"  # gold is kept, with full confidence
    assert 0.5 < float(rows[2][2]) <= 1.0
