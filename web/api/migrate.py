"""An administrator's changes to running instances: migrate to another version (one instance or
every running one of a version), cancel an activity, start before an element, set a variable."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import Field

from ..auth import Admin
from ..deps import EngineDep
from ..problems import responses
from .common import Body, Id, check_text, jsonable

router = APIRouter(tags=["migration"], responses=responses(400, 401, 403, 404, 409))
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
ElementId = Annotated[str, Field(min_length=1, max_length=200)]
Key = Annotated[str, PathParam(min_length=1, max_length=200)]
Version = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


class MigrateBody(Body):
    to_version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    mapping: Annotated[dict[str, ElementId], Field(max_length=500)] = {}
    reason: Reason


class ModifyBody(Body):
    reason: Reason


class ElementBody(ModifyBody):
    element_id: ElementId


class VariableBody(ModifyBody):
    name: ElementId
    value: Any = None


def _check(body: Body, *names: str) -> None:
    for n in names:
        check_text(getattr(body, n), n)


@router.post("/instances/{instance_id}/migrate")
def migrate(instance_id: Id, body: MigrateBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Move a running instance to another version of its process (element ids map to themselves
    unless `mapping` names them); 409 with nothing changed when work in progress has no counterpart."""
    _check(body, "reason")
    return jsonable(engine.migrate(instance_id, body.to_version, body.mapping, actor=who.user, reason=body.reason))


@router.post("/processes/{key}/versions/{version}/migrate")
def migrate_all(key: Key, version: Version, body: MigrateBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Migrate every running instance of `key` version `version`, each in its own transaction:
    which moved, and which were refused with why."""
    check_text(key, "key")
    _check(body, "reason")
    return engine.migrate_all(key, version, body.to_version, body.mapping, actor=who.user,
                              reason=body.reason).to_json()


@router.post("/instances/{instance_id}/cancel-activity")
def cancel_activity(instance_id: Id, body: ElementBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Cancel the activity `element_id` (every token of it in progress, with its boundary events)."""
    _check(body, "reason", "element_id")
    engine.cancel_activity(instance_id, body.element_id, actor=who.user, reason=body.reason)
    return jsonable(engine.instance(instance_id))


@router.post("/instances/{instance_id}/start-before")
def start_before(instance_id: Id, body: ElementBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Start a new token before the element `element_id`."""
    _check(body, "reason", "element_id")
    engine.start_before(instance_id, body.element_id, actor=who.user, reason=body.reason)
    return jsonable(engine.instance(instance_id))


@router.post("/instances/{instance_id}/variables")
def set_variable(instance_id: Id, body: VariableBody, engine: EngineDep, who: Admin) -> dict[str, Any]:
    """Set process variable `name` to the JSON `value`."""
    _check(body, "reason", "name")
    engine.set_variable(instance_id, body.name, body.value, actor=who.user, reason=body.reason)
    return jsonable(engine.instance(instance_id))
