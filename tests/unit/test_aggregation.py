"""Truth inference: known answers, edge cases, gold, determinism and properties."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from veracity.errors import ConvergenceWarning, InvalidInputError
from veracity.quality import Responses, aggregate, infer_truth
from veracity.quality.aggregation import AGGREGATORS, DawidSkene, MajorityVote, _confusion
from veracity.quality.aggregation._confusion import GOLD_CALIBRATION_MIN
from veracity.quality.aggregation._em import gold_temperature_and_score

DATA = Path(__file__).resolve().parents[1] / "data" / "crowd_bluebirds"
METHODS = list(AGGREGATORS)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def bluebirds() -> tuple[list[dict[str, str]], dict[str, str]]:
    answers = read_csv(DATA / "answers.csv")
    gold = {r["task"]: r["label"] for r in read_csv(DATA / "gold.csv")}
    return answers, gold


def accuracy(labels: dict[object, object], gold: dict[str, str]) -> float:
    return float(np.mean([labels[t] == g for t, g in gold.items()]))


def small_crowd(n_tasks: int = 400, n_workers: int = 30, k: int = 3, seed: int = 0) -> tuple[Responses, np.ndarray]:
    """Good workers (80% right), 20% spammers who always answer class 0."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_tasks)
    t = np.repeat(np.arange(n_tasks), 5)
    w = rng.integers(0, n_workers, t.size)
    spam = np.arange(n_workers) < n_workers // 5
    right = rng.random(t.size) < 0.8
    lab = np.where(right, truth[t], (truth[t] + rng.integers(1, k, t.size)) % k)
    lab = np.where(spam[w], 0, lab)
    return Responses.from_codes(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=k), truth


# ---------------------------------------------------------------- known answers
def test_bluebirds_majority_vote_known_accuracy(bluebirds) -> None:
    answers, gold = bluebirds
    res = aggregate(answers, method="mv")
    assert accuracy(res.labels, gold) == pytest.approx(82 / 108)


def test_bluebirds_dawid_skene_beats_majority_vote(bluebirds) -> None:
    answers, gold = bluebirds
    res = aggregate(answers, method="ds", random_state=0)
    assert accuracy(res.labels, gold) >= 0.87
    assert res.confusions is not None and res.confusions.shape == (39, 2, 2)
    np.testing.assert_allclose(res.confusions.sum(axis=2), 1.0)


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace", "glad", "wmv", "auto"])
def test_every_method_beats_chance_on_a_crowd_with_spammers(method: str) -> None:
    responses, truth = small_crowd()
    res = aggregate(responses, method=method, random_state=0)
    acc = float((res.label_idx == truth).mean())
    mv = float((aggregate(responses, method="mv").label_idx == truth).mean())
    assert acc >= mv - 0.01, (method, acc, mv)
    assert acc > 0.85


def test_model_based_methods_find_the_spammers() -> None:
    responses, _ = small_crowd()
    res = aggregate(responses, method="ds", random_state=0)
    spam = np.arange(30) < 6
    assert res.worker_accuracy[spam].max() < res.worker_accuracy[~spam].min()


# ---------------------------------------------------------------- result shape
@pytest.mark.parametrize("method", METHODS)
def test_result_contract(method: str) -> None:
    answers = {
        "worker": ["a", "b", "c", "a", "b", "c", "a"],
        "task": ["t1", "t1", "t1", "t2", "t2", "t2", "t3"],
        "label": ["cat", "cat", "dog", "dog", "dog", "dog", "cat"],
    }
    res = aggregate(answers, method=method, random_state=0)
    assert set(res.labels) == {"t1", "t2", "t3"}
    assert res.labels["t2"] == "dog"
    assert set(res.workers) == {"a", "b", "c"}
    assert all(0.0 <= c <= 1.0 for c in res.confidence.values())
    np.testing.assert_allclose(res.probas.sum(axis=1), 1.0)
    assert res.probas.shape == (3, 2)


