"""Projects: creation, membership, permissions, item import, consensus listing and export."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Text, cast, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veracity.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.ingest._common import chunked
from veracity.ingest.records import canonical_json, hash_keys
from veracity.services._bulk import (
    ITEM_COLUMNS,
    TASK_COLUMNS,
    existing_hashes,
    gc_paused,
    insert_rows,
    lock_dataset,
    prefetched,
)
from veracity.services._common import check_count, iso
from veracity.services.actors import PROJECT_ROLES, Actor
from veracity.services.audit import append_event
from veracity.services.label_schemas import normalise_schema, validate_value
from veracity.storage import Database
from veracity.storage.models import (
    Annotation,
    Consensus,
    Dataset,
    Item,
    Project,
    ProjectDataset,
    ProjectMember,
    Task,
    User,
    utcnow,
)

__all__ = [
    "ImportResult",
    "ProjectView",
    "add_member",
    "create_project",
    "get_project",
    "import_items",
    "import_numbered_items",
    "iter_export_lines",
    "iter_export_records",
    "iter_json_array",
    "iter_ndjson",
    "list_consensus",
    "list_members",
    "list_projects",
    "parse_ndjson",
    "project_role",
    "require_role",
]

RESERVED_KEYS = ("id", "label", "gold", "sensitivity")
GOLD_TARGET = 1_000_000  # gold tasks may be served to every annotator once


@dataclass(frozen=True)
class ProjectView:
    id: int
    name: str
    description: str
    schema: dict[str, Any]
    schema_version: int
    overlap: int
    gold_rate: float
    min_labels: int | None
    max_labels: int | None
    target_confidence: float | None
    consensus_method: str
    dataset_id: int
    created_at: str | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(p: Project) -> ProjectView:
    return ProjectView(
        id=p.id, name=p.name, description=p.description, schema=p.label_schema, schema_version=p.schema_version,
        overlap=p.overlap, gold_rate=p.gold_rate, min_labels=p.min_labels, max_labels=p.max_labels,
        target_confidence=p.target_confidence, consensus_method=p.consensus_method, dataset_id=p.dataset_id,
        created_at=iso(p.created_at), settings=dict(p.settings or {}),
    )


# --------------------------------------------------------------------------- permissions
def project_role(session: Session, actor: Actor, project_id: int) -> str | None:
    """The actor's role in a project: 'admin' for admins, the member role, or None."""
    if actor.is_admin:
        return "admin"
    return session.execute(
        select(ProjectMember.role).where(ProjectMember.project_id == project_id, ProjectMember.user_id == actor.user_id)
    ).scalar_one_or_none()


def require_role(session: Session, actor: Actor, project_id: int, allowed: Sequence[str]) -> tuple[Project, str]:
    """Load a project and check the actor holds one of ``allowed`` (admin always may).

    A project the actor cannot see at all answers NotFound, so that its existence does not leak.
    """
    project = session.get(Project, project_id)
    role = project_role(session, actor, project_id) if project is not None else None
    if project is None or role is None:
        raise NotFoundError(f"project {project_id} not found")
    if role != "admin" and role not in allowed:
        raise PermissionDeniedError(f"your role in project {project_id} is {role}; this needs {' or '.join(allowed)}")
    return project, role


def require_cleared(session: Session, actor: Actor, item_id: int, missing: str) -> None:
    """Answer NotFound (``missing``, as for an object that does not exist) when the item is marked
    above the actor's clearance, so that acting on it by id neither works nor reveals it."""
    sensitivity = session.execute(select(Item.sensitivity).where(Item.id == item_id)).scalar_one_or_none()
    if sensitivity is None or sensitivity > actor.clearance:
        raise NotFoundError(missing)


# --------------------------------------------------------------------------- projects
#: Longest project name: its dataset is named ``project:<name>`` in a 200-character column.
MAX_PROJECT_NAME = 200 - len("project:")
#: Most labels adaptive redundancy may ask for per item (the same bound as ``overlap``).
MAX_LABELS_PER_ITEM = 100


