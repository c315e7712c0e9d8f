"""Dawid-Skene priors that share strength across workers, and the tempered confidence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import dirichlet_multinomial

from veracity.errors import ConvergenceWarning, InvalidInputError
from veracity.quality import Responses, aggregate
from veracity.quality.aggregation._community import CommunityPrior, dm_loglik, select_communities
from veracity.quality.aggregation._em import _flat, build_shards, shard_em_step, shard_init_step


def planted_crowd(seed: int = 0) -> tuple[Responses, np.ndarray, np.ndarray]:
    """4 classes, 300 workers with ~12 answers each, of three planted kinds.

    Good workers (70%) are right 85% of the time and send errors to the next class; 15% always
    answer one favourite label (a constant spammer per label); 15% are right 60% of the time and
    send all errors to their favourite label.
    """
    rng = np.random.default_rng(seed)
    k, n_workers, n_tasks, per_task = 4, 300, 1200, 3
    eye = np.eye(k)
    nxt = np.roll(eye, 1, axis=1)
    conf = np.zeros((n_workers, k, k))
    kind = rng.choice(3, size=n_workers, p=[0.7, 0.15, 0.15])
    fav = rng.integers(0, k, n_workers)
    conf[kind == 0] = 0.85 * eye + 0.15 * nxt
    conf[kind == 1] = eye[fav[kind == 1]][:, None, :]
    biased = np.flatnonzero(kind == 2)
    conf[biased] = 0.6 * eye + 0.4 * eye[fav[biased]][:, None, :]
    conf[biased, fav[biased], fav[biased]] = 1.0
    conf /= conf.sum(axis=2, keepdims=True)
    truth = rng.integers(0, k, n_tasks)
    task = np.repeat(np.arange(n_tasks), per_task)
    worker = np.concatenate([rng.choice(n_workers, per_task, replace=False) for _ in range(n_tasks)])
    cum = conf[worker, truth[task]].cumsum(axis=1)
    label = np.minimum((rng.random(task.size)[:, None] > cum).sum(axis=1), k - 1)
    responses = Responses.from_codes(task, worker, label, n_tasks=n_tasks, n_workers=n_workers, n_classes=k)
    return responses, truth, conf


def test_community_prior_recovers_a_planted_population_better_than_plain_ds() -> None:
    responses, truth, conf = planted_crowd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = aggregate(responses, method="ds", prior_strength=0.0, communities=0, calibrate=False)
        shared = aggregate(responses, method="ds", random_state=0)
    assert shared.extras["communities"] >= 2
    answered = np.bincount(responses.worker_idx, minlength=responses.n_workers) > 0

    def confusion_error(res) -> float:  # mean total-variation distance per confusion row
        assert res.confusions is not None
        return float(0.5 * np.abs(res.confusions[answered] - conf[answered]).sum(axis=2).mean())

    assert confusion_error(shared) < 0.8 * confusion_error(plain)
    acc_plain = float((plain.label_idx == truth).mean())
    acc_shared = float((shared.label_idx == truth).mean())
    assert acc_shared >= acc_plain + 0.01


def test_population_prior_beats_plain_ds_on_the_planted_crowd() -> None:
    responses, truth, _ = planted_crowd(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = aggregate(responses, method="ds", prior_strength=0.0, communities=0, calibrate=False)
        pooled = aggregate(responses, method="ds", communities=0, calibrate=False)
    assert (pooled.label_idx == truth).mean() >= (plain.label_idx == truth).mean()
    strengths = pooled.extras["prior_strength"]
    assert strengths["accuracy"] > 0 and strengths["errors"] > 0


def test_communities_parameter_is_validated() -> None:
    responses, _, _ = planted_crowd()
    for bad in (-1, 1.5, "many", True):
        with pytest.raises(InvalidInputError):
            aggregate(responses, method="ds", communities=bad)
    with pytest.raises(InvalidInputError):
        aggregate(responses, method="ds", prior_strength=(1.0, 2.0, 3.0))
    res = aggregate(responses, method="ds", communities=3, random_state=0)
    assert res.extras["communities"] == 3


def test_community_fit_is_deterministic() -> None:
    responses, _, _ = planted_crowd(seed=2)
    a = aggregate(responses, method="ds", random_state=5)
    b = aggregate(responses, method="ds", random_state=5)
    np.testing.assert_array_equal(a.probas, b.probas)
    assert a.confusions is not None and b.confusions is not None
    np.testing.assert_array_equal(a.confusions, b.confusions)


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(0, 6), min_size=2 * 3 * 3, max_size=2 * 3 * 3),
    strengths=st.lists(st.floats(0.3, 50.0), min_size=2, max_size=2),
)
def test_dm_loglik_matches_scipy(counts: list[int], strengths: list[float]) -> None:
    """The mixture's likelihood is the Dirichlet-multinomial pmf of every row (up to the
    multinomial coefficient, which does not depend on the community)."""
    n = np.array(counts, dtype=float).reshape(2, 3, 3)
    rng = np.random.default_rng(0)
    means = rng.dirichlet(np.ones(3), size=(2, 3))
    alpha = np.array(strengths)[:, None, None] * means
    ours = dm_loglik(n, alpha)
    for w in range(2):
        ref = [
            sum(float(dirichlet_multinomial.logpmf(n[w, k], alpha[c, k], int(n[w, k].sum()))) for k in range(3))
            for c in range(2)
        ]
        np.testing.assert_allclose(ours[w] - ours[w, 0], np.array(ref) - ref[0], atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_comm=st.integers(1, 4))
def test_community_posteriors_and_predictive_are_distributions(seed: int, n_comm: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.gamma(0.5, 2.0, size=(12, 3, 3))
    prior = CommunityPrior(n_comm)
    prior.fit(counts, n_iter=4)
    resp = prior.posterior(counts)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, atol=1e-9)
    pred = prior.predictive(counts, resp)
    assert np.all(pred > 0)
    np.testing.assert_allclose(pred.sum(axis=2), 1.0, atol=1e-9)
    chosen = select_communities(counts, (1, 2, 4), 0.01)
    assert 1 <= len(chosen.strengths) <= 4  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5), st.integers(0, 2)), min_size=3, max_size=60),
    seed=st.integers(0, 3),
)
def test_tempered_confidence_keeps_labels(data: list[tuple[int, int, int]], seed: int) -> None:
    """Calibration only tempers the posteriors: same labels, confidences in [1/K, 1]."""
    task, worker, label = (np.array(c) for c in zip(*data, strict=True))
    answers = {"task": task, "worker": worker, "label": label}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        raw = aggregate(answers, method="ds", calibrate=False, random_state=seed)
        cal = aggregate(answers, method="ds", calibrate=True, random_state=seed)
        again = aggregate(answers, method="ds", calibrate=True, random_state=seed)
    np.testing.assert_array_equal(raw.label_idx, cal.label_idx)
    k = cal.probas.shape[1]
    assert np.all(cal.confidence_values <= 1.0 + 1e-12)
    assert np.all(cal.confidence_values >= 1.0 / k - 1e-12)
    np.testing.assert_array_equal(cal.probas, again.probas)


def _with_solo_tasks(responses: Responses, worker: int, labels: np.ndarray) -> Responses:
    n = responses.n_tasks
    return Responses.from_codes(
        np.concatenate([responses.task_idx, n + np.arange(labels.size)]),
        np.concatenate([responses.worker_idx, np.full(labels.size, worker)]),
        np.concatenate([responses.label, labels]),
        n_tasks=n + labels.size,
        n_workers=responses.n_workers,
        n_classes=responses.n_classes,
    )


def test_solo_tasks_are_left_out_of_the_worker_statistics_only() -> None:
    """At fixed parameters, tasks answered by one worker add nothing to the M-step worker
    statistics, but they do count in the class-prior totals."""
    responses, _, _ = planted_crowd(seed=3)
    k = responses.n_classes
    busy = int(np.argmax(np.bincount(responses.worker_idx, minlength=responses.n_workers)))
    extra = np.arange(6) % k
    more = _with_solo_tasks(responses, busy, extra)
    rng = np.random.default_rng(0)
    log_conf = np.log(rng.dirichlet(np.ones(k), size=(responses.n_workers, k)))
    params = (_flat(log_conf), np.log(np.full(k, 1.0 / k)))
    stats, totals, _ = shard_em_step(build_shards(responses)[0], params)
    stats_more, totals_more, _ = shard_em_step(build_shards(more)[0], params)
    np.testing.assert_allclose(stats_more, stats, atol=1e-12)
    assert totals_more.sum() == pytest.approx(totals.sum() + extra.size)
    init_more = shard_init_step(build_shards(more)[0])[1]
    init = shard_init_step(build_shards(responses)[0])[1]
    np.testing.assert_allclose(init_more - init, np.bincount(extra, minlength=k))


@pytest.mark.parametrize("method", ["ds", "onecoin", "mace"])
def test_tasks_answered_by_one_worker_teach_nothing_about_workers(method: str) -> None:
    """Answers on tasks nobody else answered change the workers' matrices only through the class
    prior (slightly), leave the other labels (all but near ties) alone, and such a task follows its answer when the
    worker is reliable."""
    responses, _, _ = planted_crowd(seed=3)
    n, k = responses.n_tasks, responses.n_classes
    busy = int(np.argmax(np.bincount(responses.worker_idx, minlength=responses.n_workers)))
    extra_label = np.arange(6) % k
    more = _with_solo_tasks(responses, busy, extra_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        base = aggregate(responses, method=method, random_state=0, calibrate=False)
        extended = aggregate(more, method=method, random_state=0, calibrate=False)
    assert base.confusions is not None and extended.confusions is not None
    np.testing.assert_allclose(extended.confusions, base.confusions, atol=5e-3)
    # the shifted class prior may tip a near tie or two among the 1200 other tasks
    assert np.count_nonzero(extended.label_idx[:n] != base.label_idx) <= 2
    assert base.worker_accuracy[busy] > 0.7  # a reliable worker (planted: 85% right)
    np.testing.assert_array_equal(extended.label_idx[n:], extra_label)