def test_tie_break_goes_to_smallest_label() -> None:
    res = aggregate({"worker": [1, 2], "task": [1, 1], "label": ["b", "a"]}, method="mv")
    assert res.labels == {1: "a"}
    assert res.confidence == {1: 0.5}


def test_duplicate_answers_count_as_votes() -> None:
    answers = {"worker": ["a", "a", "b"], "task": [1, 1, 1], "label": ["x", "x", "y"]}
    assert aggregate(answers, method="mv").labels == {1: "x"}
    dedup = Responses.from_arrays(answers["task"], answers["worker"], answers["label"]).deduplicate()
    assert aggregate(dedup, method="mv").labels == {1: "x"}  # 1-1 tie -> smallest label


def test_integer_labels_and_unused_classes() -> None:
    res = aggregate(
        {"worker": [1, 2, 3], "task": [7, 7, 8], "label": [2, 2, 0]}, method="ds", classes=[0, 1, 2], random_state=0
    )
    assert res.labels == {7: 2, 8: 0}
    assert res.probas.shape == (2, 3)


def test_single_answer_task_and_worker() -> None:
    res = aggregate({"worker": ["solo"], "task": ["only"], "label": ["x"]}, method="ds")
    assert res.labels == {"only": "x"}
    assert res.confidence["only"] == pytest.approx(1.0)


# ---------------------------------------------------------------- errors and warnings
def test_empty_input_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        aggregate({"worker": [], "task": [], "label": []})
    with pytest.raises(InvalidInputError, match="empty"):
        aggregate([])


def test_unknown_method_and_missing_column() -> None:
    with pytest.raises(InvalidInputError, match="method must be one of"):
        aggregate({"worker": [1], "task": [1], "label": [1]}, method="nope")
    with pytest.raises(InvalidInputError, match="missing worker"):
        aggregate({"task": [1], "label": [1]})


def test_iteration_cap_warns() -> None:
    responses, _ = small_crowd()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        DawidSkene(n_iter=1).fit(responses)


# ---------------------------------------------------------------- gold
def test_gold_is_never_overwritten() -> None:
    answers = {"worker": ["a", "b", "c"], "task": [1, 1, 1], "label": ["x", "x", "x"]}
    for method in METHODS:
        res = aggregate(answers, method=method, gold={1: "y"}, random_state=0)
        assert res.labels == {1: "y"}, method
        assert res.confidence == {1: 1.0}


def test_gold_anchors_worker_skill() -> None:
    """A crowd whose majority is adversarial: only gold can tell which side is right."""
    rng = np.random.default_rng(1)
    n = 300
    truth = rng.integers(0, 2, n)
    t = np.repeat(np.arange(n), 3)
    w = np.tile([0, 1, 2], n)
    lab = np.where(w == 0, truth[t], 1 - truth[t])  # workers 1 and 2 always flip
    responses = Responses.from_codes(t, w, lab)
    plain = aggregate(responses, method="ds", random_state=0)
    assert (plain.label_idx == truth).mean() < 0.1
    gold = (np.arange(20), truth[:20])
    anchored = aggregate(responses, method="ds", gold=gold, random_state=0)
    assert (anchored.label_idx == truth).mean() == 1.0
    assert anchored.worker_accuracy[0] > 0.9 > 0.1 > anchored.worker_accuracy[1]


def test_gold_label_outside_answers_widens_classes() -> None:
    for method in METHODS:
        res = aggregate({"worker": [1, 2], "task": [1, 2], "label": ["a", "a"]}, method=method, gold={2: "b"})
        assert res.classes.tolist() == ["a", "b"]
        assert res.labels[2] == "b"
        assert res.probas.shape == (2, 2)


