"""Camunda 7's REST shape under /engine-rest: the subset Camunda clients use most.

Ids are strings as in Camunda (a process definition is `KEY:VERSION:ID`), variables are typed
(`web.camunda_vars`), dates use Camunda's format, and errors are `{"type", "message"}` (rendered by
`web.problems` for every path under /engine-rest). Authentication is the server's own: HTTP Basic
(user + password, or user + token) or a Bearer token. What is not listed here is not offered;
the README says what is and is not covered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine import Engine
from engine.errors import InputError, NotAllowed, NotFound

from .api.common import MAX_ID, _check_value
from .auth import Reader, Staff
from .camunda_vars import camunda_date, plain_map, typed_map
from .deps import Commands, CommandsDep, EngineDep

router = APIRouter(tags=["engine-rest (Camunda 7)"])
MAX_RESULTS = 500
First = Annotated[int, Query(alias="firstResult", ge=0, le=100_000)]
Max = Annotated[int, Query(alias="maxResults", ge=1, le=MAX_RESULTS)]
Text = Annotated[str | None, Query(max_length=200)]
STATES = {"running": "ACTIVE", "completed": "COMPLETED", "cancelled": "EXTERNALLY_TERMINATED"}


class CamundaBody(BaseModel):
    """A Camunda request body: fields Tigao does not use (skipCustomListeners, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, values: Any) -> Any:
        _check_value(values, "body")
        return values


class StartBody(CamundaBody):
    variables: dict[str, Any] | None = None
    business_key: Annotated[str | None, Field(alias="businessKey", max_length=200)] = None
    with_variables: Annotated[bool, Field(alias="withVariablesInReturn")] = False


class UserBody(CamundaBody):
    user_id: Annotated[str | None, Field(alias="userId", max_length=200)] = None


class VariablesBody(CamundaBody):
    variables: dict[str, Any] | None = None
    with_variables: Annotated[bool, Field(alias="withVariablesInReturn")] = False


class MessageBody(CamundaBody):
    message_name: Annotated[str, Field(alias="messageName", min_length=1, max_length=200)]
    business_key: Annotated[str | None, Field(alias="businessKey", max_length=200)] = None
    process_instance_id: Annotated[str | None, Field(alias="processInstanceId", max_length=20)] = None
    process_variables: Annotated[dict[str, Any] | None, Field(alias="processVariables")] = None
    result_enabled: Annotated[bool, Field(alias="resultEnabled")] = False


