"""MACE: Multi-Annotator Competence Estimation (Hovy et al. 2013), fitted by EM."""

from __future__ import annotations

from typing import Any

import numpy as np

from veracity.quality.aggregation._confusion import Calibrate, ConfusionEMAggregator
from veracity.quality.responses import Responses
from veracity.types import Executor, FloatArray, RandomState

__all__ = ["MACE"]


class _MaceModel:
    """Worker ``w`` copies the true label with probability ``theta_w``; otherwise it "spams" from
    its own label distribution ``xi_w``. So ``P(l | k, w) = theta_w [l = k] + (1 - theta_w) xi_w[l]``.
    """

    def __init__(self, n_workers: int, n_classes: int, smoothing: float, alpha: float, beta: float) -> None:
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.alpha = alpha
        self.beta = beta
        self.theta = np.full(n_workers, 0.5)
        self.xi = np.full((n_workers, n_classes), 1.0 / max(n_classes, 1))
        self.extras: dict[str, Any] = {}

    def m_step(self, counts: FloatArray, class_totals: FloatArray) -> tuple[FloatArray, FloatArray]:
        k = self.n_classes
        eps = max(self.smoothing, 1e-12)
        diag = np.einsum("wkk->wk", counts)  # soft count of (true = l, answer = l)
        n_wl = counts.sum(axis=1)  # answers per worker and label
        theta = self.theta[:, None]
        knows = theta / (theta + (1.0 - theta) * self.xi)  # P(not spamming | answer = truth = l)
        nonspam = diag * knows
        spam = np.maximum(n_wl - nonspam, 0.0)
        self.theta = (nonspam.sum(axis=1) + self.alpha) / (n_wl.sum(axis=1) + self.alpha + self.beta)
        self.xi = (spam + eps + 1.0) / (spam.sum(axis=1, keepdims=True) + k * (eps + 1.0))
        conf = (1.0 - self.theta)[:, None, None] * self.xi[:, None, :] + np.zeros((1, k, k))
        idx = np.arange(k)
        conf[:, idx, idx] += self.theta[:, None]
        log_conf = np.log(np.maximum(conf, 1e-300))
        prior = class_totals + 1.0
        log_prior = np.log(prior / prior.sum())
        self.extras = {"competence": self.theta.copy(), "spam_distribution": self.xi.copy()}
        return log_conf, log_prior


class MACE(ConfusionEMAggregator):
    r"""MACE (Multi-Annotator Competence Estimation).

    Each worker either knows the answer (probability :math:`\theta_w`, its *competence*) and gives
    the true label, or spams from a personal label distribution :math:`\xi_w`. EM over the true
    label (and, inside the M-step, the spam indicator) with a :math:`\mathrm{Beta}(\alpha, \beta)`
    prior on :math:`\theta_w` and a Dirichlet(1 + ``smoothing``) prior on :math:`\xi_w`.
    ``result_.extras["competence"]`` holds :math:`\theta`.

    Parameters
    ----------
    alpha, beta : float, default 2.0, 1.0
        Beta prior on competence (mild belief that workers try).
    Other parameters as :class:`~veracity.quality.aggregation.DawidSkene`.

    References
    ----------
    D. Hovy, T. Berg-Kirkpatrick, A. Vaswani, E. Hovy. Learning Whom to Trust with MACE.
    NAACL-HLT 2013, 1120-1130. https://aclanthology.org/N13-1132

    Examples
    --------
    >>> from veracity.quality.aggregation import MACE
    >>> MACE().fit_predict({"task": [1, 1, 1], "worker": [1, 2, 3], "label": ["a", "a", "b"]}).tolist()
    ['a']
    """

    method = "mace"

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        smoothing: float = 0.01,
        alpha: float = 2.0,
        beta: float = 1.0,
        calibrate: Calibrate = True,
        random_state: RandomState = None,
        executor: Executor | None = None,
        n_shards: int | None = None,
    ) -> None:
        super().__init__(
            n_iter=n_iter,
            tol=tol,
            smoothing=smoothing,
            calibrate=calibrate,
            random_state=random_state,
            executor=executor,
            n_shards=n_shards,
        )
        self.alpha = alpha
        self.beta = beta

    def _model(self, responses: Responses) -> _MaceModel:
        return _MaceModel(
            responses.n_workers, responses.n_classes, float(self.smoothing), float(self.alpha), float(self.beta)
        )
