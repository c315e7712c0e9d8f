"""The tamper-evident audit log: an append-only hash chain.

Each event stores ``hash = sha256(prev_hash + canonical_json(seq, ts, actor, action, object, payload))``.
Changing, removing or reordering any stored event breaks every hash after it, which
:func:`verify_chain` reports with the first broken sequence number. Appenders lock the single
``audit_head`` row, so concurrent writers never fork the chain (Schneier & Kelsey 1999, "Secure
audit logs to support computer forensics", ACM TISSEC 2(2), doi:10.1145/317087.317089).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from veracity.services._common import as_utc, canonical_json, now
from veracity.storage import Database
from veracity.storage.models import AuditEvent, AuditHead

__all__ = ["GENESIS", "ChainReport", "append_event", "list_events", "verify_chain"]

GENESIS = "0" * 64


def _digest(prev_hash: str, seq: int, ts: str, actor: str | None, action: str, object_type: str,
            object_id: str | None, payload: dict[str, Any]) -> str:
    body = canonical_json(
        {"seq": seq, "ts": ts, "actor": actor, "action": action, "object_type": object_type,
         "object_id": object_id, "payload": payload}
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str | None,
    action: str,
    object_type: str,
    object_id: Any = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (it commits or rolls back with it)."""
    locked = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.execute(locked).scalar_one_or_none()
    if head is None:  # the first event: another transaction may be creating the head row right now
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = session.execute(locked).scalar_one()
    payload = dict(payload or {})
    ts = now()
    seq = head.seq + 1
    oid = None if object_id is None else str(object_id)
    digest = _digest(head.hash, seq, ts.isoformat(), actor, action, object_type, oid, payload)
    event = AuditEvent(seq=seq, ts=ts, actor=actor, action=action, object_type=object_type, object_id=oid,
                       payload=payload, prev_hash=head.hash, hash=digest)
    session.add(event)
    head.seq, head.hash = seq, digest
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    n_events: int
    first_bad_seq: int | None
    message: str


def verify_chain(db: Database) -> ChainReport:
    """Recompute every hash of the chain; report the first event that does not match."""
    prev = GENESIS
    n = 0
    with db.transaction(write=False) as s:
        head = s.get(AuditHead, 1)
        for ev in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars():
            n += 1
            ts = as_utc(ev.ts).isoformat()
            expect = _digest(prev, ev.seq, ts, ev.actor, ev.action, ev.object_type, ev.object_id, ev.payload)
            if ev.seq != n or ev.prev_hash != prev or ev.hash != expect:
                return ChainReport(False, n, ev.seq, f"audit event {ev.seq} does not match its hash chain")
            prev = ev.hash
        if head is not None and (head.seq != n or head.hash != prev):
            return ChainReport(False, n, n + 1, "audit log was truncated: the head names events that are missing")
    return ChainReport(True, n, None, f"audit log intact: {n} events")


def list_events(db: Database, *, limit: int = 100, object_type: str | None = None) -> list[dict[str, Any]]:
    with db.transaction(write=False) as s:
        q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
        if object_type:
            q = q.where(AuditEvent.object_type == object_type)
        return [
            {"seq": e.seq, "ts": as_utc(e.ts).isoformat(), "actor": e.actor, "action": e.action,
             "object_type": e.object_type, "object_id": e.object_id, "payload": e.payload, "hash": e.hash}
            for e in s.execute(q).scalars()
        ]
