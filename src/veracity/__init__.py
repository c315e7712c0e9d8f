"""Veracity: trustworthy training data and accountable AI-assisted decisions.

The numeric engines are importable on their own: ``veracity.quality`` (truth inference, agreement,
label issues), ``veracity.align`` (drift, coverage) and ``veracity.decide`` (calibration,
conformal prediction). The workflow (storage, services, web, CLI) stands on them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("veracity")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
