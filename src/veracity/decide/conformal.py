"""Split conformal prediction sets for classification: LAC, APS and RAPS scores, Mondrian option.

A conformity score ``s(x, k)`` says how unusual label ``k`` is for item ``x`` (lower = more
typical). On calibration data with known labels the score of the true label is computed for every
item; its conformal quantile ``q`` is the ``ceil((n + 1) * coverage)``-th smallest of the ``n``
scores, and the set of a new item holds every label with ``s(x, k) <= q``. For exchangeable data
this covers the true label with probability at least ``coverage`` (Vovk et al. 2005; Lei et al.
2018), whatever the model.

References
----------
.. [1] V. Vovk, A. Gammerman, G. Shafer, "Algorithmic Learning in a Random World", Springer 2005,
   doi:10.1007/b106715.
.. [2] J. Lei, M. G'Sell, A. Rinaldo, R. J. Tibshirani, L. Wasserman, "Distribution-Free Predictive
   Inference for Regression", JASA 113(523), 2018, doi:10.1080/01621459.2017.1307116.
.. [3] M. Sadinle, J. Lei, L. Wasserman, "Least Ambiguous Set-Valued Classifiers with Bounded Error
   Levels", JASA 114(525), 2019, doi:10.1080/01621459.2017.1395341 (LAC).
.. [4] Y. Romano, M. Sesia, E. J. Candès, "Classification with Valid and Adaptive Coverage",
   NeurIPS 2020, arXiv:2006.02544 (APS).
.. [5] A. N. Angelopoulos, S. Bates, J. Malik, M. I. Jordan, "Uncertainty Sets for Image Classifiers
   using Conformal Prediction", ICLR 2021, arXiv:2009.14193 (RAPS).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

from veracity.decide._checks import (
    check_bool,
    check_int,
    check_labels,
    check_number,
    check_probs,
    check_probs_unscaled,
    check_random_state,
    check_unit_interval,
)
from veracity.errors import InvalidInputError
from veracity.types import FloatArray, IntArray, RandomState

__all__ = ["SCORES", "CoverageWarning", "SetEvaluation", "SplitConformal", "conformal_quantile", "evaluate_sets"]

BoolArray = npt.NDArray[np.bool_]
ScoreName = Literal["lac", "aps", "raps"]
#: Conformity scores understood by :class:`SplitConformal`.
SCORES: tuple[str, ...] = ("lac", "aps", "raps")

#: Score given to the top label when sets must not be empty: below every real score (all are >= 0).
_TOP_SCORE = -1.0
#: Rows up to this many classes are reduced column by column: numpy's reductions along short rows
#: pay a fixed cost per row (5,000 x 10: ``max(axis=1)`` ~0.2 ms, ten ``np.maximum`` ~0.03 ms).
_SHORT_ROWS = 24
#: Largest ``n_bins`` of :func:`evaluate_sets` (more bins than that are noise, and cost memory).
_MAX_BINS = 10_000


class CoverageWarning(UserWarning):
    """Too few calibration items for the coverage asked: the threshold is infinite and every
    prediction set (of the classes concerned) holds every label."""


def conformal_quantile(scores: Any, coverage: float) -> float:
    """The split-conformal threshold: the ``ceil((n + 1) * coverage)``-th smallest of ``scores``.

    Equivalently the empirical quantile at level ``ceil((n + 1) * coverage) / n`` (the finite-sample
    correction of Lei et al. 2018). ``+inf`` when that rank exceeds ``n`` (too few calibration
    scores to promise ``coverage``: every label is then kept).

    Examples
    --------
    >>> conformal_quantile([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 0.8)
    0.8
    >>> conformal_quantile([0.1, 0.2], 0.9)
    inf
    """
    coverage = check_unit_interval("coverage", coverage)
    s = np.asarray(scores)
    if s.dtype.kind not in "fiu":
        raise InvalidInputError(f"scores must be numbers, got dtype {s.dtype}")
    s = np.asarray(s, dtype=np.float64).ravel()
    if np.isnan(s).any():
        raise InvalidInputError(f"scores must not be NaN, got NaN at position {int(np.flatnonzero(np.isnan(s))[0])}")
    n = s.size
    rank = math.ceil((n + 1) * coverage - 1e-9)
    if n == 0 or rank > n:
        return math.inf
    rank = max(rank, 1)
    return float(np.partition(s, rank - 1)[rank - 1])


def _row_max(p: FloatArray) -> FloatArray:
    """Largest value of every row; column by column for short rows (see ``_SHORT_ROWS``)."""
    k = p.shape[1]
    if k > _SHORT_ROWS:
        return np.asarray(p.max(axis=1))
    out = p[:, 0].copy()
    for j in range(1, k):
        np.maximum(out, p[:, j], out=out)
    return out


def _top_mask(p: FloatArray) -> BoolArray | None:
    """Mask of every row's top label for short rows without ties at the maximum, else ``None``.

    ``p >= row max`` marks exactly the top label of every row when no row ties at its maximum
    (one count checks it); with ties, or long rows, callers use ``argmax`` (first index on ties).
    """
    n, k = p.shape
    if k > _SHORT_ROWS:
        return None
    # flat comparison with the repeated maxima: a broadcast over short rows is slower
    mask = (np.ascontiguousarray(p).ravel() >= np.repeat(_row_max(p), k)).reshape(n, k)
    return mask if np.count_nonzero(mask) == n else None


def _is_top(p: FloatArray, y: IntArray, p_y: FloatArray) -> BoolArray:
    """Whether ``y[i]`` is the top label of row ``i`` (largest probability, first index on ties)."""
    top = _top_mask(p)
    if top is not None:
        return _label_values(top, y)
    # More than half of a row's mass (rows sum to 1 within 1e-12) is its unique maximum: only the
    # other rows need an argmax, gathered when they are few (a large gathered copy costs more in
    # page faults than the argmax of every row).
    hit = p_y > 0.5 + 1e-9
    rows = np.flatnonzero(~hit)
    if 8 * rows.size > p.shape[0]:
        return np.argmax(p, axis=1) == y
    hit[rows] = np.argmax(np.take(p, rows, axis=0), axis=1) == y[rows]
    return hit


def _top_index(p: FloatArray) -> IntArray:
    """Flat indices into ``p`` (n, k) of every row's top label (largest probability, first on ties)."""
    n, k = p.shape
    return np.arange(n) * k + np.argmax(p, axis=1)


def _lac_cut_scalar(q: float) -> FloatArray | None:
    """:func:`_lac_cut` of one float, in plain Python floats (IEEE doubles, as numpy's float64)."""
    if math.isinf(q):
        return np.float64(-math.inf if q > 0 else math.inf)
    c0 = 1.0 - q
    step = 4e-16 * max(1.0, abs(c0))
    lo, hi = c0 - step, c0 + step
    for _ in range(8):
        if 1.0 - hi <= q < 1.0 - lo:
            break
        step *= 2.0
        hi = hi + step if 1.0 - hi > q else hi
        lo = lo - step if 1.0 - lo <= q else lo
    for _ in range(256):
        mid = lo + 0.5 * (hi - lo)
        if not lo < mid < hi:
            break
        if 1.0 - mid <= q:
            hi = mid
        else:
            lo = mid
    exact = 1.0 - hi <= q < 1.0 - math.nextafter(hi, -math.inf)
    return np.float64(hi) if exact else None


def _lac_cut(q: Any) -> FloatArray | None:
    """Smallest float ``c`` with ``1.0 - c <= q`` in float64 arithmetic, elementwise.

    ``1.0 - p`` rounds monotonically in ``p``, so ``1.0 - p <= q`` holds exactly when ``p >= c``:
    the LAC sets are one comparison of the probabilities, without computing (and allocating) the
    scores ``1 - p`` of every label. Found by bisection between neighbouring floats; ``None`` if the
    bisection did not close (then the caller compares the scores themselves).
    """
    if np.ndim(q) == 0:
        return _lac_cut_scalar(float(q))
    qv = np.asarray(q, dtype=np.float64)
    if not np.isfinite(qv).all():
        finite = np.isfinite(qv)
        out = np.full(qv.shape, -np.inf)
        if finite.any():
            sub = _lac_cut(qv[finite])
            if sub is None:
                return None
            out[finite] = sub
        return out
    c0 = 1.0 - qv
    step = 4e-16 * np.maximum(1.0, np.abs(c0))
    lo, hi = c0 - step, c0 + step
    for _ in range(8):  # widen until 1 - hi <= q < 1 - lo
        bad_hi, bad_lo = (1.0 - hi) > qv, (1.0 - lo) <= qv
        if not (bad_hi.any() or bad_lo.any()):
            break
        step = 2.0 * step
        hi, lo = np.where(bad_hi, hi + step, hi), np.where(bad_lo, lo - step, lo)
    for _ in range(256):
        mid = lo + 0.5 * (hi - lo)
        open_ = (mid > lo) & (mid < hi)
        if not open_.any():
            break
        ok = (1.0 - mid) <= qv
        hi = np.where(open_ & ok, mid, hi)
        lo = np.where(open_ & ~ok, mid, lo)
    exact = ((1.0 - hi) <= qv) & ((1.0 - np.nextafter(hi, -np.inf)) > qv)
    return hi if exact.all() else None


def _scaled_cuts(cut: float, sums: FloatArray) -> FloatArray | None:
    """Per row ``i``, the smallest float ``t`` with ``t / sums[i] >= cut`` in float64 arithmetic.

    Dividing by a positive number rounds monotonically, so ``values[i] >= t[i]`` holds exactly
    when the renormalised value ``values[i] / sums[i]`` is ``>= cut``: the sets of rows that do not
    sum to 1 are one comparison, without a renormalised copy of the matrix. ``cut * sums`` is
    within an ulp or two of the answer, which a few steps to neighbouring floats reach; ``None``
    if they did not (the caller then renormalises).
    """
    if not math.isfinite(cut):
        return np.full(sums.shape, cut)
    t = cut * sums
    for _ in range(4):
        low = (t / sums) < cut
        if not low.any():
            break
        t = np.where(low, np.nextafter(t, np.inf), t)
    for _ in range(4):
        below = np.nextafter(t, -np.inf)
        fits = (below / sums) >= cut
        if not fits.any():
            break
        t = np.where(fits, below, t)
    exact = ((t / sums) >= cut) & ((np.nextafter(t, -np.inf) / sums) < cut)
    return t if exact.all() else None


def _at_least(p: FloatArray, row_cut: FloatArray) -> BoolArray:
    """``p >= row_cut[:, None]``; for short rows one flat comparison with the repeated cuts."""
    n, k = p.shape
    if k > _SHORT_ROWS:
        return np.greater_equal(p, row_cut[:, None])
    return (np.ascontiguousarray(p).ravel() >= np.repeat(row_cut, k)).reshape(n, k)


def _lac_quantile(rest: FloatArray, n_top: int, coverage: float) -> float:
    """:func:`conformal_quantile` of ``n_top`` scores at ``_TOP_SCORE`` and the scores ``rest`` (all larger).

    Selects among ``rest`` only: a partition is slow on many equal values (never-empty LAC gives
    the top score to every item whose label is the model's top label, often most of them).
    """
    n = n_top + rest.size
    rank = math.ceil((n + 1) * coverage - 1e-9)
    if n == 0 or rank > n:
        return math.inf
    if rank <= n_top:
        return _TOP_SCORE
    return float(np.partition(rest, rank - n_top - 1)[rank - n_top - 1])


def _warn_infinite(quantile: float | FloatArray, coverage: float, n_items: int) -> None:
    """Emit :class:`CoverageWarning` when a fitted threshold is infinite (too few calibration items)."""
    need = math.ceil(1.0 / (1.0 - coverage) - 1e-9) - 1
    if np.ndim(quantile) == 0:
        if math.isinf(quantile):
            warnings.warn(
                f"{n_items} calibration items are too few for coverage={coverage:g} (at least {need} are "
                "needed): the threshold is infinite and every prediction set holds every label",
                CoverageWarning,
                stacklevel=3,
            )
        return
    # Mondrian: a small class with an infinite threshold is documented (its label is always kept);
    # warn only when that holds for every class, so that every set holds every label.
    if np.isinf(quantile).all():
        warnings.warn(
            f"every class has fewer than {need} calibration items for coverage={coverage:g}: all thresholds "
            "are infinite and every prediction set holds every label",
            CoverageWarning,
            stacklevel=3,
        )


def _label_values(p: npt.NDArray[Any], y: IntArray) -> npt.NDArray[Any]:
    """``p[i, y[i]]`` for every row, by one flat ``take`` (cheaper than fancy 2-D indexing)."""
    n, k = p.shape
    return np.take(np.ascontiguousarray(p).ravel(), np.arange(n) * k + y)


class SplitConformal:
    """Split conformal classifier: calibrated prediction sets from any model's probabilities.

    Parameters
    ----------
    coverage : float
        Target probability ``1 - alpha`` that a set holds the true label, in (0, 1).
    score : {"lac", "aps", "raps"}
        Conformity score of label ``k`` for an item with probabilities ``p``:

        - ``"lac"``: ``1 - p_k`` (least ambiguous set-valued classifier, Sadinle et al. 2019); the
          smallest sets on average.
        - ``"aps"``: total probability of the labels ranked above ``k``, plus ``u * p_k`` (adaptive
          prediction sets, Romano et al. 2020); larger sets for hard items, smaller for easy ones.
          Deterministic by default (``u = 0``: a set is the shortest run of top labels whose mass
          reaches the threshold, so it is never empty); ``randomized=True`` draws ``u ~ U(0, 1)``.
        - ``"raps"``: APS plus ``lam * max(0, rank_k - k_reg)`` (regularised APS, Angelopoulos et al.
          2021), which discourages long tails of unlikely labels.
    class_conditional : bool
        Mondrian (label-conditional) calibration: one quantile per class from the calibration items
        of that class, so that coverage holds within every class, not only on average (Vovk et al.
        2005). A class with fewer than ``ceil(1 / (1 - coverage)) - 1`` calibration items gets an
        infinite quantile (its label is always kept).
    allow_empty : bool
        Default ``False``: every set holds the top label (``argmax`` of ``p``, first index on ties).
        To keep the guarantee while doing so, the top label's score is set below every other
        score *both* in calibration and in prediction; this is still a fixed function of
        ``(x, k)``, so the finite-sample guarantee holds, and the sets are never larger than sets
        calibrated without the top label and filled with it afterwards. When the model's top-1
        accuracy exceeds ``coverage``, never-empty sets necessarily over-cover. ``True`` gives the
        plain score (sets may be empty, coverage is closest to nominal).
    randomized : bool
        For ``aps``/``raps``: add ``u * p_k`` with ``u ~ Uniform(0, 1)`` to the score, as in Romano
        et al. 2020, which makes coverage exact rather than at least nominal, at the price of sets
        that depend on a random draw. Uses ``random_state``.
    lam, k_reg : float, int
        RAPS penalty weight and the number of top ranks left unpenalised.
    random_state : int, numpy Generator or None
        Randomness of ``randomized`` scores (never the global RNG).

    Attributes
    ----------
    quantile_ : float or ndarray of shape (n_classes,)
        Fitted threshold, per class when ``class_conditional``.
    n_classes_ : int
        Number of classes (columns of ``cal_probs``).
    n_calibration_ : int
        Number of calibration items.
    cal_scores_ : ndarray of shape (n_calibration,)
        Conformity score of each calibration item's true label.
    lac_cut_ : float, ndarray of shape (n_classes,) or None
        For ``score="lac"``: the smallest probability ``c`` with ``1 - c <= quantile_`` in float64,
        so that a label is in a set exactly when its probability is ``>= lac_cut_`` (or it is the
        top label); ``None`` for other scores.

    References
    ----------
    Lei et al. 2018, doi:10.1080/01621459.2017.1307116; Sadinle et al. 2019,
    doi:10.1080/01621459.2017.1395341; Romano et al. 2020, arXiv:2006.02544; Angelopoulos et al.
    2021, arXiv:2009.14193; Vovk et al. 2005, doi:10.1007/b106715.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> probs = rng.dirichlet(np.ones(3), size=500)
    >>> labels = np.array([rng.choice(3, p=p) for p in probs])
    >>> cp = SplitConformal(coverage=0.9, score="aps").fit(probs[:250], labels[:250])
    >>> sets = cp.predict_sets(probs[250:])
    >>> sets.shape, bool(sets.any(axis=1).all())
    ((250, 3), True)
    """

    def __init__(
        self,
        coverage: float = 0.9,
        *,
        score: ScoreName = "lac",
        class_conditional: bool = False,
        allow_empty: bool = False,
        randomized: bool = False,
        lam: float = 0.01,
        k_reg: int = 1,
        random_state: RandomState = None,
    ) -> None:
        self.coverage = coverage
        self.score = score
        self.class_conditional = class_conditional
        self.allow_empty = allow_empty
        self.randomized = randomized
        self.lam = lam
        self.k_reg = k_reg
        self.random_state = random_state

    # -- scores -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_unit_interval("coverage", self.coverage)
        if not isinstance(self.score, str) or self.score not in SCORES:
            raise InvalidInputError(f"score must be one of {', '.join(map(repr, SCORES))}, got {self.score!r}")
        lam = check_number("lam", self.lam)
        if not (np.isfinite(lam) and lam >= 0):
            raise InvalidInputError(f"lam must be >= 0, got {self.lam!r}")
        check_int("k_reg", self.k_reg, 0)
        for name in ("class_conditional", "allow_empty", "randomized"):
            check_bool(name, getattr(self, name))

    def _scores(self, p: FloatArray, rng: np.random.Generator | None) -> FloatArray:
        n, k = p.shape
        if self.score == "lac":
            s = 1.0 - p
            if not self.allow_empty and n:
                s.ravel()[_top_index(p)] = _TOP_SCORE
            return s
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        # probability mass of the labels ranked strictly above k, plus u * p_k
        cum = np.cumsum(sorted_p, axis=1) - sorted_p
        if self.score == "raps":
            ranks = np.arange(1, k + 1, dtype=np.float64)
            cum = cum + float(self.lam) * np.maximum(0.0, ranks - int(self.k_reg))
        if self.randomized and rng is not None:
            cum = cum + rng.random((n, 1)) * sorted_p
        s = np.empty_like(cum)
        np.put_along_axis(s, order, cum, axis=1)
        s = np.maximum(s, 0.0)
        if not self.allow_empty and n:
            s.ravel()[np.arange(n) * k + order[:, 0]] = _TOP_SCORE  # first label of the ranking
        return s

    def _true_scores(
        self, p: FloatArray, y: IntArray, rng: np.random.Generator | None, sums: FloatArray | None = None
    ) -> FloatArray:
        """Score of the given label of each row, without sorting (same values as ``_scores``).

        ``sums`` (LAC only): the probabilities are ``p / sums[:, None]``; only the given labels'
        values are divided (the top label is the same in ``p``).
        """
        n, k = p.shape
        p_y = _label_values(p, y)
        if sums is not None:
            p_y = p_y / sums
        if self.score == "lac":
            if self.allow_empty or not n:
                return 1.0 - p_y
            return np.where(_is_top(p, y, p_y), _TOP_SCORE, 1.0 - p_y)
        # labels ranked above y: larger probability, or equal probability and a smaller index
        above = (p > p_y[:, None]) | ((p == p_y[:, None]) & (np.arange(k)[None, :] < y[:, None]))
        s = np.einsum("ij,ij->i", p, above)
        if self.score == "raps":
            rank = above.sum(axis=1) + 1.0
            s = s + float(self.lam) * np.maximum(0.0, rank - int(self.k_reg))
        if self.randomized and rng is not None:
            s = s + rng.random(n) * p_y
        s = np.maximum(s, 0.0)
        if not self.allow_empty:
            s = np.where(~above.any(axis=1), _TOP_SCORE, s)
        return s

    def conformity_scores(self, probs: Any) -> FloatArray:
        """Score of every label, shape (n_items, n_classes); lower means more conforming.

        With ``randomized`` scores this draws fresh uniforms from the fitted random state.
        """
        self._check_params()
        p = check_probs(probs)
        return self._scores(p, getattr(self, "rng_", None) if self.randomized else None)

    # -- fit / predict ------------------------------------------------------------------------
    def fit(self, cal_probs: Any, cal_labels: Any) -> Self:
        """Calibrate on held-out ``cal_probs`` (n, k) and true ``cal_labels`` (n,).

        The calibration items must not have been used to train the model, and must be exchangeable
        with the items to be predicted.
        """
        self._check_params()
        for name in ("quantile_", "lac_cut_", "cal_scores_", "n_classes_", "n_calibration_"):
            self.__dict__.pop(name, None)
        if self.score == "lac":  # only the true labels' values need renormalising
            p, sums = check_probs_unscaled(cal_probs, name="cal_probs")
        else:
            p, sums = check_probs(cal_probs, name="cal_probs"), None
        n_items, n_classes = p.shape
        y = check_labels(cal_labels, n_classes, n_items, name="cal_labels")
        if n_items == 0:
            raise InvalidInputError("cal_probs must have at least one calibration row, got 0")
        # the random state is only drawn from by randomized scores (building a Generator costs time)
        self.rng_ = check_random_state(self.random_state) if self.randomized else None
        true_scores = self._true_scores(p, y, self.rng_, sums)
        cov = float(self.coverage)
        if self.class_conditional:
            # scores grouped by class: one stable sort instead of a boolean mask per class
            grouped = true_scores[np.argsort(y, kind="stable")]
            ends = np.cumsum(np.bincount(y, minlength=n_classes))
            starts = np.r_[0, ends[:-1]]
            q = np.array([conformal_quantile(grouped[a:b], cov) for a, b in zip(starts, ends, strict=True)])
            self.quantile_: float | FloatArray = q
        elif self.score == "lac" and not self.allow_empty:
            top = true_scores == _TOP_SCORE
            self.quantile_ = _lac_quantile(true_scores[~top], int(np.count_nonzero(top)), cov)
        else:
            self.quantile_ = conformal_quantile(true_scores, cov)
        _warn_infinite(self.quantile_, cov, n_items)
        self.lac_cut_ = _lac_cut(self.quantile_) if self.score == "lac" else None
        self.cal_scores_ = true_scores
        self.n_classes_ = n_classes
        self.n_calibration_ = n_items
        return self

    def predict_sets(self, test_probs: Any) -> BoolArray:
        """Prediction sets for ``test_probs`` (n, k): a bool array (n, k), True = label in the set.

        Never empty unless ``allow_empty=True`` (the top label is always in).
        """
        if not hasattr(self, "quantile_"):
            raise InvalidInputError("SplitConformal is not fitted yet: call fit(cal_probs, cal_labels) first")
        if self.score != "lac":
            p = check_probs(test_probs, name="test_probs")
        else:
            p, sums = check_probs_unscaled(test_probs, name="test_probs")
        if p.shape[1] != self.n_classes_:
            raise InvalidInputError(f"test_probs must have {self.n_classes_} columns as in fit, got {p.shape[1]}")
        q = np.asarray(self.quantile_, dtype=np.float64)
        if self.score == "lac":
            # 1 - p <= q as one comparison of p (see _lac_cut); the top label's score (-1) is below
            # every quantile, so the top label is simply added to the set. Rows that do not sum to 1
            # compare their values with a cut scaled by the row sum (see _scaled_cuts).
            cut = self.__dict__.get("lac_cut_")
            row_cuts = _scaled_cuts(float(cut), sums) if cut is not None and sums is not None and not q.ndim else None
            if row_cuts is not None:
                sets = _at_least(p, row_cuts)
            else:
                scaled = p if sums is None else p / sums[:, None]
                sets = scaled >= cut if cut is not None else np.less_equal(1.0 - scaled, q)
            if not self.allow_empty and p.shape[0]:
                top = _top_mask(p)
                if top is not None:
                    sets |= top
                elif q.ndim:  # one cut per class: the top label may be out while others are in
                    sets.ravel()[_top_index(p)] = True
                else:
                    # with one cut, a row with any label in its set holds its top label already;
                    # set sizes by einsum over the bytes (3x faster than any(axis=1); uint8 sums
                    # are exact below 256 classes)
                    sizes = np.einsum("ij->i", sets.view(np.uint8)) if p.shape[1] < 256 else sets.sum(axis=1)
                    rows = np.flatnonzero(sizes == 0)
                    if rows.size:
                        sets[rows, np.argmax(np.take(p, rows, axis=0), axis=1)] = True
            return sets
        scores = self._scores(p, self.rng_)
        return scores <= q

    def fit_predict_sets(self, cal_probs: Any, cal_labels: Any, test_probs: Any) -> BoolArray:
        """``fit(cal_probs, cal_labels).predict_sets(test_probs)``."""
        return self.fit(cal_probs, cal_labels).predict_sets(test_probs)

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (for storing a policy next to its decisions)."""
        return {
            "coverage": self.coverage,
            "score": self.score,
            "class_conditional": self.class_conditional,
            "allow_empty": self.allow_empty,
            "randomized": self.randomized,
            "lam": self.lam,
            "k_reg": self.k_reg,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"SplitConformal({args})"


@dataclass(frozen=True)
class SetEvaluation:
    """How prediction sets did on labelled items.

    Attributes
    ----------
    coverage : float
        Fraction of items whose set holds the true label.
    mean_size : float
        Mean number of labels per set.
    empty_rate : float
        Fraction of empty sets.
    singleton_rate : float
        Fraction of sets with exactly one label.
    class_coverage : ndarray, shape (n_classes,)
        Coverage among the items of each true class (NaN where a class has no items).
    bin_edges : ndarray, shape (n_bins + 1,)
        Difficulty bins: quantiles of ``1 - max(p)`` (0 = easy).
    bin_coverage, bin_size : ndarray, shape (n_bins,)
        Coverage and mean set size per difficulty bin.
    """

    coverage: float
    mean_size: float
    empty_rate: float
    singleton_rate: float
    class_coverage: FloatArray
    bin_edges: FloatArray
    bin_coverage: FloatArray
    bin_size: FloatArray = field(default_factory=lambda: np.empty(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""

        def clean(a: FloatArray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64)]

        return {
            "coverage": self.coverage,
            "mean_size": self.mean_size,
            "empty_rate": self.empty_rate,
            "singleton_rate": self.singleton_rate,
            "class_coverage": clean(self.class_coverage),
            "bin_edges": clean(self.bin_edges),
            "bin_coverage": clean(self.bin_coverage),
            "bin_size": clean(self.bin_size),
        }


def _as_sets(sets: Any) -> BoolArray:
    """``sets`` as a bool array (n_items, n_classes): bools, or numbers that are all 0 or 1."""
    raw = np.asarray(sets)
    if raw.ndim != 2:
        raise InvalidInputError(f"sets must be 2-D (n_items, n_classes), got shape {raw.shape}")
    if raw.dtype.kind == "b":
        return raw
    if raw.dtype.kind not in "iuf":
        raise InvalidInputError(f"sets must be bool (or 0/1) membership flags, got dtype {raw.dtype}")
    bad = ~((raw == 0) | (raw == 1))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InvalidInputError(
            f"sets must be bool (or 0/1) membership flags, got {raw[i, j]!r} at row {i}, column {j} "
            "(probabilities? pass SplitConformal.predict_sets(probs))"
        )
    return raw.astype(bool)


def evaluate_sets(sets: Any, labels: Any, probs: Any = None, *, n_bins: int = 5) -> SetEvaluation:
    """Coverage, size, empty-set rate, coverage per class and per difficulty bin of ``sets``.

    Parameters
    ----------
    sets : array-like of bool, shape (n_items, n_classes)
        Prediction sets (e.g. from :meth:`SplitConformal.predict_sets`).
    labels : array-like of int, shape (n_items,)
        True classes.
    probs : array-like of float, shape (n_items, n_classes), optional
        Model probabilities; difficulty is ``1 - max(probs)``, binned at its quantiles into
        ``n_bins`` bins of about equal count. Without ``probs`` the bins are empty arrays.

    Examples
    --------
    >>> import numpy as np
    >>> ev = evaluate_sets(np.array([[True, False], [True, True]]), np.array([1, 1]))
    >>> ev.coverage, ev.mean_size
    (0.5, 1.5)
    """
    s = _as_sets(sets)
    n, k = s.shape
    y = check_labels(labels, k, n)
    if n == 0:
        raise InvalidInputError("sets must have at least one row, got 0")
    n_bins = check_int("n_bins", n_bins, 1, _MAX_BINS)
    hit = s[np.arange(n), y]
    size = s.sum(axis=1)
    counts = np.bincount(y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        class_cov = np.bincount(y, weights=hit.astype(np.float64), minlength=k) / counts
    edges = np.empty(0)
    bin_cov = np.empty(0)
    bin_size = np.empty(0)
    if probs is not None:
        p = check_probs(probs)
        if p.shape != s.shape:
            raise InvalidInputError(f"probs must have the shape of sets {s.shape}, got {p.shape}")
        difficulty = 1.0 - p.max(axis=1)
        edges = np.quantile(difficulty, np.linspace(0, 1, int(n_bins) + 1))
        idx = np.clip(np.searchsorted(edges, difficulty, side="right") - 1, 0, int(n_bins) - 1)
        bc = np.bincount(idx, minlength=int(n_bins))
        with np.errstate(invalid="ignore", divide="ignore"):
            bin_cov = np.bincount(idx, weights=hit.astype(np.float64), minlength=int(n_bins)) / bc
            bin_size = np.bincount(idx, weights=size.astype(np.float64), minlength=int(n_bins)) / bc
    return SetEvaluation(
        coverage=float(hit.mean()),
        mean_size=float(size.mean()),
        empty_rate=float(np.mean(size == 0)),
        singleton_rate=float(np.mean(size == 1)),
        class_coverage=class_cov,
        bin_edges=edges,
        bin_coverage=bin_cov,
        bin_size=bin_size,
    )
