"""Process instances: start, list with filters, show, cancel, history, replay, verify."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import Field

from engine.values import parse_when
from engine.errors import InputError

from ..auth import Admin, Reader, Staff
from ..deps import CommandsDep, EngineDep
from ..problems import responses
from .common import Body, Cursor, Id, Limit, ShortText, check_text, decode_cursor, jsonable, page, page_after

router = APIRouter(tags=["instances"], responses=responses(400, 401, 403))
Key = Annotated[str, PathParam(min_length=1, max_length=200)]


class StartBody(Body):
    data: dict[str, Any] | None = None
    business_key: Annotated[str | None, Field(max_length=200)] = None


class CancelBody(Body):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post("/processes/{key}/instances", status_code=201, responses=responses(404, 422))
def start(key: Key, engine: EngineDep, commands: CommandsDep, who: Staff,
          body: StartBody | None = None) -> dict[str, Any]:
    """Start the latest version of process `key` with `data` as its first variables."""
    check_text(key, "key")
    given = body or StartBody()
    instance_id = commands.run(lambda e: e.start(key, given.data, business_key=given.business_key, actor=who.user))
    return _summary(engine.instance(instance_id))


@router.get("/processes/{key}/start-form", responses=responses(404))
def get_start_form(key: Key, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """The start form of the latest version of `key`: its form key, JSON Schema and fields
    (`schema` null when the process has none)."""
    from engine.camunda_start import start_form
    from engine.formview import fields

    check_text(key, "key")
    form = start_form(engine, key)
    form["fields"] = [f.to_json() for f in fields(form["schema"])] if form["schema"] else []
    return form


def _summary(inst: dict[str, Any]) -> dict[str, Any]:
    waiting = inst.get("waiting", [])  # every catch event it waits on; split out the two kinds asked for most
    inst["timers"] = [w for w in waiting if w.get("due") is not None]
    inst["waiting_messages"] = [w for w in waiting if "Message" in str(w.get("event"))]
    inst["open_tasks"] = [t for t in inst.pop("tasks", []) if t.state == "open"]
    return jsonable(inst)


@router.get("/instances")
def list_instances(engine: EngineDep, who: Reader, limit: Limit = 50, cursor: Cursor = None,
                   status: Literal["running", "completed", "cancelled"] | None = None,
                   key: ShortText = None, business_key: ShortText = None,
                   started_after: Annotated[str | None, Query(max_length=40, description="ISO date or date-time")] = None,
                   started_before: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
    """Instances, newest first."""
    offset = decode_cursor(cursor)
    check_text(key, "key")
    check_text(business_key, "business_key")
    after = parse_when(check_text(started_after, "started_after") or "") if started_after else None
    before = parse_when(check_text(started_before, "started_before") or "") if started_before else None
    rows = engine.instances(status=status, key=key, business_key=business_key, limit=limit + 1, offset=offset,
                            started_after=after, started_before=before)
    return page_after(rows, offset, limit)


@router.get("/instances/{instance_id}", responses=responses(404))
def get_instance(instance_id: Id, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """Status, data, open tasks, timers and the messages it waits for."""
    return _summary(engine.instance(instance_id))


@router.post("/instances/{instance_id}/cancel", responses=responses(404, 409))
def cancel(instance_id: Id, body: CancelBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Cancel a running instance (administrators only); the reason goes into the history."""
    check_text(body.reason, "reason")
    engine.cancel(instance_id, body.reason, actor=who.user)
    return _summary(engine.instance(instance_id))


@router.get("/instances/{instance_id}/history", responses=responses(404))
def history(instance_id: Id, engine: EngineDep, who: Reader, limit: Limit = 50,
            cursor: Cursor = None) -> dict[str, Any]:
    """The instance's events, in order: who did what, when, with the hash chain."""
    offset = decode_cursor(cursor)
    events = engine.history(instance_id)
    rows = [{"seq": e.seq, "at": e.at, "actor": e.actor, "type": e.type, "element": e.element_id,
             "task": e.task_id, "payload": e.payload, "prev_hash": e.prev_hash, "hash": e.hash} for e in events]
    return page(rows, offset, limit)


@router.get("/instances/{instance_id}/replay", responses=responses(404))
def replay(instance_id: Id, engine: EngineDep, who: Reader,
           step: Annotated[int | None, Query(ge=0, le=10_000_000)] = None) -> dict[str, Any]:
    """Rebuild the instance from its recorded inputs; with `step`, the state after that event."""
    from engine.audit import Auditor

    r = Auditor(engine).replay(instance_id)
    steps: list[dict[str, Any]] = [{"seq": s.seq, "at": s.at, "type": s.type, "actor": s.actor, "element": s.element_id,
              "open_tasks": s.open_tasks, "data": s.data, "changed": s.changed} for s in r.steps]
    out: dict[str, Any] = {"instance": instance_id, "ok": r.ok, "matches_stored": r.matches_stored,
                           "divergence": str(r.divergence) if r.divergence else None}
    if step is not None:
        chosen = [s for s in steps if s["seq"] <= step]
        if not chosen:
            raise InputError(f"no step {step}; the history starts at {steps[0]['seq'] if steps else 1}")
        out["step"] = chosen[-1]
    else:
        out["steps"] = steps
    return jsonable(out)


@router.post("/instances/{instance_id}/verify", responses=responses(404))
def verify(instance_id: Id, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """Check the instance's hash chain, the seals over it, and its replay."""
    from engine.audit import Auditor

    _n, failures = Auditor(engine).verify([instance_id], replay=True)
    return {"instance": instance_id, "ok": not failures, "failures": [str(f) for f in failures]}
