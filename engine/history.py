"""The append-only, hash-chained history of every instance.

Each event's hash is `sha256(prev_hash + canonical JSON of the event)`, where the canonical JSON
has sorted keys, UTF-8 text and no insignificant whitespace, and holds: instance, seq, at (ISO 8601
UTC with microseconds), actor, type, element, task, definition and payload. The first event of an
instance has prev_hash GENESIS (64 zeros). Events are only ever inserted.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from storage.models import Event, Instance

GENESIS = "0" * 64
# Events that are inputs to an instance (what replay feeds back in); the rest record what the
# engine did in response, and replay checks them.
INPUT_TYPES = frozenset({"instance_started", "task_completed", "message_received", "timer_fired",
                         "instance_cancelled", "external_task_completed", "external_task_bpmn_error",
                         "handler_completed", "handler_bpmn_error", "signal_received",
                         # an administrator's changes (engine/modify.py)
                         "instance_migrated", "activity_cancelled", "started_before", "variable_set"})


def canonical(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def event_body(e: Event) -> dict[str, Any]:
    return {
        "instance": e.instance_id,
        "seq": e.seq,
        "at": e.at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "actor": e.actor,
        "type": e.type,
        "element": e.element_id,
        "task": e.task_id,
        "definition": e.definition_id,
        "payload": e.payload,
    }


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()


_PENDING = "tigao_pending_events"


def append(session: Session, inst: Instance, type_: str, at: datetime, actor: str | None,
           payload: dict[str, Any] | None = None, element_id: str | None = None,
           task_id: int | None = None) -> Event:
    """Append one event to the instance's chain (the caller's transaction commits it).

    The event is hashed now and held with the session; `flush_pending` inserts every held event
    in one statement and moves the instance's chain head once, just before the commit, so a
    command that appends several events writes neither them nor the instance row one by one.
    """
    pending: dict[int, list[Any]] = session.info.setdefault(_PENDING, {})
    head = pending.get(id(inst))
    if head is None:
        head = pending[id(inst)] = [inst, inst.last_seq, inst.last_hash, []]
    seq, prev = head[1] + 1, head[2]
    e = Event(instance_id=inst.id, seq=seq, at=at.astimezone(timezone.utc), actor=actor, type=type_,
              element_id=element_id, task_id=task_id, definition_id=inst.definition_id,
              payload=payload or {}, prev_hash=prev)
    e.hash = chain_hash(prev, event_body(e))
    head[1], head[2] = seq, e.hash
    head[3].append(e)
    return e


def chain_head(session: Session, inst: Instance) -> tuple[int, str]:
    """The instance's last seq and hash, counting the events not yet inserted."""
    head = session.info.get(_PENDING, {}).get(id(inst))
    return (head[1], head[2]) if head is not None else (inst.last_seq, inst.last_hash)


def flush_pending(session: Session) -> None:
    """Insert the events held with the session (one INSERT) and set each instance's chain head."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    rows = []
    for inst, seq, last_hash, events in pending.values():
        inst.last_seq = seq
        inst.last_hash = last_hash
        rows.extend({c: getattr(e, c) for c in _COLUMNS} for e in events)
    session.execute(insert(Event.__table__), rows)  # Core: one executemany, whatever is None


def discard_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


_COLUMNS = ("instance_id", "seq", "at", "actor", "type", "element_id", "task_id", "definition_id", "payload",
            "prev_hash", "hash")
