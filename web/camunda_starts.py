"""Starting processes the Camunda 7 way, under /engine-rest: start forms and signals.

* `GET /process-definition/key/{key}/startForm`: the start form's key (`camunda:formKey` as
  written; `camundaFormRef` for a Camunda Form), as Camunda answers it.
* `GET /process-definition/key/{key}/form-variables`: the start form's fields as typed variables,
  each with its default value (or a typed null).
* `POST /process-definition/key/{key}/submit-form`: start with the form's variables, validated
  against the start form (400 naming each failing field); the caller is the initiator.
* `POST /signal`: Camunda's body (`name`, `variables`, optionally `executionId` to deliver to one
  instance); 204 whether or not anything waited for it, as in Camunda.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from engine.camunda_start import start_form
from engine.errors import InputError, NotFound
from engine.signals import deliver_to

from .auth import Reader, Staff
from .camunda import CamundaBody, _check, _instance_json, _int_id
from .camunda_vars import plain_map, typed
from .deps import EngineDep
from .problems import responses

router = APIRouter(tags=["engine-rest (Camunda 7)"], responses=responses(400, 401, 403, 404))
Key = Annotated[str, Path(max_length=200)]
# A form field's JSON Schema type as the Camunda value type of its variable.
FIELD_TYPES = {"integer": "Long", "number": "Double", "boolean": "Boolean", "string": "String"}


class SubmitBody(CamundaBody):
    variables: dict[str, Any] | None = None
    business_key: Annotated[str | None, Field(alias="businessKey", max_length=200)] = None


class SignalBody(CamundaBody):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    variables: dict[str, Any] | None = None
    execution_id: Annotated[str | None, Field(alias="executionId", max_length=20)] = None
    tenant_id: Annotated[str | None, Field(alias="tenantId", max_length=200)] = None


@router.get("/process-definition/key/{key}/startForm")
def start_form_key(key: Key, engine: EngineDep, who: Reader) -> dict[str, Any]:
    """The start form's key, as Camunda's FormDto (`key`, `contextPath`, `camundaFormRef`)."""
    _check(key, "key")
    form = start_form(engine, key)
    ref = form["form_ref"]
    return {"key": form["declared_key"], "contextPath": None,
            "camundaFormRef": {"key": ref, "binding": "latest", "version": None} if ref else None}


@router.get("/process-definition/key/{key}/form-variables")
def start_form_variables(key: Key, engine: EngineDep, who: Reader,
                         names: Annotated[str | None, Query(alias="variableNames", max_length=2000)] = None
                         ) -> dict[str, Any]:
    """The start form's fields as typed variables, with their default values."""
    _check(key, "key")
    _check(names, "variableNames")
    schema = start_form(engine, key)["schema"] or {}
    wanted = {n.strip() for n in names.split(",")} if names else None
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict) or (wanted is not None and name not in wanted):
            continue
        value = typed(prop.get("default"))
        if isinstance(prop.get("type"), str) and prop["type"] in FIELD_TYPES:
            value["type"] = FIELD_TYPES[prop["type"]]
        elif "oneOf" in prop and value["value"] is None:
            value["type"] = "String"
        out[name] = value
    return out


@router.post("/process-definition/key/{key}/submit-form")
def submit_start_form(key: Key, request: Request, engine: EngineDep, who: Staff,
                      body: SubmitBody | None = None) -> dict[str, Any]:
    """Start the latest version of `key` with its start form's variables (validated)."""
    _check(key, "key")
    body = body or SubmitBody()
    instance_id = engine.start(key, plain_map(body.variables), business_key=body.business_key, actor=who.user)
    return _instance_json(request, engine.instance(instance_id))


@router.post("/signal", status_code=204)
def signal(body: SignalBody, engine: EngineDep, who: Staff) -> Response:
    """Broadcast a signal (or, with executionId, deliver it to that instance only)."""
    if body.tenant_id:
        raise InputError("tenants are not supported: leave out tenantId")
    data = plain_map(body.variables)
    if body.execution_id is not None:
        instance = _int_id(body.execution_id, "execution")
        try:
            deliver_to(engine, instance, body.name, data, who.user)
        except NotFound as exc:
            raise InputError(f"Cannot deliver signal '{body.name}': {exc.message}") from exc
        return Response(status_code=204)
    try:
        engine.signal(body.name, data, actor=who.user)
    except NotFound:
        pass  # Camunda: a signal nobody waits for is delivered to nobody, not an error
    return Response(status_code=204)
