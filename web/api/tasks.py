"""Human tasks: the caller's list, one task with its form, claim, unclaim, delegate, complete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from engine.values import parse_when
from engine.errors import InputError

from ..auth import Reader, Staff
from ..deps import CommandsDep, EngineDep
from ..problems import responses
from .common import (
    MAX_ID,
    Body,
    Cursor,
    Id,
    Limit,
    ShortText,
    check_text,
    decode_cursor,
    jsonable,
    page_after,
)

router = APIRouter(tags=["tasks"], responses=responses(400, 401, 403))


class DelegateBody(Body):
    user: Annotated[str, Field(min_length=1, max_length=200)]


class CompleteBody(Body):
    data: dict[str, Any] | None = None


@router.get("/tasks")
def list_tasks(engine: EngineDep, who: Reader, limit: Limit = 50, cursor: Cursor = None,
               scope: Literal["available", "mine", "group", "all"] = "available",
               group: ShortText = None, overdue: bool = False,
               due_before: Annotated[str | None, Query(max_length=40, description="ISO date or date-time")] = None,
               instance: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               state: Literal["open", "completed", "cancelled", "any"] = "open") -> dict[str, Any]:
    """Tasks ordered by due date then priority.

    scope: `available` (default: assigned to the caller, or unassigned with the caller a
    candidate), `mine` (assigned to the caller), `group` (unassigned, offered to `group` or to one
    of the caller's groups), `all` (every task).
    """
    offset = decode_cursor(cursor)
    check_text(group, "group")
    before = parse_when(check_text(due_before, "due_before") or "") if due_before else None
    engine_scope, unassigned = {"available": ("available", False), "mine": ("mine", False),
                                "group": ("all" if group else "available", True), "all": ("all", False)}[scope]
    rows = engine.tasks(user=who.user, scope=engine_scope, group=group, instance_id=instance, overdue=overdue,
                        state=state, limit=limit + 1, offset=offset, due_before=before, unassigned=unassigned)
    return page_after(rows, offset, limit)


@router.get("/tasks/{task_id}", responses=responses(404))
def get_task(task_id: Id, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """One task with its form's JSON Schema (and UI schema, if any) and the data it already has."""
    view = engine.task(task_id)
    schema = engine.task_form(task_id)
    ui = None
    if isinstance(schema, dict):
        ui = schema.get("x-ui") or schema.get("ui")
    return {**jsonable(view), "form": schema, "ui_schema": ui, "data": jsonable(engine.task_data(task_id))}


@router.post("/tasks/{task_id}/claim", responses=responses(404, 409))
def claim(task_id: Id, engine: EngineDep, commands: CommandsDep, who: Staff) -> dict[str, Any]:
    """Take a task offered to the caller (as a candidate user or through a group)."""
    commands.run(lambda e: e.claim(task_id, who.user))
    return jsonable(engine.task(task_id))


@router.post("/tasks/{task_id}/unclaim", responses=responses(404, 409))
def unclaim(task_id: Id, engine: EngineDep, commands: CommandsDep, who: Staff) -> dict[str, Any]:
    """Give a claimed task back to its candidates."""
    commands.run(lambda e: e.unclaim(task_id, who.user))
    return jsonable(engine.task(task_id))


@router.post("/tasks/{task_id}/delegate", responses=responses(404, 409))
def delegate(task_id: Id, body: DelegateBody, engine: EngineDep, commands: CommandsDep,
             who: Staff) -> dict[str, Any]:
    """Hand a task the caller may work on to another user."""
    check_text(body.user, "user")
    commands.run(lambda e: e.delegate(task_id, who.user, body.user))
    return jsonable(engine.task(task_id))


@router.post("/tasks/{task_id}/complete", responses=responses(404, 409, 422))
def complete(task_id: Id, engine: EngineDep, commands: CommandsDep, who: Staff,
             body: CompleteBody | None = None) -> dict[str, Any]:
    """Complete a task with its form data; 422 lists every failing field."""
    if body is not None and body.data is not None and not isinstance(body.data, dict):
        raise InputError("data must be a JSON object of field values")
    data = (body.data if body else None) or {}
    commands.run(lambda e: e.complete(task_id, who.user, data))
    return jsonable(engine.task(task_id))
