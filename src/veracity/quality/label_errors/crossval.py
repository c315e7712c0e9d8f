"""Out-of-sample predicted probabilities by stratified k-fold cross-validation, for any classifier.

scikit-learn is not a dependency of Veracity and is never imported here: the estimator is
duck-typed (``fit`` and ``predict_proba``, optionally ``classes_``) and copied with
``sklearn.base.clone`` when scikit-learn is already loaded, else through ``get_params`` or
``copy.deepcopy``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import InvalidInputError
from veracity.quality._validation import check_random_state
from veracity.quality.label_errors._checks import check_int_option
from veracity.types import RandomState

__all__ = ["cross_val_pred_probs", "stratified_folds"]


def stratified_folds(
    labels: npt.NDArray[np.integer[Any]], folds: int, random_state: RandomState = 0
) -> npt.NDArray[np.intp]:
    """Fold number (0 .. folds-1) of each item; each class is spread evenly over the folds.

    Items are shuffled, sorted by class and dealt round-robin, so fold sizes per class differ by at
    most one.
    """
    rng = check_random_state(random_state)
    n = labels.shape[0]
    perm = rng.permutation(n)
    order = perm[np.argsort(labels[perm], kind="stable")]
    fold = np.empty(n, dtype=np.intp)
    fold[order] = np.arange(n) % folds
    return fold


def _clone(estimator: Any) -> Any:
    """An unfitted copy: ``sklearn.base.clone`` when scikit-learn is loaded, else by ``get_params``.

    scikit-learn is never imported here: a scikit-learn estimator means it is already loaded.
    """
    base = sys.modules.get("sklearn.base")
    if base is not None:
        try:
            return base.clone(estimator)
        except (TypeError, RuntimeError):
            pass
    if hasattr(estimator, "get_params"):
        return type(estimator)(**estimator.get_params())
    return copy.deepcopy(estimator)


def cross_val_pred_probs(
    features: Any,
    labels: Any,
    estimator: Any,
    folds: int = 5,
    *,
    n_classes: int | None = None,
    random_state: RandomState = 0,
) -> npt.NDArray[np.float64]:
    """Predicted probabilities of each item from a model that never saw it (stratified k-fold).

    Parameters
    ----------
    features : array-like, shape (n_items, ...)
        Anything the estimator accepts and that can be indexed by an integer array
        (numpy array, scipy sparse matrix, pandas frame through ``.iloc``).
    labels : array-like of int, shape (n_items,)
        Given class of each item, in ``0 .. n_classes - 1``.
    estimator : object
        Classifier with ``fit(features, labels)`` and ``predict_proba(features)`` (any
        scikit-learn classifier). It is cloned for every fold and never fitted itself.
    folds : int, default 5
        Number of folds (at least 2).
    n_classes : int, optional
        Number of classes; default ``labels.max() + 1``.
    random_state : int, Generator or None
        Seeds the assignment of items to folds.

    Returns
    -------
    ndarray of float64, shape (n_items, n_classes)
        Row i holds the probabilities from the model trained on the folds without item i; classes
        missing from a training fold get probability 0.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression  # doctest: +SKIP
    >>> probs = cross_val_pred_probs(features, labels, LogisticRegression(), folds=5)  # doctest: +SKIP
    """
    name = type(estimator).__name__
    for method in ("fit", "predict_proba"):
        if not callable(getattr(estimator, method, None)):
            raise InvalidInputError(f"estimator {name} has no {method}() method")
    rng = check_random_state(random_state)
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be 1-D integer class indices, got shape {lab.shape}, dtype {lab.dtype}")
    n = lab.shape[0]
    if not (hasattr(features, "shape") or hasattr(features, "iloc")):
        try:
            features = np.asarray(features)
        except ValueError as exc:
            raise InvalidInputError(f"features must be array-like (n_items, ...): {exc}") from None
    n_rows = features.shape[0] if hasattr(features, "shape") and features.shape else len(features)
    if n_rows != n:
        raise InvalidInputError(f"features and labels must have the same number of rows, got {n_rows} and {n}")
    folds = check_int_option("folds", folds, 2)
    if folds > n:
        raise InvalidInputError(f"folds must be between 2 and n_items ({n}), got {folds}")
    if n and lab.min() < 0:
        raise InvalidInputError(f"labels must be >= 0, got {lab.min()}")
    k = check_int_option("n_classes", n_classes, 1) if n_classes is not None else int(lab.max()) + 1
    if n and lab.max() >= k:
        raise InvalidInputError(f"labels must be < n_classes ({k}), got {lab.max()}")
    counts = np.bincount(lab, minlength=k)
    fold = stratified_folds(lab, folds, rng)
    take = features.iloc.__getitem__ if hasattr(features, "iloc") else features.__getitem__
    out = np.zeros((n, k), dtype=np.float64)
    for f in range(folds):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        model = _clone(estimator)
        try:
            model.fit(take(train), lab[train])
        except Exception as exc:  # the user's estimator: explain the usual cause, else re-raise
            _explain_fit_failure(exc, name, f, folds, counts, lab[train])
            raise
        probs = np.asarray(model.predict_proba(take(test)))
        classes = getattr(model, "classes_", None)
        cols = _check_estimator_output(probs, classes, name, f, test.shape[0], lab[train], k)
        out[np.ix_(test, cols)] = probs
    return out


def _explain_fit_failure(
    exc: Exception,
    name: str,
    fold: int,
    folds: int,
    counts: npt.NDArray[np.intp],
    train_labels: npt.NDArray[np.integer[Any]],
) -> None:
    """Raise :class:`InvalidInputError` when ``fit`` failed on a fold that misses classes."""
    rare = np.flatnonzero((counts > 0) & (counts < folds))
    present = np.unique(train_labels)
    if rare.size == 0 and present.size >= 2:
        return
    if rare.size:
        c = int(rare[np.argmin(counts[rare])])
        why = f"class {c} has only {counts[c]} item(s), fewer than folds={folds}"
    else:
        why = f"the training folds hold only class(es) {present.tolist()}"
    raise InvalidInputError(
        f"estimator {name} failed to fit on fold {fold}: {why}; use fewer folds or drop rare classes "
        f"({type(exc).__name__}: {exc})"
    ) from exc


def _check_estimator_output(
    probs: npt.NDArray[Any],
    classes: Any,
    name: str,
    fold: int,
    n_test: int,
    train_labels: npt.NDArray[np.integer[Any]],
    n_classes: int,
) -> npt.NDArray[np.intp]:
    """Column index (class) of each column of ``predict_proba``; errors name the estimator."""
    where = f"estimator {name} on fold {fold}"
    if probs.dtype.kind not in "fiub" or probs.ndim != 2 or probs.shape[0] != n_test:
        raise InvalidInputError(
            f"{where}: predict_proba must return numbers of shape ({n_test}, n_classes), "
            f"got shape {probs.shape}, dtype {probs.dtype}"
        )
    if not np.isfinite(probs).all():
        row = int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])
        raise InvalidInputError(f"{where}: predict_proba returned non-finite values (test row {row})")
    if classes is None:
        cols = np.unique(train_labels)
    else:
        cols = np.asarray(classes)
        if cols.ndim != 1 or cols.dtype.kind not in "iu" or (cols.size and (cols.min() < 0 or cols.max() >= n_classes)):
            raise InvalidInputError(
                f"{where}: classes_ must be integer class indices in 0..{n_classes - 1}, got {cols.tolist()[:8]}"
            )
    if cols.shape[0] != probs.shape[1]:
        raise InvalidInputError(
            f"{where}: predict_proba returned {probs.shape[1]} columns for {cols.shape[0]} classes {cols.tolist()[:8]}"
        )
    return cols.astype(np.intp)
