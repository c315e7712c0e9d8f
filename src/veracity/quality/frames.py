"""Optional pandas adapter: DataFrames in and out of the engines (pandas is imported lazily).

pandas is not a dependency of Veracity; these helpers import it only when called.
"""

from __future__ import annotations

import importlib
from typing import Any

from veracity.quality._base import AggregationResult
from veracity.quality._validation import as_responses
from veracity.quality.responses import Responses

__all__ = ["from_frame", "result_to_frame", "workers_to_frame"]


def _pandas() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("this helper needs pandas: pip install pandas") from exc


def from_frame(
    df: Any, *, task: str = "task", worker: str = "worker", label: str = "label", classes: Any = None
) -> Responses:
    """Responses from a long DataFrame with one answer per row."""
    return as_responses(df, task=task, worker=worker, label=label, classes=classes)


def result_to_frame(result: AggregationResult) -> Any:
    """``task, label, confidence`` DataFrame of an aggregation result."""
    pd = _pandas()
    return pd.DataFrame({"task": result.task_ids, "label": result.label_values, "confidence": result.confidence_values})


def workers_to_frame(result: AggregationResult) -> Any:
    """``worker, accuracy, n_answers`` DataFrame of an aggregation result."""
    pd = _pandas()
    return pd.DataFrame(
        {"worker": result.worker_ids, "accuracy": result.worker_accuracy, "n_answers": result.worker_n_answers}
    )