def shared_mistakes_crowd(n: int = 1500, k: int = 3, seed: int = 0) -> tuple[Responses, np.ndarray]:
    """30% of the tasks have a decoy label that most workers pick: the crowd agrees on a wrong answer."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    decoy = (truth + rng.integers(1, k, n)) % k
    hard = rng.random(n) < 0.3
    t = np.repeat(np.arange(n), 5)
    w = rng.integers(0, 40, t.size)
    fooled = hard[t] & (rng.random(t.size) < 0.55)
    right = rng.random(t.size) < 0.85
    lab = np.where(fooled, decoy[t], np.where(right, truth[t], (truth[t] + rng.integers(1, k, t.size)) % k))
    return Responses.from_codes(t, w, lab, n_tasks=n, n_workers=40, n_classes=k), truth


def calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(
        sum(abs(conf[which == b].mean() - correct[which == b].mean()) * (which == b).sum() for b in np.unique(which))
        / conf.size
    )


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace", "auto"])
def test_gold_tasks_calibrate_the_confidence(method: str) -> None:
    """Shared mistakes make the crowd over-confident; 100 gold tasks bring the confidence back to the truth."""
    responses, truth = shared_mistakes_crowd()
    gold = np.arange(100)
    rest = np.arange(100, responses.n_tasks)
    free = aggregate(responses, method=method, random_state=0)
    anchored = aggregate(responses, method=method, random_state=0, gold=(gold, truth[gold]))
    ece_free = calibration_error(free.confidence_values[rest], free.label_idx[rest] == truth[rest])
    ece_gold = calibration_error(anchored.confidence_values[rest], anchored.label_idx[rest] == truth[rest])
    assert ece_free > 0.1
    assert ece_gold < 0.6 * ece_free
    assert anchored.extras["temperature_source"] == "gold"
    assert anchored.extras["temperature"] > 1.0  # softened
    assert (anchored.label_idx[gold] == truth[gold]).all()
    assert np.allclose(anchored.probas[gold].max(axis=1), 1.0)


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace"])
@pytest.mark.parametrize("n_gold", [0, 60])
def test_threads_change_nothing(monkeypatch: pytest.MonkeyPatch, method: str, n_gold: int) -> None:
    """Large inputs run EM on task shards and the two calibration folds on a thread pool: the
    result is bit-identical whatever the number of threads, and equals the one-thread run (one
    shard) up to rounding."""
    responses, truth = shared_mistakes_crowd()
    gold = np.arange(n_gold)
    monkeypatch.setattr(_confusion, "_THREADED_MIN", 0)
    monkeypatch.setattr(_confusion, "_TASKS_PER_SHARD", 200)  # 8 shards of the 1,500 tasks
    runs = {}
    for cpus in (1, 2, 3):
        monkeypatch.setattr(_confusion, "_cpu_count", lambda cpus=cpus: cpus)
        runs[cpus] = aggregate(responses, method=method, random_state=3, gold=(gold, truth[gold]))
    two, three = runs[2], runs[3]
    assert two.extras["temperature_source"] == ("gold" if n_gold else "answers")
    assert two.extras["temperature"] != 1.0
    assert two.extras["temperature"] == three.extras["temperature"]
    assert np.array_equal(two.probas, three.probas)
    assert np.array_equal(two.extras["gold_heldout"][1], three.extras["gold_heldout"][1])
    one = runs[1]
    assert np.array_equal(one.label_idx, two.label_idx)
    assert one.extras["temperature"] == pytest.approx(two.extras["temperature"], rel=1e-6)
    np.testing.assert_allclose(one.probas, two.probas, rtol=0, atol=1e-9)


def test_few_gold_tasks_leave_the_temperature_to_the_answers() -> None:
    responses, truth = shared_mistakes_crowd()
    few = np.arange(GOLD_CALIBRATION_MIN // 2)
    res = aggregate(responses, method="ds", random_state=0, gold=(few, truth[few]))
    assert res.extras["temperature_source"] == "answers"
    auto = aggregate(responses, method="auto", random_state=0, gold=(few, truth[few]))
    assert auto.extras["temperature"] == 1.0


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace", "auto"])
def test_calibrate_gold_tempers_only_from_gold(method: str) -> None:
    responses, truth = shared_mistakes_crowd()
    raw = aggregate(responses, method=method, random_state=0, calibrate=False)
    none = aggregate(responses, method=method, random_state=0, calibrate="gold")
    np.testing.assert_allclose(none.probas, raw.probas, atol=1e-12)  # no gold: left as fitted
    gold = np.arange(100)
    some = aggregate(responses, method=method, random_state=0, calibrate="gold", gold=(gold, truth[gold]))
    full = aggregate(responses, method=method, random_state=0, calibrate=True, gold=(gold, truth[gold]))
    np.testing.assert_allclose(some.probas, full.probas, atol=1e-12)  # enough gold: the same as True
    assert some.extras["temperature"] > 1.0


@pytest.mark.parametrize("method", ["ds", "glad", "auto"])
@pytest.mark.parametrize("bad", [1, "yes", None])
def test_calibrate_rejects_other_values(method: str, bad: object) -> None:
    responses, _ = small_crowd(n_tasks=50)
    with pytest.raises(InvalidInputError, match="calibrate"):
        aggregate(responses, method=method, calibrate=bad)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.3, 5.0), st.integers(2, 6), st.integers(0, 2**32 - 1), st.sampled_from(["log", "brier"]))
def test_gold_temperature_recovers_the_true_temperature(tau: float, k: int, seed: int, loss: str) -> None:
    """Labels drawn from softmax(z / tau): the fitted temperature is close to tau (both losses are proper)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(6000, k))
    p = np.exp(z / tau - (z / tau).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = (rng.random(z.shape[0])[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(max=k - 1)
    fitted, score = gold_temperature_and_score(z, labels, loss=loss)  # type: ignore[arg-type]
    assert abs(np.log(fitted / tau)) < 0.2
    assert score <= 0.0


def test_gold_temperature_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(scale=4.0, size=(500, 4))
    labels = rng.integers(0, 4, 500)

    def nll(log_tau: float) -> float:
        return float(-log_softmax(z / np.exp(log_tau), axis=1)[np.arange(500), labels].sum())

    ref = minimize_scalar(nll, bounds=(np.log(0.25), np.log(50.0)), method="bounded", options={"xatol": 1e-8})
    ours, score = gold_temperature_and_score(z, labels)
    assert abs(np.log(ours) - ref.x) < 1e-3
    assert score == pytest.approx(-ref.fun / 500, rel=1e-6)


# ---------------------------------------------------------------- determinism and invariance
def test_fixed_seed_is_deterministic() -> None:
    responses, _ = small_crowd()
    a = aggregate(responses, method="ds", random_state=3)
    b = aggregate(responses, method="ds", random_state=3)
    np.testing.assert_array_equal(a.probas, b.probas)


@pytest.mark.parametrize("method", ["mv", "wmv", "ds", "onecoin", "mace"])
def test_labels_do_not_depend_on_row_order_or_ids(method: str) -> None:
    responses, _ = small_crowd(n_tasks=150, n_workers=12)
    rng = np.random.default_rng(0)
    order = rng.permutation(responses.n_responses)
    renamed_tasks = np.array([f"task-{i:04d}" for i in rng.permutation(responses.n_tasks)])
    renamed_workers = np.array([f"w{i}" for i in rng.permutation(responses.n_workers)])
    answers = {
        "task": renamed_tasks[responses.task_idx][order],
        "worker": renamed_workers[responses.worker_idx][order],
        "label": responses.label[order],
    }
    a = aggregate(responses, method=method, random_state=0, **({} if method in ("mv", "wmv") else {"calibrate": False}))
    b = aggregate(answers, method=method, random_state=0, **({} if method in ("mv", "wmv") else {"calibrate": False}))
    relabelled = {renamed_tasks[t]: lab for t, lab in a.labels.items()}
    assert relabelled == b.labels
    conf_a = {renamed_tasks[t]: c for t, c in a.confidence.items()}
    for task, c in b.confidence.items():
        assert c == pytest.approx(conf_a[task], abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=40),
    method=st.sampled_from(["mv", "wmv", "ds", "onecoin", "mace"]),
)
def test_posteriors_are_distributions(data: list[tuple[int, int, int]], method: str) -> None:
    task, worker, label = (np.array(c) for c in zip(*data, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = aggregate({"task": task, "worker": worker, "label": label}, method=method, random_state=0)
    assert np.all(res.probas >= 0)
    np.testing.assert_allclose(res.probas.sum(axis=1), 1.0, atol=1e-9)
    assert np.all((res.worker_accuracy >= 0) & (res.worker_accuracy <= 1))
    best = res.probas.max(axis=1)
    np.testing.assert_allclose(res.confidence_values, best, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sets(st.integers(0, 4), min_size=2, max_size=5), min_size=1, max_size=8))
def test_unanimous_answers_are_kept(panels: list[set[int]]) -> None:
    """Every task answered the same way by two or more workers keeps that answer."""
    task = np.concatenate([np.full(len(p), i) for i, p in enumerate(panels)])
    worker = np.concatenate([sorted(p) for p in panels])
    label = task % 3
    for method in ("mv", "wmv", "ds", "onecoin", "mace"):
        res = aggregate({"task": task, "worker": worker, "label": label}, method=method, random_state=0)
        assert res.labels == {i: i % 3 for i in range(len(panels))}, method


Crowd = tuple[dict[str, list[int]], list[int], dict[int, set[int]]]


@st.composite
def tiny_crowds(draw: st.DrawFn, unanimous: bool) -> Crowd:
    """1-6 workers, 1-10 tasks, 2-4 classes of which some may go unused; each task answered by
    a random subset of the workers, all with the task's label when ``unanimous``. Returns the
    answers, the classes and each task's set of answered labels."""
    k = draw(st.integers(2, 4))
    n_workers = draw(st.integers(1, 6))
    panels = draw(
        st.lists(
            st.tuples(st.sets(st.integers(0, n_workers - 1), min_size=1), st.integers(0, k - 1)),
            min_size=1,
            max_size=10,
        )
    )
    answers: dict[str, list[int]] = {"task": [], "worker": [], "label": []}
    given: dict[int, set[int]] = {}
    for t, (panel, truth) in enumerate(panels):
        for w in sorted(panel):
            label = truth if unanimous else draw(st.integers(0, k - 1))
            answers["task"].append(t)
            answers["worker"].append(w)
            answers["label"].append(label)
            given.setdefault(t, set()).add(label)
    return answers, list(range(k)), given


@settings(max_examples=150, deadline=None)
@given(crowd=tiny_crowds(unanimous=True))
def test_ds_keeps_unanimous_answers_on_tiny_crowds(crowd: Crowd) -> None:
    """Every task answered one way keeps that answer, however sparse the crowd, as long as some
    task has two or more workers (with none, nothing can be learnt about the workers and a
    skewed class prior may legitimately overrule single answers). This is what the better-than-
    chance accuracy prior and the minimum size for communities guard: on such inputs the DS
    likelihood is also maximised by "every worker always gives the same label"."""
    answers, classes, given = crowd
    per_task = np.bincount(answers["task"])
    assume(per_task.max() >= 2)
    expected = {t: next(iter(labels)) for t, labels in given.items()}
    for method, kw in (("ds", {}), ("ds", {"communities": 0}), ("auto", {})):
        res = aggregate(answers, method=method, classes=classes, random_state=0, **kw)
        assert res.labels == expected, (method, kw)


@settings(max_examples=150, deadline=None)
@given(crowd=tiny_crowds(unanimous=False))
def test_ds_never_picks_a_class_nobody_gave(crowd: Crowd) -> None:
    """A class that no worker ever answered is never the label on small crowds. (DS may pick a
    label none of a task's own workers gave, when their confusion matrices say so: that is
    inference, not a fault, so only classes unused by the whole crowd are ruled out.)"""
    answers, classes, _ = crowd
    used = set(answers["label"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for method in ("ds", "auto"):
            res = aggregate(answers, method=method, classes=classes, random_state=0)
            assert set(res.labels.values()) <= used, method


# ---------------------------------------------------------------- services entry point
def test_infer_truth_on_codes_keeps_unanswered_tasks_and_gold() -> None:
    responses, truth = small_crowd(n_tasks=200, n_workers=10)
    res = infer_truth(
        responses.task_idx,
        responses.worker_idx,
        responses.label,
        n_tasks=201,
        n_classes=4,
        method="ds",
        gold_task_idx=[0, 1],
        gold_label=[3, 3],
        random_state=0,
    )
    assert res.probas.shape == (201, 4)
    assert res.label_idx[:2].tolist() == [3, 3]
    assert (res.label_idx[2:200] == truth[2:]).mean() > 0.9
    assert res.worker_accuracy.shape == (10,)
    assert res.priors is not None
    np.testing.assert_allclose(res.probas[200].argmax(), res.priors.argmax())


def test_estimator_api_matches_function() -> None:
    responses, _ = small_crowd(n_tasks=100)
    est = MajorityVote()
    labels = est.fit_predict(responses)
    assert est.result_ is not None
    np.testing.assert_array_equal(labels, aggregate(responses, method="mv").label_values)
    assert est.fit_predict_proba(responses).shape == (100, 3)
    assert "n_iter" in repr(DawidSkene(n_iter=5))


# ---------------------------------------------------------------- information per answer
@pytest.mark.parametrize("method", ["ds", "onecoin"])
def test_worker_information_singles_out_the_spammers(method: str) -> None:
    """Constant answerers carry ~no information; 80%-right workers carry a clear share (ds: full
    matrices; onecoin: the one-coin matrix built from ``worker_accuracy``)."""
    responses, _ = small_crowd()
    res = aggregate(responses, method=method, random_state=0)
    info = res.worker_information
    spam = np.arange(30) < 6
    assert info.shape == (30,)
    assert info[~spam].min() > 0.2
    assert info[spam].max() < 0.05


def _information_by_entropies(conf: np.ndarray, prior: np.ndarray) -> float:
    """I(Y; L) / H(Y) as H(L) - H(L | Y), with scipy's entropy (an independent route)."""
    from scipy.stats import entropy

    h_l = entropy(prior @ conf)
    h_l_given_y = float(np.sum(prior * np.array([entropy(row) for row in conf])))
    return (h_l - h_l_given_y) / entropy(prior)


_stochastic = st.integers(2, 5).flatmap(
    lambda k: st.tuples(
        st.lists(st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k), min_size=k, max_size=k),
        st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k),
    )
)


@settings(max_examples=60, deadline=None)
@given(_stochastic, st.randoms(use_true_random=False))
def test_label_information_properties(data: tuple[list[list[float]], list[float]], rnd: object) -> None:
    from veracity.quality import label_information

    conf = np.array(data[0])
    conf /= conf.sum(axis=1, keepdims=True)
    prior = np.array(data[1]) / np.sum(data[1])
    k = prior.size
    value = float(label_information(conf[None], prior)[0])
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(_information_by_entropies(conf, prior), abs=1e-9)
    # renaming the classes (rows, columns and prior together) changes nothing
    perm = np.array(rnd.sample(range(k), k))  # type: ignore[attr-defined]
    renamed = float(label_information(conf[perm][:, perm][None], prior[perm])[0])
    assert renamed == pytest.approx(value, abs=1e-12)
    # answers that ignore the truth (every row the same) carry nothing; a perfect worker everything
    assert float(label_information(np.tile(conf[:1], (k, 1))[None], prior)[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(label_information(np.eye(k)[perm][None], prior)[0]) == pytest.approx(1.0, abs=1e-12)


def test_label_information_rejects_mismatched_shapes() -> None:
    from veracity.quality import label_information

    with pytest.raises(InvalidInputError, match="confusions must have shape"):
        label_information(np.eye(3)[None], np.ones(2) / 2)