def create_project(
    db: Database,
    actor: Actor,
    *,
    name: str,
    schema: Mapping[str, Any],
    description: str = "",
    overlap: int = 1,
    gold_rate: float = 0.0,
    min_labels: int | None = None,
    max_labels: int | None = None,
    target_confidence: float | None = None,
    consensus_method: str = "mv",
    settings: Mapping[str, Any] | None = None,
) -> ProjectView:
    """Create a project with its own dataset; the creator becomes its manager."""
    if actor.role not in ("admin", "manager"):
        raise PermissionDeniedError("only admins and managers can create projects")
    name = name.strip()
    if not name:
        raise InvalidInputError("name: expected a non-empty project name")
    if len(name) > MAX_PROJECT_NAME:
        raise InvalidInputError(f"name: expected at most {MAX_PROJECT_NAME} characters, got {len(name)}")
    canonical = normalise_schema(schema)
    check_count("overlap", overlap, low=1, high=100)
    if not 0.0 <= gold_rate <= 1.0:
        raise InvalidInputError(f"gold_rate: expected a fraction from 0 to 1, got {gold_rate!r}")
    if min_labels is not None or max_labels is not None or target_confidence is not None:
        for field, count in (("min_labels", min_labels), ("max_labels", max_labels)):
            if count is not None:
                check_count(field, count, low=1, high=MAX_LABELS_PER_ITEM)
        lo, hi = min_labels or 1, max_labels or max(overlap, min_labels or 1)
        if not 1 <= lo <= hi:
            raise InvalidInputError(f"min_labels/max_labels: expected 1 <= min <= max, got {lo} and {hi}")
        if target_confidence is not None and not 0.5 <= target_confidence < 1.0:
            raise InvalidInputError(f"target_confidence: expected a value in [0.5, 1), got {target_confidence}")
        min_labels, max_labels = lo, hi
    settings = dict(settings or {})
    floor = settings.get("pause_below_information")
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 < floor < 1):
        raise InvalidInputError(f"settings.pause_below_information: expected a share in (0, 1), got {floor!r}")
    min_answers = settings.get("pause_min_answers", 1)
    if isinstance(min_answers, bool) or not isinstance(min_answers, int) or min_answers < 1:
        raise InvalidInputError(f"settings.pause_min_answers: expected an integer >= 1, got {min_answers!r}")
    try:
        with db.transaction() as s:
            dataset = Dataset(name=f"project:{name}", description=f"Items of project {name}")
            s.add(dataset)
            s.flush()
            project = Project(
                name=name, description=description, label_schema=canonical, overlap=overlap, gold_rate=gold_rate,
                min_labels=min_labels, max_labels=max_labels, target_confidence=target_confidence,
                consensus_method=consensus_method, settings=settings, dataset_id=dataset.id,
                created_by=actor.user_id,
            )
            s.add(project)
            s.flush()
            s.add(ProjectDataset(project_id=project.id, dataset_id=dataset.id))
            s.add(ProjectMember(project_id=project.id, user_id=actor.user_id, role="manager"))
            append_event(s, actor=actor.name, action="project.create", object_type="project", object_id=project.id,
                         payload={"name": name, "schema": canonical, "overlap": overlap})
            s.flush()
            return _view(project)
    except IntegrityError as exc:
        raise ConflictError(f"a project named {name!r} already exists") from exc


def get_project(db: Database, actor: Actor, project_id: int) -> ProjectView:
    with db.transaction(write=False) as s:
        project, _ = require_role(s, actor, project_id, PROJECT_ROLES)
        return _view(project)


def find_project(db: Database, actor: Actor, name: str) -> ProjectView:
    with db.transaction(write=False) as s:
        pid = s.execute(select(Project.id).where(Project.name == name)).scalar_one_or_none()
        if pid is None:
            raise NotFoundError(f"no project named {name!r}")
        project, _ = require_role(s, actor, pid, PROJECT_ROLES)
        return _view(project)


