"""Incidents, stuck instances and external tasks under /api/v1 (the Camunda shape is web/external_tasks.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..auth import Reader, Staff
from ..deps import EngineDep
from ..problems import responses
from .common import MAX_ID, Id, Limit, ShortText, jsonable

router = APIRouter(tags=["incidents"], responses=responses(400, 401, 403))


@router.get("/incidents")
def list_incidents(engine: EngineDep, who: Reader, all: bool = False, limit: Limit = 500) -> dict[str, Any]:
    """Open incidents (all of them with `all=true`), and running instances that wait for nothing."""
    return {"incidents": jsonable(engine.incidents(include_resolved=all, limit=limit)),
            "stuck": jsonable(engine.stuck_instances(limit=limit))}


@router.post("/incidents/{incident_id}/retry", responses=responses(404, 409, 422))
def retry_incident(incident_id: Id, engine: EngineDep, who: Staff) -> dict[str, Any]:
    """Run the failed step again as the caller; the incident is resolved when it succeeds."""
    return engine.retry_incident(incident_id, who.user)


@router.get("/external-tasks")
def list_external_tasks(engine: EngineDep, who: Reader, topic: ShortText = None,
                        instance: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                        handlers: bool = False, limit: Limit = 500) -> list[dict[str, Any]]:
    """Open external tasks (and handler steps with `handlers=true`)."""
    return jsonable(engine.external_tasks(topic=topic, instance_id=instance, handlers=handlers, limit=limit))
