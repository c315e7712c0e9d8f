"""/api/v1/projects: create, list, members, items, next task, consensus, export."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from veracity.errors import InvalidInputError
from veracity.services import ingest as ingest_service
from veracity.services import projects as project_service
from veracity.services import tasks as task_service
from veracity.web.deps import DB, MAX_ID, AppSettings, CurrentActor, CurrentCaller, Id, run_hot
from veracity.web.schemas import MemberIn, ProjectIn, ProjectOut

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def _out(view: project_service.ProjectView) -> ProjectOut:
    d = view.to_dict()
    d["label_schema"] = d.pop("schema")
    return ProjectOut.model_validate(d)


@router.post("", status_code=201, response_model=ProjectOut, summary="Create a project")
def create_project(body: ProjectIn, db: DB, actor: CurrentActor) -> ProjectOut:
    view = project_service.create_project(
        db, actor, name=body.name, schema=body.label_schema, description=body.description, overlap=body.overlap,
        gold_rate=body.gold_rate, min_labels=body.min_labels, max_labels=body.max_labels,
        target_confidence=body.target_confidence, consensus_method=body.consensus_method, settings=body.settings,
    )
    return _out(view)


@router.get("", summary="List the projects visible to the caller")
def list_projects(db: DB, actor: CurrentActor) -> list[dict[str, Any]]:
    return project_service.list_projects(db, actor)


@router.get("/{project_id}", response_model=ProjectOut, summary="Get a project")
def get_project(project_id: Id, db: DB, actor: CurrentActor) -> ProjectOut:
    return _out(project_service.get_project(db, actor, project_id))


@router.post("/{project_id}/members", status_code=201, summary="Add a member or change their role")
def add_member(project_id: Id, body: MemberIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    return project_service.add_member(db, actor, project_id, body.user, body.role, quota=body.quota)


@router.get("/{project_id}/members", summary="List members")
def list_members(project_id: Id, db: DB, actor: CurrentActor) -> list[dict[str, Any]]:
    return project_service.list_members(db, actor, project_id)


def _parse_items(body: bytes, content_type: str) -> tuple[Iterator[tuple[int, Any]], str]:
    """(position, record) pairs of the body, parsed lazily (a JSON list or NDJSON), and what a position is.

    Malformed JSON raises :class:`InvalidInputError` when the import reaches it; the import is one
    transaction, so nothing is stored.
    """
    if not body.strip():
        raise InvalidInputError("body: expected a JSON list of items or NDJSON, got an empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"body: not UTF-8 text (byte {exc.start})") from exc
    if "ndjson" in content_type or "jsonlines" in content_type or "jsonl" in content_type:
        return project_service.iter_ndjson(text), "line"
    if text.lstrip().startswith("["):
        return _malformed_as_invalid(project_service.iter_json_array(text)), "index"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and "\n" in text.strip():
            return project_service.iter_ndjson(text), "line"  # NDJSON sent without its content type
        raise InvalidInputError(_malformed(exc)) from exc
    if isinstance(parsed, dict) and isinstance(parsed.get("items"), list):
        parsed = parsed["items"]
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        raise InvalidInputError("body: expected a JSON list of item objects")
    return enumerate(parsed), "index"


def _malformed(exc: json.JSONDecodeError) -> str:
    return f"body: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"


def _malformed_as_invalid(pairs: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    try:
        yield from pairs
    except json.JSONDecodeError as exc:
        raise InvalidInputError(_malformed(exc)) from None


@router.post(
    "/{project_id}/items",
    status_code=201,
    summary="Import items (JSON list or NDJSON); all-or-nothing per request",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"example": [{"id": "t1", "text": "great product"}, {"text": "awful"}]},
                "application/x-ndjson": {"example": '{"text": "great product"}\n{"text": "awful"}\n'},
            }
        }
    },
)
async def import_items(
    project_id: Id, request: Request, db: DB, actor: CurrentActor, settings: AppSettings
) -> dict[str, Any]:
    body = await request.body()
    if len(body) > settings.max_upload_bytes:
        raise InvalidInputError(f"body: {len(body)} bytes is over the limit of {settings.max_upload_bytes}")
    pairs, location = _parse_items(body, request.headers.get("content-type", ""))
    result = await run_in_threadpool(
        project_service.import_numbered_items, db, actor, project_id, pairs, location=location, source="api"
    )
    return result.to_dict()


@router.get(
    "/{project_id}/next",
    summary="Lease the next task for the caller (204 when none)",
    responses={204: {"description": "No task left for you"}},
)
async def next_task(project_id: Id, db: DB, caller: CurrentCaller, settings: AppSettings) -> Any:
    # The hot path of labelling: authentication and the service run as one call (on SQLite on the
    # event loop itself when it can, see run_hot), and the payload (plain JSON values) is encoded
    # directly.
    task = await run_hot(
        db, lambda: task_service.next_task(db, caller.actor(), project_id, lease_seconds=settings.lease_seconds)
    )
    if task is None:
        return Response(status_code=204)
    return JSONResponse(task)


@router.get("/{project_id}/consensus", summary="Consensus labels, keyset-paginated")
def list_consensus(
    project_id: Id,
    db: DB,
    actor: CurrentActor,
    response: Response,
    label: str | None = None,
    cursor: int = Query(0, ge=0, le=MAX_ID, description="Value of X-Next-Cursor from the previous page."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    rows, nxt = project_service.list_consensus(db, actor, project_id, label=label, after=cursor, limit=limit)
    if nxt is not None:
        response.headers["X-Next-Cursor"] = str(nxt)
        response.headers["Link"] = f'<?cursor={nxt}&limit={limit}>; rel="next"'
    return rows


EXPORT_FIELDS = ["id", "external_id", "data", "label", "confidence", "gold", "annotations"]


def _jsonl_lines(head: str | None, lines: Iterator[str]) -> Iterator[bytes]:
    """JSON lines joined into ~256 KB chunks (one thread hop and socket write per chunk, not per line)."""
    if head is None:
        return
    buf = [head]
    size = len(head)
    for line in lines:
        buf.append(line)
        size += len(line) + 1
        if size >= 1 << 18:
            buf.append("")
            yield "\n".join(buf).encode()
            buf = []
            size = 0
    buf.append("")
    if len(buf) > 1:
        yield "\n".join(buf).encode()


def _csv(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_FIELDS)
    for rec in records:
        writer.writerow([
            json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict | list) else ("" if v is None else v)
            for v in (rec[f] for f in EXPORT_FIELDS)
        ])
        if buf.tell() > 1 << 16:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


FILE_FORMATS = {"parquet": ("application/vnd.apache.parquet", ".parquet"), "coco": ("application/json", ".json"),
                "labelstudio": ("application/json", ".json"), "crowd": ("text/csv", ".csv")}


def _export_file(db: Any, actor: Any, project_id: int, fmt: str) -> tuple[Path, str, str, Path]:
    """Write the export into a temporary folder; folders (YOLO, VOC, HF) are zipped."""
    tmp = Path(tempfile.mkdtemp(prefix="veracity-export-"))
    media, suffix = FILE_FORMATS.get(fmt, ("application/zip", ""))
    target = tmp / f"project-{project_id}-{fmt}{suffix}"
    report = ingest_service.export_project(db, actor, project_id, fmt, target)
    path = Path(report.path)
    if path.is_dir():
        path = Path(shutil.make_archive(str(path), "zip", root_dir=path))
        media = "application/zip"
    return path, media, path.name, tmp


@router.get("/{project_id}/export", summary="Export every item with its consensus and annotations")
def export_project(
    project_id: Id,
    db: DB,
    actor: CurrentActor,
    format: Literal["jsonl", "csv", "parquet", "coco", "yolo", "voc", "labelstudio", "crowd", "hf"] = Query(
        "jsonl", description="jsonl and csv stream; other formats are written to a file (folders are zipped)."
    ),
) -> Response:
    if format not in ("jsonl", "csv"):
        path, media, name, tmp = _export_file(db, actor, project_id, format)
        return FileResponse(path, media_type=media, filename=name,
                            background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))
    if format == "csv":
        records = project_service.iter_export_records(db, actor, project_id, format="csv")
        first = next(records, None)  # runs the permission check before the response starts

        def chain() -> Iterator[dict[str, Any]]:
            if first is not None:
                yield first
                yield from records

        return StreamingResponse(_csv(chain()), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="project-{project_id}.csv"'})
    lines = project_service.iter_export_lines(db, actor, project_id)
    head = next(lines, None)  # runs the permission check before the response starts
    return StreamingResponse(_jsonl_lines(head, lines), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="project-{project_id}.jsonl"'})
