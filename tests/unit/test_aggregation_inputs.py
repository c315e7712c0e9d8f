"""Bad or unusual input to ``aggregate`` / ``infer_truth`` / ``Responses``: a clear error or the right result."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.errors import InvalidInputError
from veracity.quality import Responses, aggregate, infer_truth
from veracity.quality._validation import check_codes

METHODS = ["mv", "wmv", "ds", "onecoin", "glad", "mace", "auto"]
LOW_HIGH = [{"worker": "w1", "task": "t1", "label": "low"}, {"worker": "w2", "task": "t1", "label": "high"}]


@pytest.mark.parametrize(
    "labels, gold_label",
    [([0, 1], 2), (["x", "y"], "z"), ([np.str_("x"), np.str_("y")], np.str_("z"))],
    ids=["int", "str", "np.str_"],
)
def test_gold_label_nobody_used_widens_object_classes(labels: list, gold_label: object) -> None:
    records = [{"worker": w, "task": "t", "label": lab} for w, lab in zip("ab", labels, strict=True)]
    records.append({"worker": "a", "task": "u", "label": labels[1]})
    res = aggregate(records, method="mv", gold={"t": gold_label})
    assert res.labels == {"t": gold_label, "u": labels[1]}
    assert res.classes.tolist() == [*labels, gold_label]
    assert res.probas.shape == (2, 3)


def test_gold_label_nobody_used_keeps_a_chosen_class_order() -> None:
    res = aggregate(LOW_HIGH, method="mv", classes=["low", "high"], gold={"t1": "medium"})
    assert res.classes.tolist() == ["low", "high", "medium"]
    assert res.labels == {"t1": "medium"}


@pytest.mark.parametrize("method", ["mv", "ds"])
def test_classes_in_any_order_fix_the_column_order(method: str) -> None:
    res = aggregate(LOW_HIGH, method=method, classes=["low", "medium", "high"], random_state=0)
    assert res.classes.tolist() == ["low", "medium", "high"]
    # one vote each: the tie goes to the first class in the given order
    assert res.labels == {"t1": "low"}
    if method == "mv":
        assert res.probas.tolist() == [[0.5, 0.0, 0.5]]


def test_with_classes_reorders() -> None:
    r = Responses.from_arrays(task=["a", "a", "b"], worker=[1, 2, 1], label=["x", "y", "y"])
    r2 = r.with_classes(["y", "x"])
    assert r2.classes.tolist() == ["y", "x"]
    assert r2.label.tolist() == [1, 0, 0]
    assert r.with_classes(["z", "y", "x"]).label.tolist() == [2, 1, 1]


def test_with_classes_reorders_numbers() -> None:
    r = Responses.from_arrays(task=[1, 1, 2], worker=[1, 2, 1], label=[10, 20, 30])
    assert r.with_classes([30, 10, 20]).label.tolist() == [1, 2, 0]
    with pytest.raises(InvalidInputError, match="label value 20 is not one of the classes"):
        r.with_classes([30, 10])


@pytest.mark.parametrize("method", ["mv", "ds"])
def test_duplicate_classes_are_rejected(method: str) -> None:
    with pytest.raises(InvalidInputError, match="classes must be distinct, got duplicates 'low'"):
        aggregate(LOW_HIGH, method=method, classes=["high", "low", "low"])
    r = Responses.from_arrays(task=[1], worker=[1], label=[1])
    with pytest.raises(InvalidInputError, match="duplicates 1, 2"):
        r.with_classes([1, 2, 2, 1])


def test_classes_must_be_a_sequence() -> None:
    with pytest.raises(InvalidInputError, match="classes must be a sequence"):
        aggregate(LOW_HIGH, method="mv", classes="low")


@pytest.mark.parametrize("method", METHODS)
def test_unanswered_task_gets_the_class_prior(method: str) -> None:
    # task 1 has no answers: its posterior is the prior, never NaN
    res = infer_truth([0, 0, 0], [0, 1, 2], [0, 0, 1], n_tasks=2, n_classes=2, method=method, random_state=0)
    assert not np.isnan(res.probas).any()
    prior = res.priors if res.priors is not None else np.full(2, 0.5)
    np.testing.assert_allclose(res.probas[1], prior)
    np.testing.assert_allclose(res.probas.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["ds", "glad", "mace", "auto"])
def test_unanswered_task_gets_the_prior_under_tempering(method: str) -> None:
    rng = np.random.default_rng(0)
    n = 300
    t = np.repeat(np.arange(n), 3)
    w = rng.integers(0, 10, 3 * n)
    truth = rng.integers(0, 3, n)
    lab = np.where(rng.random(3 * n) < 0.7, truth[t], rng.integers(0, 3, 3 * n))
    res = infer_truth(t, w, lab, n_tasks=n + 2, n_classes=3, method=method, random_state=0, n_iter=1000)
    assert res.priors is not None
    np.testing.assert_allclose(res.probas[n:], np.tile(res.priors, (2, 1)))
    assert res.label_idx[n:].tolist() == [int(np.argmax(res.priors))] * 2


@pytest.mark.parametrize(
    "gold_task_idx, gold_label, message",
    [
        ([0], [7], r"gold_label row 0: code 7 is outside \[0, 2\)"),
        ([0], [-1], r"gold_label row 0: code -1 is outside \[0, 2\)"),
        ([5], [0], r"gold_task_idx row 0: code 5 is outside \[0, 2\)"),
        ([0.7], [1], r"gold_task_idx row 0: expected an integer code, got 0.7"),
        ([0], [1.6], r"gold_label row 0: expected an integer code, got 1.6"),
        ([0], [1e20], r"gold_label row 0: expected an integer code, got 1e\+20"),
        ([0], [1, 0], "must be the same length, got 1 and 2"),
        ([0], None, "must be given together"),
        (["a"], [0], "must hold integer codes"),
    ],
)
def test_infer_truth_checks_gold_codes(gold_task_idx: object, gold_label: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        infer_truth(
            [0, 0, 1],
            [0, 1, 0],
            [0, 1, 1],
            n_tasks=2,
            n_classes=2,
            method="mv",
            gold_task_idx=gold_task_idx,
            gold_label=gold_label,
        )


def test_infer_truth_gold_integral_floats_and_unanswered_gold_task() -> None:
    res = infer_truth(
        [0, 0],
        [0, 1],
        [0, 1],
        n_tasks=2,
        n_classes=2,
        method="ds",
        random_state=0,
        gold_task_idx=np.array([1.0]),
        gold_label=np.array([1.0]),
    )
    assert res.classes.tolist() == [0, 1]
    assert res.probas[1].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    "values, message",
    [
        ([1e20, 1], r"values row 0: expected an integer code, got 1e\+20"),
        ([1.0, float("nan")], r"values row 1: expected an integer code, got nan"),
        (np.array([2**64 - 1], dtype=np.uint64), r"values row 0: code 18446744073709551615 is outside \[0, 2\)"),
        (np.array([True]), "must hold integer codes, got dtype bool"),
        (3, "must be a one-dimensional array"),
        ("01", "must be a one-dimensional array"),
    ],
)
def test_check_codes_reports_the_value_as_given(values: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_codes(values, 2, name="values")


def test_check_codes_accepts_codes() -> None:
    assert check_codes([1.0, 0.0], 2, name="x").tolist() == [1, 0]
    assert check_codes(np.array([1, 0], dtype=np.uint8), 2, name="x").dtype == np.int64
    assert check_codes([], 0, name="x").shape == (0,)


@pytest.mark.parametrize(
    "args, message",
    [
        (("a", 1, "x"), "task must be a one-dimensional array-like of values, got str 'a'"),
        ((["a"], 1, ["x"]), "worker must be a one-dimensional array-like of values, got int 1"),
        ((["a"], [1], None), "label must be a one-dimensional array-like of values, got NoneType"),
    ],
)
def test_from_arrays_rejects_scalars(args: tuple, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Responses.from_arrays(*args)


def test_from_arrays_accepts_iterables() -> None:
    r = Responses.from_arrays(iter(["a", "b"]), (w for w in [1, 2]), ("x", "y"))
    assert (r.n_tasks, r.n_workers, r.n_classes) == (2, 2, 2)
