"""Seeded synthetic crowds with known truth and known per-worker confusion matrices.

``make_crowd`` draws a class prior, one confusion matrix per worker and a set of answers, and
returns everything needed to score an aggregator against the Bayes-optimal posterior
(``bayes_posterior``), or to simulate adaptive redundancy (ask another worker on demand with
``answer``).

Worker kinds (fractions of the crowd):

* spammers (``spammer_frac``): half answer uniformly at random, half always give one label;
* class-biased (20%): right 50-85% of the time, and most of their errors go to one favourite
  class;
* good (the rest): right 65-95% of the time, errors spread by a Dirichlet draw that favours the
  "neighbouring" class ``(k + 1) mod K`` (a confusion shared by the whole crowd).

Each task gets ``answers_per_task`` distinct workers chosen uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Crowd", "answer", "bayes_posterior", "make_crowd"]


@dataclass(frozen=True)
class Crowd:
    """A synthetic crowd. Arrays of answers have shape (n_answers,)."""

    task_idx: np.ndarray
    worker_idx: np.ndarray
    label: np.ndarray
    true_labels: np.ndarray  # (n_tasks,)
    confusions: np.ndarray  # (n_workers, n_classes, n_classes): P(answer l | true k)
    priors: np.ndarray  # (n_classes,)
    worker_kind: np.ndarray  # (n_workers,) 0 good, 1 class-biased, 2 spammer

    @property
    def n_tasks(self) -> int:
        return int(self.true_labels.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.confusions.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.priors.shape[0])


def _confusions(n_workers: int, k: int, spammer_frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    kind = np.zeros(n_workers, dtype=np.int64)
    u = rng.random(n_workers)
    kind[u < spammer_frac] = 2
    kind[(u >= spammer_frac) & (u < spammer_frac + 0.2)] = 1
    conf = np.zeros((n_workers, k, k))
    eye = np.eye(k)
    neighbour = np.roll(eye, 1, axis=1)  # k -> k+1
    # good workers
    good = np.flatnonzero(kind == 0)
    acc = rng.uniform(0.65, 0.95, size=(good.size, k))
    off = rng.dirichlet(np.full(k, 0.7), size=(good.size, k)) + 2.0 * neighbour
    off = off * (1 - eye)
    off /= off.sum(axis=2, keepdims=True)
    conf[good] = acc[..., None] * eye + (1 - acc[..., None]) * off
    # class-biased workers
    biased = np.flatnonzero(kind == 1)
    fav = rng.integers(0, k, size=biased.size)
    acc = rng.uniform(0.5, 0.85, size=(biased.size, k))
    off = np.full((biased.size, k, k), 0.3 / max(k - 2, 1))
    off[np.arange(biased.size), :, fav] = 0.7
    off = off * (1 - eye)
    off /= off.sum(axis=2, keepdims=True)
    conf[biased] = acc[..., None] * eye + (1 - acc[..., None]) * off
    fav_rows = conf[biased, fav, :]  # the favourite class itself is answered very reliably
    conf[biased, fav, :] = 0.05 * fav_rows + 0.95 * eye[fav]
    # spammers
    spam = np.flatnonzero(kind == 2)
    uniform = spam[: spam.size // 2]
    constant = spam[spam.size // 2 :]
    conf[uniform] = 1.0 / k
    conf[constant] = 0.0
    const_label = rng.integers(0, k, size=constant.size)
    conf[constant, :, const_label] = 1.0
    conf /= conf.sum(axis=2, keepdims=True)
    return conf, kind


def _sample_labels(conf: np.ndarray, w: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(w.shape[0], dtype=np.int64)
    step = 1_000_000
    for lo in range(0, w.shape[0], step):
        hi = min(lo + step, w.shape[0])
        cum = np.cumsum(conf[w[lo:hi], z[lo:hi]], axis=1)
        u = rng.random(hi - lo)[:, None] * cum[:, -1:]
        out[lo:hi] = np.minimum((u > cum).sum(axis=1), conf.shape[2] - 1)
    return out


def make_crowd(
    n_tasks: int,
    n_workers: int,
    n_classes: int,
    answers_per_task: int,
    spammer_frac: float = 0.1,
    seed: int = 0,
) -> Crowd:
    """A seeded synthetic crowd: true labels, true confusion matrices and the answers."""
    if answers_per_task > n_workers:
        raise ValueError(f"answers_per_task ({answers_per_task}) must not exceed n_workers ({n_workers})")
    rng = np.random.default_rng(seed)
    k = n_classes
    priors = rng.dirichlet(np.full(k, 4.0))
    true = rng.choice(k, size=n_tasks, p=priors)
    conf, kind = _confusions(n_workers, k, spammer_frac, rng)
    m = answers_per_task
    # distinct workers per task: a random start plus m positive strides summing to < n_workers
    max_step = max(1, (n_workers - 1) // max(m, 1))
    steps = rng.integers(1, max_step + 1, size=(n_tasks, m))
    steps[:, 0] = rng.integers(0, n_workers, size=n_tasks)
    worker = (np.cumsum(steps, axis=1) % n_workers).reshape(-1).astype(np.int64)
    task = np.repeat(np.arange(n_tasks, dtype=np.int64), m)
    label = _sample_labels(conf, worker, true[task], rng)
    order = rng.permutation(task.shape[0])  # answers arrive in no particular order
    return Crowd(task[order], worker[order], label[order], true, conf, priors, kind)


def answer(crowd: Crowd, task_idx: np.ndarray, worker_idx: np.ndarray, seed: int) -> np.ndarray:
    """Fresh answers of ``worker_idx`` on ``task_idx`` drawn from the true confusion matrices."""
    rng = np.random.default_rng(seed)
    return _sample_labels(crowd.confusions, np.asarray(worker_idx), crowd.true_labels[np.asarray(task_idx)], rng)


def bayes_posterior(crowd: Crowd) -> np.ndarray:
    """Posterior over true classes given the answers and the *true* parameters, (n_tasks, K)."""
    k = crowd.n_classes
    log_conf = np.log(np.maximum(crowd.confusions, 1e-300))
    logits = np.tile(np.log(crowd.priors), (crowd.n_tasks, 1))
    for c in range(k):
        logits[:, c] += np.bincount(
            crowd.task_idx, weights=log_conf[crowd.worker_idx, c, crowd.label], minlength=crowd.n_tasks
        )
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)
