"""Opening and resolving an incident, in the caller's transaction, with its history event.

The low half of engine/incidents.py: the worker (engine/deadlines.py) and external tasks open
incidents here, without importing the operator's commands, which run the worker again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import Incident, Instance

from . import history


def open_incident(s: Session, inst: Instance | None, kind: str, element_id: str | None, message: str,
                  ref: str | None, now: datetime, actor: str | None = None) -> Incident:
    """Open an incident (in the caller's transaction) and record it in the instance's history."""
    inc = Incident(instance_id=inst.id if inst is not None else None, element_id=element_id, kind=kind, ref=ref,
                   message=message[:4000], created_at=now)
    s.add(inc)
    s.flush()
    if inst is not None:
        history.append(s, inst, "incident_opened", now, actor or "system",
                       {"incident": inc.id, "kind": kind, "message": inc.message, "ref": ref}, element_id=element_id)
    return inc


def resolve_incident(s: Session, inc: Incident, now: datetime, actor: str | None, how: str) -> None:
    inc.resolved_at, inc.resolved_by = now, actor
    inst = s.get(Instance, inc.instance_id) if inc.instance_id is not None else None
    if inst is not None:
        history.append(s, inst, "incident_resolved", now, actor, {"incident": inc.id, "how": how},
                       element_id=inc.element_id)
