"""Camunda 7's external task REST API under /engine-rest, so existing worker clients work unchanged.

`POST /external-task/fetchAndLock` (with `asyncResponseTimeout` long polling, bounded by
MAX_POLL_MS), `/external-task/{id}/complete`, `/failure`, `/bpmnError`, `/extendLock`, `/unlock`,
`GET /external-task` and `GET /external-task/{id}`. Variables travel in Camunda's typed shape,
`{"name": {"value": ..., "type": "String|Integer|Long|Double|Boolean|Json|Null"}}`; a `Json` (or
`Object`) value is JSON text, as Camunda sends it. Fields Camunda clients send that change nothing
here (`usePriority`, `sorting`, `deserializeValues`, ...) are accepted; a `processVariables`
filter is refused (not supported), never ignored.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from engine.errors import InputError, NotFound
from engine.identity import Identity, NotAuthenticated

from .auth import Staff, authenticate
from .deps import EngineDep
from .problems import responses

router = APIRouter(tags=["external tasks (Camunda 7)"], responses=responses(400, 401, 403, 404))
MAX_POLL_MS = 60_000  # one long poll holds no Engine while it waits, but a connection: keep it short
POLL_EVERY = 0.5
_INT32 = 2**31


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Topic(_Loose):
    topicName: Annotated[str, Field(min_length=1, max_length=200)]
    lockDuration: Annotated[int, Field(gt=0)]
    variables: list[str] | None = None
    businessKey: str | None = None
    processVariables: dict[str, Any] | None = None


class FetchBody(_Loose):
    workerId: Annotated[str, Field(min_length=1, max_length=200)]
    maxTasks: Annotated[int, Field(gt=0, le=1000)] = 1
    topics: list[Topic]
    asyncResponseTimeout: Annotated[int | None, Field(ge=0)] = None


class CompleteBody(_Loose):
    workerId: Annotated[str, Field(min_length=1, max_length=200)]
    variables: dict[str, Any] | None = None
    localVariables: dict[str, Any] | None = None


class FailureBody(_Loose):
    workerId: Annotated[str, Field(min_length=1, max_length=200)]
    errorMessage: str | None = None
    errorDetails: str | None = None
    retries: int | None = None
    retryTimeout: int | None = 0


class BpmnErrorBody(_Loose):
    workerId: Annotated[str, Field(min_length=1, max_length=200)]
    errorCode: Annotated[str, Field(min_length=1, max_length=200)]
    errorMessage: str | None = None
    variables: dict[str, Any] | None = None


class ExtendBody(_Loose):
    workerId: Annotated[str, Field(min_length=1, max_length=200)]
    newDuration: Annotated[int, Field(gt=0)]


def typed(value: Any) -> dict[str, Any]:
    """One variable in Camunda's typed shape."""
    if value is None:
        return {"value": None, "type": "Null", "valueInfo": {}}
    if isinstance(value, bool):
        return {"value": value, "type": "Boolean", "valueInfo": {}}
    if isinstance(value, int):
        return {"value": value, "type": "Integer" if -_INT32 <= value < _INT32 else "Long", "valueInfo": {}}
    if isinstance(value, float):
        return {"value": value, "type": "Double", "valueInfo": {}}
    if isinstance(value, str):
        return {"value": value, "type": "String", "valueInfo": {}}
    return {"value": json.dumps(value, ensure_ascii=False), "type": "Json", "valueInfo": {}}


def untyped(variables: dict[str, Any] | None) -> dict[str, Any]:
    """Camunda's typed variables as plain JSON values; InputError naming the variable that is wrong."""
    out: dict[str, Any] = {}
    for name, v in (variables or {}).items():
        if not isinstance(v, dict) or "value" not in v:
            raise InputError(f"variable '{name}' must be an object {{\"value\": ..., \"type\": ...}}")
        value, kind = v["value"], str(v.get("type") or "").lower()
        try:
            if kind in ("json", "object") and isinstance(value, str):
                value = json.loads(value)
            elif kind in ("integer", "long", "short") and not (isinstance(value, int) and not isinstance(value, bool)):
                value = int(value)
            elif kind == "double" and not isinstance(value, bool):
                value = float(value)
            elif kind == "boolean" and not isinstance(value, bool):
                raise ValueError("not true or false")
            elif kind == "string" and value is not None:
                value = str(value)
            elif kind not in ("", "json", "object", "integer", "long", "short", "double", "boolean", "string",
                              "null", "date"):
                raise ValueError(f"type '{v.get('type')}' is not supported (use String, Integer, Long, Double, "
                                 "Boolean, Json or Null)")
        except (ValueError, TypeError) as exc:
            raise InputError(f"variable '{name}': {exc}") from None
        out[name] = value
    return out