def _int_id(value: str, what: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        raise NotFound(f"No matching {what} with id {value[:40]}")
    return int(value)


def _definitions(engine: Engine, key: str | None = None) -> list[dict[str, Any]]:
    return [d for d in engine.definitions() if key is None or d["key"] == key]


def _definition_json(d: dict[str, Any]) -> dict[str, Any]:
    resource = next((f for f in d["files"] if f.endswith(".bpmn")), None)
    return {"id": f"{d['key']}:{d['version']}:{d['id']}", "key": d["key"], "category": None, "description": None,
            "name": d["name"], "version": d["version"], "resource": resource, "deploymentId": str(d["id"]),
            "diagram": None, "suspended": False, "tenantId": None, "versionTag": None,
            "historyTimeToLive": None, "startableInTasklist": True}


def _definition_id(engine: Engine, key: str, version: int) -> str:
    for d in _definitions(engine, key):
        if d["version"] == version:
            return f"{key}:{version}:{d['id']}"
    return f"{key}:{version}"


def _instance_json(request: Request, inst: dict[str, Any]) -> dict[str, Any]:
    href = str(request.base_url).rstrip("/") + f"/engine-rest/process-instance/{inst['id']}"
    return {"id": str(inst["id"]), "definitionId": f"{inst['key']}:{inst['version']}:{inst['definition_id']}",
            "businessKey": inst["business_key"], "caseInstanceId": None, "tenantId": None, "suspended": False,
            "ended": inst["status"] != "running", "links": [{"method": "GET", "href": href, "rel": "self"}]}


def _task_json(t: Any, definition_ids: dict[str, str]) -> dict[str, Any]:
    return {"id": str(t.id), "name": t.name, "assignee": t.assignee, "owner": None,
            "created": camunda_date(t.created_at), "due": camunda_date(t.due_at),
            "followUp": camunda_date(t.follow_up_at), "lastUpdated": None, "delegationState": None,
            "description": None, "executionId": str(t.instance_id), "parentTaskId": None, "priority": t.priority,
            "processDefinitionId": definition_ids.get(t.process_key or "", t.process_key),
            "processInstanceId": str(t.instance_id), "taskDefinitionKey": t.element_id,
            "caseExecutionId": None, "caseInstanceId": None, "caseDefinitionId": None, "suspended": False,
            "formKey": t.form_key, "camundaFormRef": None, "tenantId": None}


def _latest_ids(engine: Engine) -> dict[str, str]:
    latest: dict[str, str] = {}
    for d in engine.definitions():
        latest[d["key"]] = f"{d['key']}:{d['version']}:{d['id']}"
    return latest


def _check(value: str | None, name: str) -> None:
    if value is not None:
        try:
            _check_value(value, name)
        except ValueError as exc:
            raise InputError(str(exc)) from exc


# ----------------------------------------------------------------------------- engine, definitions
@router.get("/engine")
def engines() -> list[dict[str, str]]:
    """The process engines: one, `default` (no login needed, as a ping)."""
    return [{"name": "default"}]


@router.get("/process-definition")
def process_definitions(engine: EngineDep, who: Reader, key: Text = None,
                        latest: Annotated[bool, Query(alias="latestVersion")] = False,
                        first: First = 0, max_: Max = MAX_RESULTS) -> list[dict[str, Any]]:
    """Process definitions (all versions, or the latest with latestVersion=true)."""
    _check(key, "key")
    rows = _definitions(engine, key)
    if latest:
        rows = list({d["key"]: d for d in rows}.values())
    return [_definition_json(d) for d in rows[first:first + max_]]


@router.get("/process-definition/key/{key}")
def process_definition_by_key(key: Annotated[str, Path(max_length=200)], engine: EngineDep,
                              who: Reader) -> dict[str, Any]:
    """The latest version of process `key`."""
    _check(key, "key")
    rows = _definitions(engine, key)
    if not rows:
        raise NotFound(f"No matching process definition with key: {key}")
    return _definition_json(rows[-1])


@router.get("/process-definition/{definition_id}")
def process_definition(definition_id: Annotated[str, Path(max_length=300)], engine: EngineDep,
                       who: Reader) -> dict[str, Any]:
    """One process definition by its id (`KEY:VERSION:ID`)."""
    _check(definition_id, "id")
    for d in engine.definitions():
        if f"{d['key']}:{d['version']}:{d['id']}" == definition_id:
            return _definition_json(d)
    raise NotFound(f"No matching definition with id {definition_id}")


@router.post("/process-definition/key/{key}/start")
def start(key: Annotated[str, Path(max_length=200)], request: Request, engine: EngineDep, commands: CommandsDep,
          who: Staff, body: StartBody | None = None) -> dict[str, Any]:
    """Start the latest version of `key` with typed variables; the actor is the caller."""
    _check(key, "key")
    body = body or StartBody()
    variables, business_key = plain_map(body.variables), body.business_key
    instance_id = commands.run(lambda e: e.start(key, variables, business_key=business_key, actor=who.user))
    inst = engine.instance(instance_id)
    out = _instance_json(request, inst)
    if body.with_variables:
        out["variables"] = typed_map(inst["data"])
    return out


@router.get("/process-instance/{instance_id}")
def process_instance(instance_id: Annotated[str, Path(max_length=20)], request: Request, engine: EngineDep,
                     who: Reader) -> dict[str, Any]:
    """One process instance."""
    return _instance_json(request, engine.instance(_int_id(instance_id, "process instance")))


# ----------------------------------------------------------------------------- tasks
@router.get("/task")
def tasks(engine: EngineDep, who: Reader, assignee: Text = None,
          candidate_user: Annotated[str | None, Query(alias="candidateUser", max_length=200)] = None,
          candidate_group: Annotated[str | None, Query(alias="candidateGroup", max_length=200)] = None,
          process_instance_id: Annotated[str | None, Query(alias="processInstanceId", max_length=20)] = None,
          first: First = 0, max_: Max = MAX_RESULTS) -> list[dict[str, Any]]:
    """Open tasks, filtered as Camunda's task query (assignee, candidateUser, candidateGroup, processInstanceId)."""
    for name, value in (("assignee", assignee), ("candidateUser", candidate_user), ("candidateGroup", candidate_group)):
        _check(value, name)
    instance = None
    if process_instance_id is not None:
        if not process_instance_id.isdigit() or not 1 <= int(process_instance_id) <= MAX_ID:
            return []
        instance = int(process_instance_id)
    if assignee:
        kw: dict[str, Any] = {"user": assignee, "scope": "mine"}
    elif candidate_user:
        kw = {"user": candidate_user, "scope": "available", "unassigned": True}
    else:
        kw = {"scope": "all", "unassigned": bool(candidate_group)}
    rows = engine.tasks(group=candidate_group, instance_id=instance, limit=max_, offset=first, **kw)
    ids = _latest_ids(engine)
    return [_task_json(t, ids) for t in rows]


def _task(engine: Engine, task_id: str) -> Any:
    return engine.task(_int_id(task_id, "task"))


TaskId = Annotated[str, Path(max_length=20)]


@router.get("/task/{task_id}")
def task(task_id: TaskId, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """One task."""
    return _task_json(_task(engine, task_id), _latest_ids(engine))


@router.get("/task/{task_id}/form-variables")
def form_variables(task_id: TaskId, engine: EngineDep, who: Reader,
                   names: Annotated[str | None, Query(alias="variableNames", max_length=2000)] = None
                   ) -> dict[str, Any]:
    """The variables the task's form starts from (its data), typed."""
    _check(names, "variableNames")
    t = _task(engine, task_id)
    wanted = [n.strip() for n in names.split(",")] if names else None
    return typed_map(engine.task_data(t.id), wanted)


def _acting_user(who: Any, body: UserBody | None) -> str:
    if body is not None and body.user_id and body.user_id != who.user:
        raise NotAllowed(f"'{who.user}' cannot act as '{body.user_id}': the actor is always the authenticated user")
    return str(who.user)


@router.post("/task/{task_id}/claim", status_code=204)
def claim(task_id: TaskId, engine: EngineDep, commands: CommandsDep, who: Staff,
          body: UserBody | None = None) -> Response:
    """Claim a task for the caller (userId, when given, must be the caller)."""
    tid, user = _task(engine, task_id).id, _acting_user(who, body)
    commands.run(lambda e: e.claim(tid, user))
    return Response(status_code=204)


@router.post("/task/{task_id}/unclaim", status_code=204)
def unclaim(task_id: TaskId, engine: EngineDep, commands: CommandsDep, who: Staff) -> Response:
    """Give a claimed task back to its candidates."""
    tid = _task(engine, task_id).id
    commands.run(lambda e: e.unclaim(tid, who.user))
    return Response(status_code=204)


def _complete(task_id: str, engine: Engine, commands: Commands, who: Any, body: VariablesBody | None) -> Response:
    t = _task(engine, task_id)
    body = body or VariablesBody()
    variables = plain_map(body.variables)
    commands.run(lambda e: e.complete(t.id, who.user, variables))
    if body.with_variables:
        return JSONResponse(typed_map(engine.instance(t.instance_id)["data"]))
    return Response(status_code=204)


@router.post("/task/{task_id}/complete", status_code=204)
def complete(task_id: TaskId, engine: EngineDep, commands: CommandsDep, who: Staff,
             body: VariablesBody | None = None) -> Response:
    """Complete a task with typed variables (validated against its form)."""
    return _complete(task_id, engine, commands, who, body)


@router.post("/task/{task_id}/submit-form", status_code=204)
def submit_form(task_id: TaskId, engine: EngineDep, commands: CommandsDep, who: Staff,
                body: VariablesBody | None = None) -> Response:
    """Submit a task's form: the same as completing it with the form's variables."""
    return _complete(task_id, engine, commands, who, body)


# ----------------------------------------------------------------------------- messages, history
@router.post("/message", response_model=None, responses={204: {"description": "Correlated"}})
def message(body: MessageBody, request: Request, engine: EngineDep, commands: CommandsDep, who: Staff) -> Response:
    """Correlate a message: to the instance waiting for it, or start the process it starts."""
    instance = _int_id(body.process_instance_id, "process instance") if body.process_instance_id else None
    variables = plain_map(body.process_variables)
    try:
        result = commands.run(lambda e: e.message(body.message_name, variables, actor=who.user,
                                                  business_key=body.business_key, instance_id=instance))
    except NotFound as exc:
        raise InputError(f"Cannot correlate message '{body.message_name}': {exc.message}") from exc
    if not body.result_enabled:
        return Response(status_code=204)
    out = []
    if "delivered_to" in result:
        i = result["delivered_to"]
        out.append({"resultType": "Execution", "execution": {"id": str(i), "processInstanceId": str(i),
                                                              "ended": False, "tenantId": None}})
    for i in result.get("started", []):
        out.append({"resultType": "ProcessDefinition", "processInstance": _instance_json(request, engine.instance(i))})
    return JSONResponse(out)


@router.get("/history/process-instance")
def history_process_instances(
        engine: EngineDep, who: Reader,
        process_instance_id: Annotated[str | None, Query(alias="processInstanceId", max_length=20)] = None,
        key: Annotated[str | None, Query(alias="processDefinitionKey", max_length=200)] = None,
        business_key: Annotated[str | None, Query(alias="processInstanceBusinessKey", max_length=200)] = None,
        finished: bool = False, unfinished: bool = False,
        first: First = 0, max_: Max = MAX_RESULTS) -> list[dict[str, Any]]:
    """Historic process instances (running and ended), newest first."""
    _check(key, "processDefinitionKey")
    _check(business_key, "processInstanceBusinessKey")
    if process_instance_id is not None:
        if not process_instance_id.isdigit() or not 1 <= int(process_instance_id) <= MAX_ID:
            return []
        try:
            rows = [engine.instance(int(process_instance_id))]
        except NotFound:
            return []
    else:
        status = "running" if unfinished and not finished else None
        rows = engine.instances(status=status, key=key, business_key=business_key, limit=max_, offset=first)
        if finished and not unfinished:
            rows = [r for r in rows if r["status"] != "running"]
    out = []
    for r in rows:
        ended, started = r.get("ended_at"), r["started_at"]
        out.append({"id": str(r["id"]), "businessKey": r["business_key"],
                    "processDefinitionId": _definition_id(engine, r["key"], r["version"]),
                    "processDefinitionKey": r["key"], "processDefinitionName": None,
                    "processDefinitionVersion": r["version"], "startTime": camunda_date(started),
                    "endTime": camunda_date(ended), "removalTime": None,
                    "durationInMillis": int((ended - started).total_seconds() * 1000) if ended else None,
                    "startUserId": r["started_by"], "startActivityId": None, "deleteReason": r.get("end_reason"),
                    "rootProcessInstanceId": str(r["id"]), "superProcessInstanceId": None,
                    "superCaseInstanceId": None, "caseInstanceId": None, "tenantId": None,
                    "state": STATES.get(r["status"], r["status"].upper())})
    return out