def list_projects(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Projects visible to the actor with their task and annotation counts."""
    with db.transaction(write=False) as s:
        q = select(Project).order_by(Project.id)
        if not actor.is_admin:
            q = q.join(ProjectMember, ProjectMember.project_id == Project.id).where(
                ProjectMember.user_id == actor.user_id
            )
        projects = list(s.execute(q).scalars())
        ids = [p.id for p in projects]
        counts: dict[int, tuple[int, int]] = {}
        if ids:
            for pid, n, done in s.execute(
                select(Task.project_id, func.count(), func.sum(Task.n_annotations))
                .where(Task.project_id.in_(ids))
                .group_by(Task.project_id)
            ):
                counts[pid] = (int(n), int(done or 0))
        out = []
        for p in projects:
            n_tasks, n_ann = counts.get(p.id, (0, 0))
            out.append({**_view(p).to_dict(), "n_tasks": n_tasks, "n_annotations": n_ann})
        return out


def add_member(
    db: Database, actor: Actor, project_id: int, user_name: str, role: str, *, quota: int | None = None
) -> dict[str, Any]:
    """Add (or change the role of) a project member. Managers of the project and admins may."""
    if role not in PROJECT_ROLES:
        raise InvalidInputError(f"role: expected one of {', '.join(PROJECT_ROLES)}, got {role!r}")
    if quota is not None:
        check_count("quota", quota)
    with db.transaction() as s:
        require_role(s, actor, project_id, ("manager",))
        user = s.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError(f"user: no user named {user_name!r}")
        member = s.get(ProjectMember, (project_id, user.id))
        if member is None:
            s.add(ProjectMember(project_id=project_id, user_id=user.id, role=role, quota=quota))
        else:
            member.role, member.quota = role, quota
        append_event(s, actor=actor.name, action="project.member", object_type="project", object_id=project_id,
                     payload={"user": user_name, "role": role})
    return {"project_id": project_id, "user": user_name, "role": role, "quota": quota}


def list_members(db: Database, actor: Actor, project_id: int) -> list[dict[str, Any]]:
    with db.transaction(write=False) as s:
        require_role(s, actor, project_id, ("manager", "reviewer", "viewer"))
        rows = s.execute(
            select(User.name, ProjectMember.role)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project_id)
            .order_by(User.name)
        )
        return [{"user": n, "role": r} for n, r in rows]


# --------------------------------------------------------------------------- import
@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    duplicate_of: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "duplicates": self.duplicates, "errors": self.errors,
                "duplicate_of": self.duplicate_of}


def iter_ndjson(body: bytes | str) -> Iterator[tuple[int, Any]]:
    """(line number, value) pairs of NDJSON, parsed line by line as they are consumed.

    Blank lines are skipped; a malformed line raises :class:`InvalidInputError` naming it.
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    loads = json.loads
    pos, size, lineno = 0, len(text), 0
    while pos < size:
        lineno += 1
        nl = text.find("\n", pos)
        end = size if nl < 0 else nl
        line = text[pos:end]
        pos = end + 1
        if not line.strip():
            continue
        try:
            yield lineno, loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"line {lineno}: malformed JSON ({exc.msg} at column {exc.colno})",
                details=[{"line": lineno, "field": None, "message": f"malformed JSON: {exc.msg}"}],
            ) from exc


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def iter_json_array(text: str) -> Iterator[tuple[int, Any]]:
    """(index, value) pairs of a JSON array, decoded element by element as they are consumed.

    The same grammar and error messages as :func:`json.loads` (it uses the same scanner), but
    the whole list never exists at once. Raises :class:`json.JSONDecodeError` where the text
    stops being a JSON array.
    """
    scan = json.JSONDecoder().scan_once
    skip = _WHITESPACE.match
    pos = skip(text, 0).end()
    if text[pos : pos + 1] != "[":
        raise json.JSONDecodeError("Expecting '['", text, pos)
    pos = skip(text, pos + 1).end()
    index = 0
    if text[pos : pos + 1] != "]":
        while True:
            try:
                value, pos = scan(text, pos)
            except StopIteration as exc:
                raise json.JSONDecodeError("Expecting value", text, exc.value) from None
            yield index, value
            index += 1
            pos = skip(text, pos).end()
            delimiter = text[pos : pos + 1]
            if delimiter == "]":
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = skip(text, pos + 1).end()
    end = skip(text, pos + 1).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)


def parse_ndjson(body: bytes | str) -> list[tuple[int, Any]]:
    """Parse NDJSON into (line number, value) pairs; blank lines are skipped; errors name the line."""
    return list(iter_ndjson(body))


