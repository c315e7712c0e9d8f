"""Community prior for Dawid-Skene confusion matrices (a mixture of Dirichlet populations).

Workers come in a few kinds (careful ones who confuse neighbouring classes, ones with a favourite
label, spammers who answer at random or always the same label, ...). Each kind ``c`` is a
*community* with a mean confusion matrix ``M_c`` and a strength ``s_c``; a worker belongs to one
community and every row of its confusion matrix is drawn from ``Dir(s_c * M_c[k])``. Given the
worker's (soft) answer counts ``n_w``, the posterior predictive confusion matrix is

.. math:: \\hat\\pi_{wkl} = \\sum_c r_{wc}\\,\\frac{n_{wkl} + s_c M_{ckl}}{n_{wk\\cdot} + s_c},

with ``r_wc`` the posterior probability that ``w`` is in community ``c`` (a Dirichlet-multinomial
likelihood of all of its counts). A worker with few answers therefore borrows the whole shape of
its community's matrix (a spammer's constant column, a biased worker's favourite class), which a
single population prior cannot express. Communities, their strengths and weights are fitted by EM
on the workers' soft counts (empirical Bayes), which is the community-based Bayesian
classifier combination of Venanzi et al. fitted by maximum marginal likelihood instead of
variational Bayes.

References
----------
M. Venanzi, J. Guiver, G. Kazai, P. Kohli, M. Shokouhi. Community-based Bayesian aggregation
models for crowdsourcing. WWW 2014. doi:10.1145/2566486.2567989

H.-C. Kim and Z. Ghahramani. Bayesian classifier combination. AISTATS 2012.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from veracity.quality.aggregation._em import softmax_rows
from veracity.types import FloatArray

__all__ = ["CommunityPrior", "dm_loglik", "select_communities"]

_STRENGTHS = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0])


def dm_loglik(counts: FloatArray, alpha: FloatArray) -> FloatArray:
    """Dirichlet-multinomial log marginal of every worker's counts under every community.

    ``counts`` (W, K, K), ``alpha`` (C, K, K) -> (W, C), summed over the K rows (the multinomial
    coefficient, equal for all communities, is left out).
    """
    a0 = alpha.sum(axis=-1)  # (C, K)
    n0 = counts.sum(axis=-1)  # (W, K)
    w, k, _ = counts.shape
    c = alpha.shape[0]
    const = gammaln(a0).sum(axis=-1) - gammaln(alpha).sum(axis=(-1, -2))  # (C,)
    # sums over the short last axes as BLAS products: numpy's reduce over short rows is slow
    rows = gammaln(n0[:, None, :] + a0[None]) @ np.ones(k)  # (W, C)
    cells = gammaln(counts.reshape(w, 1, k * k) + alpha.reshape(1, c, k * k)) @ np.ones(k * k)  # (W, C)
    return cells - rows + const[None]


class CommunityPrior:
    """Mixture of ``n_communities`` Dirichlet populations over confusion matrices.

    ``fit`` runs EM on soft counts (warm-started from the previous fit); ``posterior`` returns the
    workers' community probabilities and ``predictive`` their posterior-mean confusion matrices.
    Deterministic: communities start from the pooled matrix plus farthest-point picks among the
    workers with the most answers.
    """

    def __init__(self, n_communities: int, smoothing: float = 0.01) -> None:
        self.n_communities = max(1, int(n_communities))
        self.smoothing = max(float(smoothing), 1e-6)
        self.means: FloatArray | None = None  # (C, K, K) row-normalised
        self.strengths: FloatArray | None = None  # (C,)
        self.log_weights: FloatArray | None = None  # (C,)
        self.last_log_likelihood = float("nan")

    @property
    def alpha(self) -> FloatArray:
        assert self.means is not None and self.strengths is not None
        return self.strengths[:, None, None] * self.means

    def _init(self, counts: FloatArray) -> None:
        w = counts.shape[0]
        eps = self.smoothing
        norm = (counts + eps) / (counts + eps).sum(axis=-1, keepdims=True)
        pooled = counts.sum(axis=0) + eps
        pooled /= pooled.sum(axis=-1, keepdims=True)
        c = min(self.n_communities, w + 1)
        total = counts.sum(axis=(1, 2))
        pool = np.argsort(-total, kind="stable")[: max(5 * c, 50)]
        picks = [pooled]
        dist = ((norm[pool] - pooled) ** 2).sum(axis=(1, 2))
        for _ in range(c - 1):
            j = int(np.argmax(dist))
            picks.append(norm[pool[j]])
            dist = np.minimum(dist, ((norm[pool] - norm[pool[j]]) ** 2).sum(axis=(1, 2)))
        self.means = np.stack(picks)
        self.strengths = np.full(len(picks), 8.0)
        self.log_weights = np.full(len(picks), -np.log(len(picks)))

    def posterior(self, counts: FloatArray) -> FloatArray:
        """Community probabilities of every worker, (W, C)."""
        assert self.log_weights is not None
        return softmax_rows(dm_loglik(counts, self.alpha) + self.log_weights[None])

    def fit(self, counts: FloatArray, n_iter: int = 10) -> None:
        """EM for the mixture on ``counts`` (W, K, K).

        The iterations use the multinomial approximation of each community (responsibilities
        from ``sum n log M_c``: one matrix product), which is what makes the fit cheap; the
        strengths are then chosen on a grid of powers of two by the Dirichlet-multinomial
        marginal likelihood of each community's own workers, and the means and weights are
        re-estimated once with the Dirichlet-multinomial responsibilities.
        """
        if self.means is None:
            self._init(counts)
        assert self.means is not None and self.log_weights is not None
        w, k, _ = counts.shape
        flat = counts.reshape(w, k * k)
        for _ in range(n_iter):
            resp = softmax_rows(flat @ np.log(self.means).reshape(-1, k * k).T + self.log_weights[None])
            self._update(counts, resp)
        resp = self.posterior(counts)
        strengths = np.empty(len(self.means))
        for c in range(len(self.means)):  # a handful of communities; vectorised over workers
            own = resp[:, c] > 1e-2
            if not own.any():
                strengths[c] = _STRENGTHS[len(_STRENGTHS) // 2]
                continue
            alphas = _STRENGTHS[:, None, None] * self.means[c][None]  # (S, K, K)
            score = dm_loglik(counts[own], alphas).T @ resp[own, c]
            strengths[c] = _STRENGTHS[int(np.argmax(score))]
        self.strengths = strengths
        ll = dm_loglik(counts, self.alpha) + self.log_weights[None]
        peak = ll.max(axis=1)
        self.last_log_likelihood = float((peak + np.log(np.exp(ll - peak[:, None]).sum(axis=1))).sum())
        self._update(counts, softmax_rows(ll))

    def _update(self, counts: FloatArray, resp: FloatArray) -> None:
        mass = resp.sum(axis=0)
        self.log_weights = np.log((mass + 1e-3) / (mass.sum() + 1e-3 * mass.size))
        means = np.einsum("wc,wkl->ckl", resp, counts) + self.smoothing * counts.shape[1]
        self.means = means / means.sum(axis=-1, keepdims=True)

    def bic(self, counts: FloatArray) -> float:
        """Bayesian information criterion of the last :meth:`fit` on ``counts`` (lower is better):
        each community has a mean matrix (K (K - 1) free numbers), a strength and a weight."""
        w, k, _ = counts.shape
        c = len(self.strengths) if self.strengths is not None else 1
        n_params = c * (k * (k - 1) + 1) + (c - 1)
        return -2.0 * self.last_log_likelihood + n_params * float(np.log(max(w, 2)))

    def predictive(self, counts: FloatArray, resp: FloatArray) -> FloatArray:
        """Posterior-mean confusion matrices ``(W, K, K)`` given community probabilities ``resp``."""
        alpha = self.alpha  # (C, K, K)
        out = np.zeros_like(counts)
        rows = counts.sum(axis=-1)  # (W, K)
        for c in range(alpha.shape[0]):  # a handful of communities; vectorised over workers
            post = counts + alpha[c][None]
            post /= (rows + alpha[c].sum(axis=-1)[None])[..., None]
            out += resp[:, c, None, None] * post
        return out


def select_communities(
    counts: FloatArray, candidates: tuple[int, ...], smoothing: float, n_iter: int = 10
) -> CommunityPrior:
    """Fit a :class:`CommunityPrior` for each number of communities in ``candidates`` (increasing)
    and keep the one with the lowest BIC; stops at the first candidate whose BIC is worse than the best."""
    best: CommunityPrior | None = None
    best_bic = np.inf
    worse = 0
    for c in candidates:
        if c > max(1, counts.shape[0] // 2):
            break
        prior = CommunityPrior(c, smoothing)
        prior.fit(counts, n_iter=n_iter)
        bic = prior.bic(counts)
        if bic < best_bic:
            best, best_bic, worse = prior, bic, 0
        else:
            worse += 1
            if worse >= 1:
                break
    if best is None:
        best = CommunityPrior(1, smoothing)
        best.fit(counts, n_iter=n_iter)
    return best
