"""Label shift: estimate operational class priors from model outputs and re-weight probabilities.

Under label shift ``p(x | y)`` stays the same while the class priors ``p(y)`` change. Two
estimators of the new priors ``q(y)`` are provided:

- black-box shift estimation (BBSE, Lipton et al. 2018): solve ``C w = mu`` where ``C[i, j]`` is
  the joint frequency of prediction ``i`` and true class ``j`` on labelled source data and ``mu`` the
  mean prediction on target data; ``q = w * p_source``. Works with any (even miscalibrated) model.
- EM prior adjustment (Saerens et al. 2002): iterate ``p'(y|x) ∝ p(y|x) q(y) / p(y)`` and
  ``q(y) = mean p'(y|x)``; needs calibrated probabilities, is often more accurate when they are.

References
----------
.. [1] Z. C. Lipton, Y.-X. Wang, A. J. Smola, "Detecting and Correcting for Label Shift with Black
   Box Predictors", ICML 2018, arXiv:1802.03916.
.. [2] M. Saerens, P. Latinne, C. Decaestecker, "Adjusting the Outputs of a Classifier to New a
   Priori Probabilities: A Simple Procedure", Neural Computation 14(1):21-41, 2002,
   doi:10.1162/089976602753284446.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from veracity.errors import ConvergenceWarning, InvalidInputError
from veracity.types import FloatArray

__all__ = ["LabelShiftResult", "bbse", "em_prior_adjustment", "estimate_label_shift", "reweight_probs"]


#: How far a row of probabilities may sum from 1 (as ``veracity.decide``): rows within it are
#: renormalised, rows further off (scores, logits, counts) are an error.
ROW_SUM_TOL = 1e-3


def _probs(x: Any, name: str) -> FloatArray:
    p = np.asarray(x)
    if p.dtype.kind not in "fiub":
        raise InvalidInputError(f"{name} must hold numbers, got dtype {p.dtype}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InvalidInputError(f"{name} must be 2-D (n_items, n_classes) with >= 2 classes, got shape {p.shape}")
    if p.shape[0] == 0:
        raise InvalidInputError(f"{name} must have at least one row")
    s = p.sum(axis=1, keepdims=True)
    bad = ~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1) | ~(np.abs(s[:, 0] - 1.0) <= ROW_SUM_TOL)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{name} row {row} is not a probability vector (finite values >= 0 summing to 1 within "
            f"{ROW_SUM_TOL:g}), got sum {s[row, 0]:.6g}"
        )
    return p / s


def _check_classes_seen(labels: np.ndarray, k: int, name: str) -> None:
    """Raise if a class never occurs in ``labels`` (its target prior
    cannot be estimated: BBSE's confusion matrix has an empty column, EM divides by its prior)."""
    counts = np.bincount(labels, minlength=k)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise InvalidInputError(
            f"{name} has no item of class {', '.join(map(str, missing.tolist()))} (of 0..{k - 1}); "
            "every class needs labelled reference items to estimate its share in current data"
        )


def _labels(y: Any, k: int, n: int, name: str) -> np.ndarray:
    lab = np.asarray(y)
    if lab.shape != (n,):
        raise InvalidInputError(f"{name} must have shape ({n},) to match the probabilities, got {lab.shape}")
    if lab.dtype.kind not in "iu" or (lab < 0).any() or (lab >= k).any():
        raise InvalidInputError(f"{name} must be integer classes in 0..{k - 1}")
    return lab.astype(np.int64)


def reweight_probs(probs: Any, weights: Any) -> FloatArray:
    """Probabilities adjusted to new priors: ``p'(y|x) ∝ p(y|x) * w_y`` with ``w = q / p_source``."""
    p = _probs(probs, "probs")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (p.shape[1],) or (w < 0).any() or not np.isfinite(w).all():
        raise InvalidInputError(f"weights must be {p.shape[1]} finite values >= 0, got shape {w.shape}")
    out = p * w[None, :]
    s = out.sum(axis=1, keepdims=True)
    bad = s[:, 0] <= 0
    out[bad] = p[bad]
    s[bad] = 1.0
    return out / s


@dataclass(frozen=True)
class LabelShiftResult:
    """Estimated class priors of the current data and the matching re-weighting.

    Attributes
    ----------
    method : str
        ``"bbse"`` or ``"em"``.
    source_priors : ndarray, shape (n_classes,)
        Class priors of the reference (training) data.
    target_priors : ndarray, shape (n_classes,)
        Estimated class priors of the current data.
    weights : ndarray, shape (n_classes,)
        ``target_priors / source_priors`` (importance weights per class).
    adjusted_probs : ndarray, shape (n_current, n_classes)
        Current probabilities re-weighted to the new priors.
    p_value : float
        Test of "no label shift": chi-squared test of the predicted-class counts of reference versus
        current data (Lipton et al. 2018, section 5); NaN when reference predictions were not given.
    n_iter : int
        EM iterations (0 for BBSE).
    converged : bool
        EM reached ``tol`` (always True for BBSE).
    """

    method: str
    source_priors: FloatArray
    target_priors: FloatArray
    weights: FloatArray
    adjusted_probs: FloatArray
    p_value: float
    n_iter: int = 0
    converged: bool = True

    def to_dict(self, *, include_probs: bool = False) -> dict[str, Any]:
        """JSON-ready dict (``adjusted_probs`` only when asked: it has one row per item)."""
        out: dict[str, Any] = {
            "method": self.method,
            "source_priors": self.source_priors.tolist(),
            "target_priors": self.target_priors.tolist(),
            "weights": self.weights.tolist(),
            "p_value": None if not np.isfinite(self.p_value) else self.p_value,
            "n_iter": self.n_iter,
            "converged": self.converged,
        }
        if include_probs:
            out["adjusted_probs"] = self.adjusted_probs.tolist()
        return out


def _prediction_shift_p(source_probs: FloatArray, target_probs: FloatArray) -> float:
    k = source_probs.shape[1]
    a = np.bincount(source_probs.argmax(1), minlength=k)
    b = np.bincount(target_probs.argmax(1), minlength=k)
    keep = (a + b) > 0
    if keep.sum() < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([a[keep], b[keep]]), correction=False).pvalue)


