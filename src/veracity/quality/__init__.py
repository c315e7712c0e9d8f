"""Veracity's quality engine: truth inference, agreement and label checks on numpy arrays.

Pure numpy/scipy: no I/O, no database, no pandas at import. Usable as a library on its own.
Submodules load on first use (PEP 562), so ``find_label_issues`` does not pay for the
scipy.special that truth inference needs (and truth inference has its own 1-D search, so it
never imports scipy.optimize).

>>> from veracity.quality import aggregate, agreement
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veracity.quality._base import AggregationResult, label_information
    from veracity.quality.aggregation import aggregate, infer_truth
    from veracity.quality.agreement import agreement
    from veracity.quality.data_issues import find_data_issues
    from veracity.quality.label_errors import cross_val_pred_probs, find_label_issues
    from veracity.quality.responses import Responses

__all__ = [
    "AggregationResult",
    "Responses",
    "aggregate",
    "agreement",
    "cross_val_pred_probs",
    "find_data_issues",
    "find_label_issues",
    "infer_truth",
    "label_information",
]

_HOME = {
    "AggregationResult": "veracity.quality._base",
    "label_information": "veracity.quality._base",
    "Responses": "veracity.quality.responses",
    "aggregate": "veracity.quality.aggregation",
    "infer_truth": "veracity.quality.aggregation",
    "agreement": "veracity.quality.agreement",
    "find_data_issues": "veracity.quality.data_issues",
    "find_label_issues": "veracity.quality.label_errors",
    "cross_val_pred_probs": "veracity.quality.label_errors",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'veracity.quality' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _Package(types.ModuleType):
    """This package's module type: a function exported under its submodule's name stays the function.

    After loading a submodule the import system binds it to the package's attribute of that name.
    ``agreement`` is both the subpackage ``veracity.quality.agreement`` and the function it
    exports here, so importing, say, ``veracity.quality.agreement.kappa`` before the first use of
    ``veracity.quality.agreement`` would otherwise make that name the module.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOME.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