def _prepare_record(
    raw: Any, where: str, schema: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None, Any, Any, int, str, str]:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise InvalidInputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    data = {k: v for k, v in raw.items() if k not in RESERVED_KEYS}
    if not data:
        raise InvalidInputError(f"{where}: missing field: an item needs at least one data field such as 'text'")
    required = schema.get("input")
    if required and required not in data:
        raise InvalidInputError(f"{where}.{required}: missing field {required!r}")
    ext = raw.get("id")
    if ext is not None and not isinstance(ext, str | int):
        raise InvalidInputError(f"{where}.id: expected a string or number")
    label = raw.get("label")
    if label is not None:
        validate_value(schema, label, item=data, where=f"{where}.label")
    gold = raw.get("gold")
    if gold is not None:
        validate_value(schema, gold, item=data, where=f"{where}.gold")
    sensitivity = raw.get("sensitivity", 0)
    if not isinstance(sensitivity, int) or isinstance(sensitivity, bool) or not 0 <= sensitivity <= 9:
        raise InvalidInputError(f"{where}.sensitivity: expected an integer marking from 0 to 9")
    try:
        # the same hash as `veracity import`, so both dedupe against each other
        text = canonical_json(data)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    except ValueError as exc:
        raise InvalidInputError(f"{where}: numbers must be finite (NaN and Infinity are not JSON)") from exc
    return data, (None if ext is None else str(ext)), label, gold, sensitivity, digest, text


IMPORT_CHUNK = 5000  # records validated and stored per step of a REST import


def import_items(
    db: Database,
    actor: Actor,
    project_id: int,
    records: Iterable[Any],
    *,
    location: str = "index",
    positions: Iterable[int] | None = None,
    source: str = "api",
) -> ImportResult:
    """Import item records into a project's own dataset and create their tasks.

    Each record is an object whose fields become ``item.data``; reserved keys: ``id`` (external id),
    ``label`` (an imported label, stored as an annotation with origin "import"), ``gold`` (a known
    answer: the task becomes a hidden gold task) and ``sensitivity`` (marking 0-9).
    All records are checked: one bad record rejects the batch, nothing is stored, and the
    error names every bad record by ``location`` ("index" for a JSON list, "line" for NDJSON) and
    its position (``positions[i]``, default the 0-based index).
    Exact duplicates (same content hash as an item already in the dataset or earlier in the batch)
    are not stored again; they are counted and listed with the item they duplicate.
    """
    pairs = enumerate(records) if positions is None else zip(positions, records, strict=True)
    return import_numbered_items(db, actor, project_id, pairs, location=location, source=source)