def bbse(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    soft: bool = True,
    rcond: float | None = None,
) -> LabelShiftResult:
    """Black-box shift estimation of the target class priors (Lipton et al. 2018).

    Parameters
    ----------
    source_probs : array-like, shape (n_source, n_classes)
        Model probabilities on held-out labelled source (training-distribution) items.
    source_labels : array-like of int, shape (n_source,)
        Their true classes.
    target_probs : array-like, shape (n_target, n_classes)
        Model probabilities on current items.
    soft : bool
        Use probabilities (soft confusion matrix) rather than argmax predictions.
    rcond : float, optional
        Cut-off for small singular values in the least-squares solve of ``C w = mu``.

    Returns
    -------
    LabelShiftResult
        Weights are clipped at 0 and the priors renormalised.

    References
    ----------
    Z. C. Lipton, Y.-X. Wang, A. J. Smola, ICML 2018, arXiv:1802.03916.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def sample(prior, n):
    ...     y = rng.choice(2, size=n, p=prior)
    ...     x = rng.normal(2.0 * y, 1.0)
    ...     p1 = 1 / (1 + np.exp(-(2.0 * x - 2.0)))
    ...     return np.column_stack([1 - p1, p1]), y
    >>> ps, ys = sample([0.5, 0.5], 4000)
    >>> pt, _ = sample([0.8, 0.2], 4000)
    >>> res = bbse(ps, ys, pt)
    >>> bool(abs(res.target_priors[0] - 0.8) < 0.05)
    True
    """
    ps = _probs(source_probs, "source_probs")
    k = ps.shape[1]
    ys = _labels(source_labels, k, ps.shape[0], "source_labels")
    pt = _probs(target_probs, "target_probs")
    if pt.shape[1] != k:
        raise InvalidInputError(f"target_probs must have {k} columns like source_probs, got {pt.shape[1]}")
    _check_classes_seen(ys, k, "source_labels")
    onehot_y = np.eye(k)[ys]
    if soft:
        pred_s, pred_t = ps, pt
    else:
        pred_s, pred_t = np.eye(k)[ps.argmax(1)], np.eye(k)[pt.argmax(1)]
    confusion = pred_s.T @ onehot_y / ps.shape[0]  # C[i, j] = P(pred i, true j)
    mu = pred_t.mean(axis=0)
    w = np.linalg.lstsq(confusion, mu, rcond=rcond)[0]
    source_priors = onehot_y.mean(axis=0)
    w = np.where(source_priors > 0, np.maximum(w, 0.0), 0.0)
    q = w * source_priors
    q = q / q.sum() if q.sum() > 0 else source_priors.copy()
    weights = np.divide(q, source_priors, out=np.zeros(k), where=source_priors > 0)
    return LabelShiftResult("bbse", source_priors, q, weights, reweight_probs(pt, weights), _prediction_shift_p(ps, pt))


