"""Responses: coding of ids and labels, constructors, duplicates, errors."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.errors import InvalidInputError
from veracity.quality import Responses
from veracity.quality._validation import as_responses, check_random_state


def test_from_arrays_codes_sorted_values() -> None:
    r = Responses.from_arrays(task=["t2", "t1", "t2"], worker=[5, 7, 7], label=["b", "a", "a"])
    assert r.task_ids.tolist() == ["t1", "t2"]
    assert r.task_idx.tolist() == [1, 0, 1]
    assert r.worker_ids.tolist() == [5, 7]
    assert r.classes.tolist() == ["a", "b"]
    assert r.label.tolist() == [1, 0, 0]
    assert (r.n_responses, r.n_tasks, r.n_workers, r.n_classes) == (3, 2, 2, 2)


def test_integer_labels_sort_numerically() -> None:
    r = Responses.from_arrays(task=[1, 1, 1], worker=[1, 2, 3], label=[10, 2, 1])
    assert r.classes.tolist() == [1, 2, 10]


def test_classes_widen_label_set() -> None:
    r = Responses.from_arrays(task=[1], worker=[1], label=["b"], classes=["a", "b", "c"])
    assert r.n_classes == 3
    assert r.label.tolist() == [1]


def test_label_outside_classes_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="'z' is not one of the classes"):
        Responses.from_arrays(task=[1], worker=[1], label=["z"], classes=["a", "b"])


def test_length_mismatch_names_sizes() -> None:
    with pytest.raises(InvalidInputError, match="got 2, 1 and 1"):
        Responses.from_arrays(task=[1, 2], worker=[1], label=[0])


def test_missing_value_names_row() -> None:
    with pytest.raises(InvalidInputError, match="label is missing at row 1"):
        Responses.from_arrays(task=[1, 2], worker=[1, 1], label=["a", None])


def test_from_codes_checks_ranges() -> None:
    r = Responses.from_codes([0, 1], [0, 0], [1, 0], n_tasks=3, n_classes=2)
    assert r.n_tasks == 3
    with pytest.raises(InvalidInputError, match=r"label codes must lie in \[0, 2\)"):
        Responses.from_codes([0], [0], [2], n_classes=2)
    with pytest.raises(InvalidInputError, match="integer codes"):
        Responses.from_codes([0.5], [0], [0])


def test_from_records_and_missing_field() -> None:
    r = Responses.from_records([{"worker": "w", "task": "t", "label": 1}])
    assert r.n_responses == 1
    with pytest.raises(InvalidInputError, match="record 0 has no field 'label'"):
        Responses.from_records([{"worker": "w", "task": "t"}])


def test_deduplicate_keeps_last_or_first() -> None:
    r = Responses.from_arrays(task=[1, 1, 1], worker=["a", "a", "b"], label=["x", "y", "x"])
    assert r.deduplicate("last").label.tolist() == [1, 0]
    assert r.deduplicate("first").label.tolist() == [0, 0]


def test_vote_counts() -> None:
    r = Responses.from_arrays(task=[1, 1, 2], worker=[1, 2, 1], label=[0, 1, 1])
    np.testing.assert_array_equal(r.vote_counts(), [[1, 1], [0, 1]])


def test_as_responses_accepts_frames_arrow_mappings() -> None:
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    cols = {"worker": ["a", "b"], "task": [1, 1], "label": ["x", "y"], "extra": [0, 0]}
    for obj in (cols, pa.table(cols), pd.DataFrame(cols)):
        r = as_responses(obj)
        assert (r.n_responses, r.n_classes) == (2, 2)
    with pytest.raises(InvalidInputError, match="missing label"):
        as_responses({"worker": [1], "task": [1]})


def test_frames_round_trip() -> None:
    pytest.importorskip("pandas")
    import pandas as pd

    from veracity.quality import aggregate
    from veracity.quality.frames import from_frame, result_to_frame

    df = pd.DataFrame({"worker": ["a", "b", "c"], "task": [1, 1, 1], "label": ["x", "x", "y"]})
    r = from_frame(df)
    assert r.n_responses == 3
    out = result_to_frame(aggregate(df, method="mv"))
    assert out.to_dict("records") == [{"task": 1, "label": "x", "confidence": pytest.approx(2 / 3)}]


def test_random_state_is_never_global() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    g = check_random_state(5)
    g.random(3)
    assert np.array_equal(np.random.get_state()[1], before)
    assert check_random_state(g) is g
    with pytest.raises(InvalidInputError):
        check_random_state("seed")  # type: ignore[arg-type]


def test_nan_in_an_arrow_column_is_missing() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"task": [1, 1, 2], "worker": [1, 2, 1], "label": [1.0, 2.0, np.nan]})
    with pytest.raises(InvalidInputError, match=r"label is missing \(NaN\) at row 2"):
        as_responses(table)
    assert as_responses(table.slice(0, 2)).classes.tolist() == [1.0, 2.0]
