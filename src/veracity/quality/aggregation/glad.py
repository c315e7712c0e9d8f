"""GLAD: Generative model of Labels, Abilities and Difficulties (Whitehill et al. 2009)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logsumexp

from veracity.errors import ConvergenceWarning
from veracity.quality._base import AggregationResult, BaseAggregator, argmax_lowest, worker_answer_counts
from veracity.quality._validation import check_random_state
from veracity.quality.aggregation._confusion import Calibrate, check_calibrate
from veracity.quality.aggregation._em import fit_temperature, softmax_rows
from veracity.quality.responses import Responses
from veracity.types import FloatArray, IntArray, RandomState

__all__ = ["GLAD"]


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return -np.logaddexp(0.0, -x)


class GLAD(BaseAggregator):
    r"""GLAD: worker ability :math:`\alpha_w` and task easiness :math:`\beta_t = e^{b_t} > 0`.

    A worker answers correctly with probability :math:`\sigma(\alpha_w \beta_t)`; wrong answers
    are spread evenly over the other classes. EM: the E-step gives posteriors over true classes;
    the M-step maximises the expected log-likelihood plus Gaussian priors
    :math:`\alpha \sim N(\mu_\alpha, 1)`, :math:`b \sim N(\mu_b, 1)` by alternating damped Newton
    steps whose gradients and curvatures are accumulated by ``np.bincount`` (no loop over tasks or
    workers).

    Parameters
    ----------
    n_iter : int, default 100
    tol : float, default 1e-5
        On the mean expected log-likelihood per answer.
    alpha_prior, b_prior : float, default 1.0, 1.0
        Prior means of ability and log-easiness.
    m_step_iter : int, default 3
        Newton rounds (ability, then easiness) per M-step.
    calibrate, random_state : as :class:`~veracity.quality.aggregation.DawidSkene`; GLAD calibrates on
        held-out answers only, so ``calibrate="gold"`` leaves its posteriors untempered.

    References
    ----------
    J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma, J. Movellan. Whose Vote Should Count More:
    Optimal Integration of Labels from Labelers of Unknown Expertise. NIPS 22, 2009.

    Examples
    --------
    >>> from veracity.quality.aggregation import GLAD
    >>> GLAD().fit_predict({"task": [1, 1, 1], "worker": [1, 2, 3], "label": ["a", "a", "b"]}).tolist()
    ['a']
    """

    method = "glad"

    def __init__(
        self,
        *,
        n_iter: int = 100,
        tol: float = 1e-5,
        alpha_prior: float = 1.0,
        b_prior: float = 1.0,
        m_step_iter: int = 3,
        calibrate: Calibrate = True,
        random_state: RandomState = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.alpha_prior = alpha_prior
        self.b_prior = b_prior
        self.m_step_iter = m_step_iter
        self.calibrate = calibrate
        self.random_state = random_state
        self.result_ = None

    def _fit(self, responses: Responses, gold_idx: IntArray, gold_label: IntArray) -> AggregationResult:
        check_calibrate(self.calibrate)
        k = responses.n_classes
        n_w, n_t = responses.n_workers, responses.n_tasks
        t, w, lab = responses.task_idx, responses.worker_idx, responses.label
        log_wrong_norm = np.log(max(k - 1, 1))
        eps = 1e-2

        def clamp(p: FloatArray) -> FloatArray:
            if gold_idx.size:
                p[gold_idx] = 0.0
                p[gold_idx, gold_label] = 1.0
            return p

        probas = responses.vote_counts()
        n_votes = probas.sum(axis=1, keepdims=True)
        # a task nobody answered (possible with infer_truth's n_tasks) starts uniform, not 0 / 0
        probas = clamp(np.divide(probas, n_votes, out=np.full_like(probas, 1.0 / max(k, 1)), where=n_votes > 0))
        alpha = np.full(n_w, float(self.alpha_prior))
        b = np.full(n_t, float(self.b_prior))

        def logits_of(alpha: FloatArray, b: FloatArray, prior: FloatArray) -> FloatArray:
            x = alpha[w] * np.exp(b)[t]
            ls, lns = _log_sigmoid(x), _log_sigmoid(-x) - log_wrong_norm
            base = np.bincount(t, weights=lns, minlength=n_t)
            gain = np.bincount(t * k + lab, weights=ls - lns, minlength=n_t * k).reshape(n_t, k)
            return gain + base[:, None] + np.log(prior)

        def m_step(alpha: FloatArray, b: FloatArray, p_correct: FloatArray) -> tuple[FloatArray, FloatArray]:
            """Alternating damped Newton steps on ability and log-easiness (vectorised).

            The expected log-likelihood is concave in ``alpha`` for fixed ``b``; for ``b`` the
            Fisher-scoring curvature (always negative) is used. Steps are clipped to +-1.
            """
            for _ in range(int(self.m_step_iter)):
                beta = np.exp(b)
                x = alpha[w] * beta[t]
                s = np.exp(_log_sigmoid(x))
                resid, curv = p_correct - s, s * (1.0 - s)
                grad = np.bincount(w, weights=resid * beta[t], minlength=n_w) - (alpha - self.alpha_prior)
                hess = np.bincount(w, weights=curv * beta[t] ** 2, minlength=n_w) + 1.0
                alpha = alpha + np.clip(grad / hess, -1.0, 1.0)
                x = alpha[w] * beta[t]
                s = np.exp(_log_sigmoid(x))
                resid, curv = p_correct - s, s * (1.0 - s)
                grad = np.bincount(t, weights=resid * x, minlength=n_t) - (b - self.b_prior)
                hess = np.bincount(t, weights=curv * x**2, minlength=n_t) + 1.0
                b = b + np.clip(grad / hess, -1.0, 1.0)
            return alpha, b

        history: list[float] = []
        converged = False
        it = 0
        prior = probas.mean(axis=0) + eps
        prior /= prior.sum()
        for it in range(1, int(self.n_iter) + 1):  # noqa: B007
            p_correct = probas[t, lab]
            alpha, b = m_step(alpha, b, p_correct)
            prior = probas.sum(axis=0) + eps
            prior /= prior.sum()
            logits = logits_of(alpha, b, prior)
            history.append(float(logsumexp(logits, axis=1).sum()))
            probas = clamp(softmax_rows(logits.copy()))
            if len(history) > 1 and abs(history[-1] - history[-2]) / max(len(t), 1) < self.tol:
                converged = True
                break
        if not converged and int(self.n_iter) > 0:
            warnings.warn(
                f"GLAD did not converge in n_iter={self.n_iter} iterations (tol={self.tol})",
                ConvergenceWarning,
                stacklevel=3,
            )
        logits = logits_of(alpha, b, prior)
        label_idx = argmax_lowest(logits)
        tau = 1.0
        if self.calibrate is True:  # GLAD has no gold calibration: "gold" leaves the posteriors as they are
            beta = np.exp(b)

            def own(idx: IntArray) -> FloatArray:
                x = alpha[w[idx]] * beta[t[idx]]
                out = np.repeat((_log_sigmoid(-x) - log_wrong_norm)[:, None], k, axis=1)
                out[np.arange(idx.shape[0]), lab[idx]] = _log_sigmoid(x)
                return out

            tau = fit_temperature(logits, own, responses, rng=check_random_state(self.random_state), exclude=gold_idx)
        probas = softmax_rows(logits / tau)
        x = alpha[w] * np.exp(b)[t]
        n_ans = worker_answer_counts(responses)
        acc = np.bincount(w, weights=np.exp(_log_sigmoid(x)), minlength=n_w) / np.maximum(n_ans, 1)
        return AggregationResult(
            method=self.method,
            task_ids=responses.task_ids,
            worker_ids=responses.worker_ids,
            classes=responses.classes,
            probas=probas,
            label_idx=label_idx,
            worker_accuracy=acc,
            worker_n_answers=n_ans,
            priors=prior,
            n_iter=it,
            converged=converged,
            log_likelihood_history=history,
            extras={"alpha": alpha, "beta": np.exp(b), "temperature": tau},
        )
