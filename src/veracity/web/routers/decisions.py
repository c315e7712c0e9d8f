"""/api/v1 decision support: policy, run, queue, verdicts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from veracity.services import decisions as decision_service
from veracity.web.deps import DB, CurrentActor, Id

router = APIRouter(prefix="/api/v1", tags=["decisions"])


class PolicyIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"coverage": 0.9, "score": "aps", "threshold": 0.8,
                                         "class_conditional": False, "calibration": "temperature"}]}
    )

    coverage: float = Field(0.9, gt=0, lt=1)
    score: str = "lac"
    threshold: float = Field(0.0, ge=0, le=1)
    class_conditional: bool = False
    calibration: str = Field("none", description="none, or temperature: recalibrate the model's probabilities "
                             "by temperature scaling on the trusted items first")


class RunIn(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [{"model": "resnet50"}]})

    model: str
    model_version: str | None = None
    trusted_confidence: float = Field(0.9, ge=0, le=1)


class VerdictIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"action": "override", "label": "dog", "reason": "ears visible"}]}
    )

    action: str = Field(description="accept, override or escalate")
    label: str | None = None
    reason: str = ""


@router.put("/projects/{project_id}/decision-policy", summary="Set the project's decision policy")
def set_policy(project_id: Id, body: PolicyIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return decision_service.set_policy(db, actor, project_id, body.model_dump())


@router.post("/projects/{project_id}/decisions", summary="Decide on every undecided item with a model's outputs")
async def run_decisions(project_id: Id, body: RunIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return await run_in_threadpool(
        decision_service.run_decisions, db, actor, project_id, model=body.model, model_version=body.model_version,
        trusted_confidence=body.trusted_confidence,
    )


@router.get("/projects/{project_id}/decisions", summary="Decision queue with evidence")
def decision_queue(
    project_id: Id, db: DB, actor: CurrentActor, status: str = Query("pending"), limit: int = Query(50, ge=1, le=500)
) -> list[dict[str, Any]]:
    return decision_service.decision_queue(db, actor, project_id, status=status, limit=limit)


@router.post("/decisions/{decision_id}", summary="Accept, override (with reason) or escalate a decision")
def record_decision(decision_id: Id, body: VerdictIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return decision_service.record_decision(db, actor, decision_id, body.action, label=body.label, reason=body.reason)