def camunda_view(t: dict[str, Any], variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """An external task in Camunda's field names."""
    view = {"activityId": t["element_id"], "activityInstanceId": t["spiff_id"], "errorMessage": t["error_message"],
            "errorDetails": t["error_details"], "executionId": t["spiff_id"], "id": str(t["id"]),
            "lockExpirationTime": t["lock_expires_at"], "processDefinitionId": t["process_key"],
            "processDefinitionKey": t["process_key"], "processInstanceId": str(t["instance_id"]),
            "tenantId": None, "retries": t["retries"], "suspended": False, "workerId": t["worker_id"],
            "priority": t["priority"], "topicName": t["topic"], "businessKey": t["business_key"]}
    if variables is not None:
        view["variables"] = {k: typed(v) for k, v in variables.items()}
        view["extensionProperties"] = {}
    return view


def _id(task_id: str) -> int:
    if not task_id.isdigit() or len(task_id) > 12:
        raise NotFound(f"no external task '{task_id}'")
    return int(task_id)


def _fetch_once(request: Request, body: FetchBody) -> list[dict[str, Any]]:
    """One attempt: authenticate and fetch with an Engine borrowed for this attempt only."""
    pool = request.app.state.pool
    engine = pool.borrow()
    try:
        who = authenticate(request, Identity(engine))
        if who is None:
            raise NotAuthenticated("log in first: send HTTP Basic (user:password or user:token) or a Bearer token")
        request.state.user = who.user
        topics = [{"topic": t.topicName, "lock_duration": t.lockDuration, "variables": t.variables,
                   "business_key": t.businessKey} for t in body.topics]
        got = engine.fetch_and_lock(body.workerId, topics, body.maxTasks, actor=who.user)
        return [camunda_view(t, t["variables"]) for t in got]
    finally:
        pool.give_back(engine)


@router.post("/external-task/fetchAndLock")
async def fetch_and_lock(request: Request, body: FetchBody) -> list[dict[str, Any]]:
    """Lock up to maxTasks tasks of the topics; wait up to asyncResponseTimeout ms for one to appear."""
    if any(t.processVariables for t in body.topics):
        raise InputError("a processVariables filter is not supported here; filter by topicName or businessKey")
    wait_ms = min(body.asyncResponseTimeout or 0, MAX_POLL_MS)
    until = time.monotonic() + wait_ms / 1000
    while True:
        got = await run_in_threadpool(_fetch_once, request, body)
        if got or time.monotonic() >= until or await request.is_disconnected():
            return got
        await asyncio.sleep(min(POLL_EVERY, max(0.0, until - time.monotonic())))


@router.get("/external-task")
def list_external_tasks(engine: EngineDep, who: Staff, topicName: str | None = None,
                        processInstanceId: Annotated[str | None, Query(max_length=12)] = None,
                        locked: bool | None = None, maxResults: Annotated[int, Query(ge=1, le=1000)] = 500,
                        firstResult: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
    """Open external tasks, filtered as Camunda's list is."""
    iid = None
    if processInstanceId is not None:
        if not processInstanceId.isdigit():
            return []
        iid = int(processInstanceId)
    return [camunda_view(t) for t in engine.external_tasks(topic=topicName, instance_id=iid, locked=locked,
                                                           limit=maxResults, offset=firstResult)]


@router.get("/external-task/{task_id}")
def get_external_task(task_id: str, engine: EngineDep, who: Staff) -> dict[str, Any]:
    found = engine.external_tasks(task_id=_id(task_id))
    if not found:
        raise NotFound(f"no open external task '{task_id}'")
    return camunda_view(found[0])


@router.post("/external-task/{task_id}/complete", status_code=204, responses=responses(409))
def complete(task_id: str, body: CompleteBody, engine: EngineDep, who: Staff) -> Response:
    data = {**untyped(body.variables), **untyped(body.localVariables)}
    engine.complete_external(_id(task_id), body.workerId, data, actor=who.user)
    return Response(status_code=204)


@router.post("/external-task/{task_id}/failure", status_code=204, responses=responses(409))
def failure(task_id: str, body: FailureBody, engine: EngineDep, who: Staff) -> Response:
    engine.external_failure(_id(task_id), body.workerId, body.errorMessage, body.errorDetails, body.retries,
                            body.retryTimeout or 0, actor=who.user)
    return Response(status_code=204)


@router.post("/external-task/{task_id}/bpmnError", status_code=204, responses=responses(409))
def bpmn_error(task_id: str, body: BpmnErrorBody, engine: EngineDep, who: Staff) -> Response:
    engine.bpmn_error(_id(task_id), body.workerId, body.errorCode, body.errorMessage, untyped(body.variables),
                      actor=who.user)
    return Response(status_code=204)


@router.post("/external-task/{task_id}/extendLock", status_code=204, responses=responses(409))
def extend_lock(task_id: str, body: ExtendBody, engine: EngineDep, who: Staff) -> Response:
    engine.extend_lock(_id(task_id), body.workerId, body.newDuration, actor=who.user)
    return Response(status_code=204)


@router.post("/external-task/{task_id}/unlock", status_code=204)
def unlock(task_id: str, engine: EngineDep, who: Staff) -> Response:
    engine.unlock(_id(task_id), actor=who.user)
    return Response(status_code=204)
