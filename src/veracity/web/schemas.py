"""Pydantic request and response models of the REST API (HTTP only; services never import these)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from veracity.services._common import INT32_MAX
from veracity.services.projects import MAX_LABELS_PER_ITEM, MAX_PROJECT_NAME

__all__ = [
    "AnnotationIn",
    "AssignIn",
    "IssueResolveIn",
    "MemberIn",
    "PredictionsIn",
    "ProjectIn",
    "ProjectOut",
    "ReviewIn",
]


class ProjectIn(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"name": "Sentiment", "schema": {"kind": "classification", "labels": ["pos", "neg"]},
                 "overlap": 3, "gold_rate": 0.05}
            ]
        },
    )

    name: str = Field(min_length=1, max_length=MAX_PROJECT_NAME)
    label_schema: dict[str, Any] = Field(alias="schema", description="Label schema, e.g. {kind, labels}.")
    description: str = ""
    overlap: int = Field(1, ge=1, le=100, description="Annotators per item.")
    gold_rate: float = Field(0.0, ge=0.0, le=1.0, description="Share of gold (honeypot) tasks served.")
    min_labels: int | None = Field(
        None, ge=1, le=MAX_LABELS_PER_ITEM, description="Adaptive redundancy: labels before stopping."
    )
    max_labels: int | None = Field(None, ge=1, le=MAX_LABELS_PER_ITEM, description="Adaptive redundancy: most labels.")
    target_confidence: float | None = Field(None, description="Adaptive redundancy: stop at this confidence.")
    consensus_method: str = Field("mv", description="Consensus method (mv, wmv, ds, onecoin, glad, mace, auto).")
    settings: dict[str, Any] = Field(default_factory=dict)


class ProjectOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    description: str
    label_schema: dict[str, Any] = Field(serialization_alias="schema")
    schema_version: int
    overlap: int
    gold_rate: float
    min_labels: int | None
    max_labels: int | None
    target_confidence: float | None
    consensus_method: str
    dataset_id: int
    created_at: str | None
    settings: dict[str, Any]


class MemberIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user": "alice", "role": "annotator"}]})

    user: str
    role: str = Field(description="manager, reviewer, annotator or viewer")
    quota: int | None = Field(None, ge=0, le=INT32_MAX, description="Most tasks this member may take in the project.")


class AnnotationIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": "pos", "idempotency_key": "7f1c9a", "duration_ms": 2300}]}
    )

    value: Any = Field(description="A label value of the project's schema kind.")
    idempotency_key: str | None = Field(None, max_length=128, description="Retries with the same key store one row.")
    duration_ms: int | None = Field(None, ge=0, le=INT32_MAX)


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"verdict": "correct", "value": "dog", "comment": "it barks"}]}
    )

    verdict: str = Field(description="accept, reject or correct")
    value: Any = Field(None, description="The right value, for 'correct'.")
    comment: str = ""


class IssueResolveIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"action": "fix"}, {"action": "keep"}]})

    action: str = Field(description="keep (the given label) or fix (to value, default the suggestion)")
    value: Any = None


class PredictionsIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"model": "resnet50", "model_version": "2026-11", "predictions": [
                {"external_id": "a", "probabilities": [0.9, 0.1]}, {"item_id": 7, "value": "dog"}]}]
        }
    )

    model: str = Field(min_length=1)
    model_version: str = ""
    predictions: list[dict[str, Any]]


class AssignIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"user": "alice", "item_ids": [1, 2, 3]}]})

    user: str
    item_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=100_000)
