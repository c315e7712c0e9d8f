"""Veracity: trustworthy training data and accountable AI-assisted decisions.

The numeric engines are importable on their own: ``veracity.quality`` (truth inference, agreement,
label issues), ``veracity.align`` (drift, coverage) and ``veracity.decide`` (calibration,
conformal prediction). The workflow (storage, services, web, CLI) stands on them.
"""

from __future__ import annotations

from functools import cache

__all__ = ["__version__"]


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("veracity")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> str:
    # looked up on first use: importlib.metadata and the search of the installed distributions
    # cost about 35 ms, a tenth of ``import veracity.quality``, which most processes never need
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'veracity' has no attribute {name!r}")