def import_numbered_items(
    db: Database,
    actor: Actor,
    project_id: int,
    pairs: Iterable[tuple[int, Any]],
    *,
    location: str = "index",
    source: str = "api",
) -> ImportResult:
    """:func:`import_items` for ``(position, record)`` pairs, consumed lazily in chunks.

    The whole request is one transaction, written chunk by chunk as the records are read (the
    REST body is parsed incrementally), so memory holds one chunk of records, not the batch. A
    bad record (or a parse error raised by ``pairs``) rolls everything back; the records after the
    first bad one are still checked, so that the error lists them all.
    """
    # bulk: the rows reference only the project and its dataset (read in this transaction, which
    # holds the write lock, so they stay) and rows this import just inserted, so SQLite need not
    # check foreign keys row by row (see Database.transaction).
    with gc_paused(), db.transaction(bulk=True) as s:
        project, _ = require_role(s, actor, project_id, ("manager",))
        schema = project.label_schema
        job = _ItemImport(s, project, location, source)
        errors: list[dict[str, Any]] = []
        # Parsing and checking (Python) run a chunk ahead in a second thread while SQLite or
        # psycopg store the current chunk with the GIL released.
        for prepared, bad in prefetched(_prepared_chunks(pairs, location, schema)):
            errors.extend(bad)
            if not errors:
                job.store(prepared)
        if errors:
            summary = "; ".join(e["message"] for e in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise InvalidInputError(f"{len(errors)} bad record(s), nothing imported: {summary}{more}", details=errors)
        result = job.result
        append_event(s, actor=actor.name, action="items.import", object_type="project", object_id=project.id,
                     payload={"imported": result.imported, "duplicates": result.duplicates, "source": source})
        return result


def _prepared_chunks(
    pairs: Iterable[tuple[int, Any]], location: str, schema: Mapping[str, Any]
) -> Iterator[tuple[list[Any], list[dict[str, Any]]]]:
    """(checked records, errors) per chunk of ``IMPORT_CHUNK`` records."""
    for chunk in chunked(pairs, IMPORT_CHUNK):
        prepared = []
        errors: list[dict[str, Any]] = []
        for pos, raw in chunk:
            where = f"{location} {pos}"
            try:
                prepared.append((pos, *_prepare_record(raw, where, schema)))
            except InvalidInputError as exc:
                field_name = exc.message.split(":", 1)[0].removeprefix(where).lstrip(".") or None
                errors.append({location: pos, "field": field_name, "message": exc.message})
        yield prepared, errors


class _ItemImport:
    """Stores the checked records of one REST import, chunk by chunk, in the caller's transaction."""

    def __init__(self, session: Session, project: Project, location: str, source: str) -> None:
        self.s = session
        self.project = project
        self.location = location
        self.source = source
        self.result = ImportResult()
        self.own: dict[int, int] = {}  # item id -> position, for the items this import stored
        self.target = project.min_labels or project.overlap
        self.created = utcnow()

    def store(self, prepared: list[tuple[int, dict[str, Any], str | None, Any, Any, int, str, str]]) -> None:
        result, location, project = self.result, self.location, self.project
        lock_dataset(self.s, project.dataset_id)  # PostgreSQL: concurrent imports into the dataset queue here
        existing = existing_hashes(self.s, project.dataset_id, [p[6] for p in prepared])
        local: dict[str, int] = {}
        keep = []
        for rec in prepared:
            pos, h = rec[0], rec[6]
            first = existing.get(h)
            if first is not None or h in local:
                result.duplicates += 1
                if first is None:
                    result.duplicate_of.append({location: pos, "item_id": None, "duplicate_of_" + location: local[h]})
                elif first in self.own:
                    result.duplicate_of.append(
                        {location: pos, "item_id": None, "duplicate_of_" + location: self.own[first]}
                    )
                else:
                    result.duplicate_of.append({location: pos, "item_id": first, "duplicate_of_" + location: None})
                continue
            local[h] = pos
            keep.append(rec)
        if not keep:
            return
        created = self.created
        keys = hash_keys([r[6] for r in keep])
        item_ids = insert_rows(
            self.s, "items", ITEM_COLUMNS,
            [(project.dataset_id, ext, text, h, key, self.source, pos, None, sens)
             for (pos, _data, ext, _label, _gold, sens, h, text), key in zip(keep, keys, strict=True)],
            created_at=created,
        )
        self.own.update(zip(item_ids, (r[0] for r in keep), strict=True))
        task_rows = [
            (project.id, iid, "open", gold is not None, None if gold is None else canonical_json(gold), False, 1.0,
             GOLD_TARGET if gold is not None else self.target, 0, 0)
            for iid, (_pos, _data, _ext, _label, gold, _sens, _h, _text) in zip(item_ids, keep, strict=True)
        ]
        task_ids = insert_rows(self.s, "tasks", TASK_COLUMNS, task_rows, created_at=created)
        ann_rows = [
            {"task_id": tid, "project_id": project.id, "user_id": None, "value": label,
             "schema_version": project.schema_version, "origin": "import", "source": f"{self.source}:{location} {pos}"}
            for tid, (pos, _data, _ext, label, _gold, _sens, _h, _text) in zip(task_ids, keep, strict=True)
            if label is not None
        ]
        if ann_rows:
            self.s.execute(insert(Annotation), ann_rows)
        result.item_ids.extend(item_ids)
        result.imported += len(item_ids)


def _new_ids(session: Session, query: Any, key_column: Any, keys: Sequence[Any]) -> dict[Any, int]:
    """``{key: id}`` for rows just inserted, looked up in chunks of ``key_column IN (...)``."""
    out: dict[Any, int] = {}
    for start in range(0, len(keys), 5000):
        out.update((k, i) for k, i in session.execute(query.where(key_column.in_(keys[start : start + 5000]))))
    return out


# --------------------------------------------------------------------------- consensus and export
CONSENSUS_ROLES = ("manager", "reviewer", "viewer")


def list_consensus(
    db: Database,
    actor: Actor,
    project_id: int,
    *,
    label: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of consensus rows (keyset pagination on task id); returns (rows, next cursor)."""
    limit = max(1, min(limit, 1000))
    with db.transaction(write=False) as s:
        require_role(s, actor, project_id, CONSENSUS_ROLES)
        q = (
            select(Consensus.task_id, Item.id, Item.external_id, Consensus.label, Consensus.confidence,
                   Consensus.n_labels, Consensus.method)
            .join(Item, Item.id == Consensus.item_id)
            .where(Consensus.project_id == project_id, Consensus.task_id > after, Item.sensitivity <= actor.clearance)
            .order_by(Consensus.task_id)
            .limit(limit + 1)
        )
        if label is not None:
            q = q.where(Consensus.label_key == label)
        rows = list(s.execute(q))
    page = [
        {"task_id": t, "item_id": i, "external_id": e, "label": lab, "confidence": c, "n_labels": n, "method": m}
        for t, i, e, lab, c, n, m in rows[:limit]
    ]
    return page, (rows[limit - 1][0] if len(rows) > limit else None)


def _export_batches(
    db: Database, actor: Actor, project_id: int, batch: int, *, as_text: bool, format: str
) -> Iterator[tuple[list[Any], dict[int, list[dict[str, Any]]]]]:
    """The project's items in task order, ``batch`` at a time, each batch with its tasks' active
    annotations: rows ``(task id, item id, external id, data, consensus label, confidence, gold)``.

    ``as_text``: ``data`` and the label come as the JSON text the database holds. Permission is
    checked, and the export recorded in the audit log (``project.export`` with its ``format``),
    when the first batch is asked for.
    """
    with db.transaction() as s:
        require_role(s, actor, project_id, CONSENSUS_ROLES)
        append_event(s, actor=actor.name, action="project.export", object_type="project", object_id=project_id,
                     payload={"format": format, "clearance": actor.clearance})
    data, label = (cast(Item.data, Text), cast(Consensus.label, Text)) if as_text else (Item.data, Consensus.label)
    # On SQLite "project_id + 0" keeps the planner on the primary key (a range scan from the
    # cursor); with the (project_id, item_id) index it re-reads and sorts the whole project per page.
    in_project = (Task.project_id + 0 if db.is_sqlite else Task.project_id) == project_id
    after = 0
    while True:
        with db.transaction(write=False) as s:
            rows = list(
                s.execute(
                    select(Task.id, Item.id, Item.external_id, data, label, Consensus.confidence, Task.is_gold)
                    .join(Item, Item.id == Task.item_id)
                    .outerjoin(Consensus, Consensus.task_id == Task.id)
                    .where(in_project, Task.id > after, Item.sensitivity <= actor.clearance)
                    .order_by(Task.id)
                    .limit(batch)
                )
            )
            if not rows:
                return
            anns: dict[int, list[dict[str, Any]]] = {}
            # by task id range (the primary key order of this page); tasks of the range that are not
            # on the page are never looked up
            for tid, name, value, origin, created in s.execute(
                select(Annotation.task_id, User.name, Annotation.value, Annotation.origin, Annotation.created_at)
                .outerjoin(User, User.id == Annotation.user_id)
                .where(Annotation.task_id.between(rows[0][0], rows[-1][0]), Annotation.status == "active")
                .order_by(Annotation.id)
            ):
                anns.setdefault(tid, []).append(
                    {"annotator": name, "value": value, "origin": origin, "created_at": iso(created)}
                )
        yield rows, anns
        after = rows[-1][0]


def iter_export_records(
    db: Database, actor: Actor, project_id: int, *, batch: int = 5000, format: str = "records"
) -> Iterator[dict[str, Any]]:
    """Every item of a project with its consensus and annotations, in item order, streamed in batches.

    ``format`` names the export in the audit log (see :func:`_export_batches`).
    """
    for rows, anns in _export_batches(db, actor, project_id, batch, as_text=False, format=format):
        for tid, iid, ext, data, lab, conf, gold in rows:
            yield {"id": iid, "external_id": ext, "data": data, "label": lab, "confidence": conf,
                   "gold": bool(gold), "annotations": anns.get(tid, [])}


def iter_export_lines(db: Database, actor: Actor, project_id: int, *, batch: int = 10_000) -> Iterator[str]:
    """The records of :func:`iter_export_records` as JSON lines (no newline), built without a parse.

    The same objects in the same order, but ``data`` and ``label`` are copied as the JSON text the
    database holds (no decode and re-encode per item: most of an export's CPU). Permission is
    checked when the first line is asked for.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    string = json.encoder.encode_basestring  # type: ignore[attr-defined]
    for rows, anns in _export_batches(db, actor, project_id, batch, as_text=True, format="jsonl"):
        for tid, iid, ext, data, label, conf, gold in rows:
            task_anns = anns.get(tid)
            yield (
                f'{{"id": {iid}, "external_id": {"null" if ext is None else string(ext)}, "data": {data}, '
                f'"label": {"null" if label is None else label}, '
                f'"confidence": {"null" if conf is None else dumps(conf)}, "gold": {"true" if gold else "false"}, '
                f'"annotations": {dumps(task_anns) if task_anns else "[]"}}}'
            )
