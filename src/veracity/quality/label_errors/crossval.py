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
from veracity.types import RandomState

__all__ = ["cross_val_pred_probs", "stratified_folds"]


def stratified_folds(
    labels: npt.NDArray[np.integer[Any]], folds: int, random_state: RandomState = 0
) -> npt.NDArray[np.intp]:
    """Fold number (0 .. folds-1) of each item; each class is spread evenly over the folds.

    Items are shuffled, sorted by class and dealt round-robin, so fold sizes per class differ by at
    most one.
    """
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
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
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise InvalidInputError(f"labels must be 1-D integer class indices, got shape {lab.shape}, dtype {lab.dtype}")
    n = lab.shape[0]
    n_rows = features.shape[0] if hasattr(features, "shape") else len(features)
    if n_rows != n:
        raise InvalidInputError(f"features and labels must have the same number of rows, got {n_rows} and {n}")
    if folds < 2 or folds > n:
        raise InvalidInputError(f"folds must be between 2 and n_items ({n}), got {folds}")
    if n and lab.min() < 0:
        raise InvalidInputError(f"labels must be >= 0, got {lab.min()}")
    k = int(n_classes) if n_classes is not None else int(lab.max()) + 1
    if n and lab.max() >= k:
        raise InvalidInputError(f"labels must be < n_classes ({k}), got {lab.max()}")
    fold = stratified_folds(lab, folds, random_state)
    take = features.iloc.__getitem__ if hasattr(features, "iloc") else features.__getitem__
    out = np.zeros((n, k), dtype=np.float64)
    for f in range(folds):
        test = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        model = _clone(estimator)
        model.fit(take(train), lab[train])
        probs = np.asarray(model.predict_proba(take(test)), dtype=np.float64)
        classes = np.asarray(getattr(model, "classes_", np.unique(lab[train])))
        out[np.ix_(test, classes.astype(np.intp))] = probs
    return out