def em_prior_adjustment(
    target_probs: Any,
    source_priors: Any,
    *,
    n_iter: int = 1000,
    tol: float = 1e-8,
    source_probs: Any = None,
) -> LabelShiftResult:
    """EM estimate of the target priors and adjusted posteriors (Saerens et al. 2002).

    Parameters
    ----------
    target_probs : array-like, shape (n_target, n_classes)
        Calibrated model probabilities on current items (trained under ``source_priors``).
    source_priors : array-like, shape (n_classes,)
        Class priors of the training data.
    n_iter, tol : int, float
        Iteration cap and convergence tolerance on the max change of the priors; hitting the cap
        emits :class:`~veracity.errors.ConvergenceWarning`.
    source_probs : array-like, optional
        Probabilities on reference items, only for the ``p_value`` test of predicted classes.

    References
    ----------
    M. Saerens, P. Latinne, C. Decaestecker, Neural Computation 14(1):21-41, 2002,
    doi:10.1162/089976602753284446.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.choice(2, size=5000, p=[0.8, 0.2])
    >>> x = rng.normal(2.0 * y, 1.0)
    >>> p1 = 1 / (1 + np.exp(-(2.0 * x - 2.0)))   # Bayes posterior under 50/50 priors
    >>> res = em_prior_adjustment(np.column_stack([1 - p1, p1]), [0.5, 0.5])
    >>> bool(abs(res.target_priors[0] - 0.8) < 0.03)
    True
    """
    pt = _probs(target_probs, "target_probs")
    k = pt.shape[1]
    ps_prior = np.asarray(source_priors)
    if ps_prior.dtype.kind not in "fiu" or ps_prior.ndim != 1:
        raise InvalidInputError(f"source_priors must be a 1-D array of numbers, got {source_priors!r}")
    ps_prior = ps_prior.astype(np.float64)
    if ps_prior.shape != (k,):
        raise InvalidInputError(
            f"source_priors has {ps_prior.size} values but target_probs has {k} columns (classes); they must match"
        )
    if (ps_prior <= 0).any() or not np.isfinite(ps_prior).all():
        raise InvalidInputError(f"source_priors must be {k} finite positive values, got {ps_prior.tolist()!r}")
    ps_prior = ps_prior / ps_prior.sum()
    q = ps_prior.copy()
    converged = False
    it = 0
    adjusted = pt
    for it in range(1, int(n_iter) + 1):  # noqa: B007 - the count is reported
        adjusted = reweight_probs(pt, q / ps_prior)
        new_q = adjusted.mean(axis=0)
        delta = float(np.max(np.abs(new_q - q)))
        q = new_q
        if delta < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"EM prior adjustment stopped after n_iter={n_iter} iterations before tol={tol}",
            ConvergenceWarning,
            stacklevel=2,
        )
    weights = q / ps_prior
    p_value = float("nan")
    if source_probs is not None:
        p_value = _prediction_shift_p(_probs(source_probs, "source_probs"), pt)
    return LabelShiftResult("em", ps_prior, q, weights, reweight_probs(pt, weights), p_value, it, converged)


def estimate_label_shift(
    source_probs: Any,
    source_labels: Any,
    target_probs: Any,
    *,
    method: str = "bbse",
) -> LabelShiftResult:
    """Estimate the current class priors with ``"bbse"`` (default) or ``"em"``.

    ``"em"`` takes the source priors from ``source_labels`` and needs calibrated probabilities.
    """
    if method == "bbse":
        return bbse(source_probs, source_labels, target_probs)
    if method == "em":
        ps = _probs(source_probs, "source_probs")
        k = ps.shape[1]
        ys = _labels(source_labels, k, ps.shape[0], "source_labels")
        shape = np.shape(target_probs)
        if len(shape) == 2 and shape[1] != k:
            raise InvalidInputError(f"target_probs must have {k} columns like source_probs, got {shape[1]}")
        _check_classes_seen(ys, k, "source_labels")
        priors = np.bincount(ys, minlength=k).astype(np.float64) + 1e-9
        return em_prior_adjustment(target_probs, priors / priors.sum(), source_probs=ps)
    raise InvalidInputError(f"label shift method must be 'bbse' or 'em', got {method!r}")
