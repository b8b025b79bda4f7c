"""Health, clock, messages, notifications, audit (seal, verify, export) and the campaign report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from engine.values import parse_when
from engine.errors import InputError
from engine.timeutil import add_iso_duration, is_duration

from ..auth import Admin, AuditorOrAdmin, Reader, Staff
from ..deps import CommandsDep, EngineDep
from ..problems import responses
from .common import MAX_ID, Body, Cursor, Id, Limit, check_text, decode_cursor, jsonable, page

router = APIRouter(responses=responses(400, 401, 403))
Name = Annotated[str, Field(min_length=1, max_length=200)]


@router.get("/health", tags=["server"], responses=responses(503))
def health(engine: EngineDep) -> dict[str, Any]:
    """Answers without login: the engine's time, its clock and the database kind."""
    now = engine.now()
    return {"status": "ok", "time": now.isoformat(), "clock": "simulated" if engine.simulated else "system",
            "database": engine.dialect}


# ----------------------------------------------------------------------------- clock
class ClockBody(Body):
    set: Annotated[str | None, Field(max_length=64, description="An ISO 8601 date-time to set the clock to.")] = None
    advance: Annotated[str | None, Field(max_length=64, description="An ISO 8601 duration, e.g. P3D.")] = None


@router.get("/clock", tags=["clock"])
def get_clock(engine: EngineDep, who: Reader) -> dict[str, Any]:
    """The engine's time and whether its clock is simulated."""
    now = engine.now()
    return {"now": now.isoformat(), "simulated": engine.simulated}


@router.post("/clock", tags=["clock"], responses=responses(409))
def move_clock(body: ClockBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Set or advance a simulated clock (administrators only; it never moves back)."""
    if (body.set is None) == (body.advance is None):
        raise InputError("give exactly one of 'set' (ISO date-time) or 'advance' (ISO duration such as P3D)")
    if body.advance is not None:
        if not is_duration(body.advance):
            raise InputError(f"'{body.advance}' is not an ISO 8601 duration (e.g. P3D, PT4H, P1M)")
        target = add_iso_duration(engine.now(), body.advance)
    else:
        target = parse_when(body.set or "")
    now = engine.set_clock(target)
    return {"now": now.isoformat(), "simulated": True}


# ----------------------------------------------------------------------------- messages
class MessageBody(Body):
    name: Name
    data: dict[str, Any] | None = None
    business_key: Annotated[str | None, Field(max_length=200)] = None
    instance: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


@router.post("/messages", tags=["messages"], responses=responses(404, 409, 422))
def send_message(body: MessageBody, commands: CommandsDep, who: Staff) -> dict[str, Any]:
    """Deliver a message to the instance waiting for it, or start the process it starts."""
    return commands.run(lambda e: e.message(body.name, body.data, actor=who.user, business_key=body.business_key,
                                            instance_id=body.instance))


class SignalBody(Body):
    name: Name
    data: dict[str, Any] | None = None


@router.post("/signals", tags=["messages"], responses=responses(404, 422))
def send_signal(body: SignalBody, engine: EngineDep, who: Staff) -> dict[str, Any]:
    """Broadcast a signal: every instance waiting for it receives it, every process starting with it
    starts (404 when nothing waits for it, as `tigao signal`)."""
    check_text(body.name, "name")
    return engine.signal(body.name, body.data, actor=who.user)


# ----------------------------------------------------------------------------- notifications
@router.get("/notifications", tags=["notifications"])
def list_notifications(engine: EngineDep, who: Reader, unread: bool = False, limit: Limit = 50,
                       cursor: Cursor = None) -> dict[str, Any]:
    """The caller's notifications: overdue tasks, reminders, escalations (oldest first)."""
    offset = decode_cursor(cursor)
    return page([_note(n) for n in engine.notifications(who.user, unread)], offset, limit)


def _note(n: Any) -> dict[str, Any]:
    return jsonable({"id": n.id, "at": n.at, "kind": n.kind, "task": n.task_id, "instance": n.instance_id,
                     "message": n.message, "read_at": n.read_at})


@router.post("/notifications/{notification_id}/read", tags=["notifications"], responses=responses(404))
def read_notification(notification_id: Id, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """Mark one of the caller's notifications read."""
    return _note(engine.mark_notification_read(notification_id, who.user))


# ----------------------------------------------------------------------------- audit
@router.post("/audit/seal", tags=["audit"], status_code=201)
def seal(engine: EngineDep, who: AuditorOrAdmin) -> dict[str, Any]:
    """Record every instance's chain head; returns the Merkle root to keep outside the system."""
    from engine.audit import Auditor

    seal_id, root, n = Auditor(engine).seal(who.user)
    return {"seal": seal_id, "root": root, "instances": n}


@router.get("/audit/verify", tags=["audit"], responses=responses(404))
def verify_all(engine: EngineDep, who: AuditorOrAdmin, replay: bool = True) -> dict[str, Any]:
    """Check every instance's hash chain and seals (and replay, unless replay=false)."""
    from engine.audit import Auditor

    n, failures = Auditor(engine).verify(None, replay=replay)
    return {"ok": not failures, "instances": n, "failures": [str(f) for f in failures]}


@router.get("/export", tags=["audit"], responses=responses(404))
def export(engine: EngineDep, who: AuditorOrAdmin,
           instance: Annotated[str, Query(max_length=12, description="An instance id, or `all`.")],
           format: Literal["jsonl", "csv"] = "jsonl") -> StreamingResponse:
    """A self-contained audit file (definitions, directory, events, seals, states) as a download."""
    from engine.audit import Auditor

    if instance == "all":
        ids = None
    elif instance.isdigit() and 1 <= int(instance) <= MAX_ID:
        ids = [int(instance)]
    else:
        raise InputError("instance must be an instance id or 'all'")
    lines = list(Auditor(engine).export(ids, format))  # built here: errors become problems, not cut streams
    name = f"tigao-audit-{instance}.{format}"
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    return StreamingResponse(iter(line + "\n" for line in lines), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ----------------------------------------------------------------------------- report
@router.get("/report", tags=["report"])
def report(engine: EngineDep, who: Reader,
           date_from: Annotated[str | None, Query(alias="from", max_length=40)] = None,
           date_to: Annotated[str | None, Query(alias="to", max_length=40)] = None) -> dict[str, Any]:
    """The campaign report (phases, departments, complaints, escalations, evaluation)."""
    from campaign.report import campaign_report

    check_text(date_from, "from")
    check_text(date_to, "to")
    return jsonable(campaign_report(engine, date_from, date_to))
