"""camunda:initiator and start forms (camunda:formData, camunda:formRef) on the start event: through
the engine, the command line, /api/v1 in-process, and /engine-rest on a real `tigao serve` with the
pycamunda client (and httpx for the calls pycamunda does not offer); SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pycamunda.processdef
import pytest
from requests.auth import HTTPBasicAuth

from camunda_support import bpmn, chain, write
from conftest import ORG
from engine import Engine
from engine.audit import Auditor
from engine.errors import DefinitionError, FormError
from helpers import assert_roundtrip
from test_cli import ok, refused
from web_support import Server, Site, password, prepare, site  # noqa: F401 - fixtures

HERE = Path(__file__).parent / "bpmn" / "camunda"
FORM_DATA = HERE / "start_initiator_form.bpmn"
FORM_REF = HERE / "start_formref.bpmn"


def _count(engine: Engine) -> int:
    return len(engine.instances())


def test_initiator__is_the_starting_user__and_assigns_the_task(engine: Engine) -> None:
    engine.deploy([FORM_DATA])
    iid = engine.start("start_request", {"title": "new chairs", "starter": "bob"}, actor="alice")
    d = engine.instance(iid)
    assert d["data"]["starter"] == "alice"  # a variable sent under the same name does not win
    [task] = [t for t in d["tasks"] if t.state == "open"]
    assert task.element_id == "Task_review" and task.assignee == "alice"
    assert_roundtrip(engine, iid)
    engine.complete(task.id, "alice")
    assert engine.instance(iid)["status"] == "completed"
    _n, failures = Auditor(engine).verify([iid], replay=True)
    assert failures == []


def test_start_form__defaults_filled__invalid_data_refused_naming_fields(engine: Engine) -> None:
    engine.deploy([FORM_DATA])
    before = _count(engine)
    with pytest.raises(FormError) as err:
        engine.start("start_request", {"amount": 0}, actor="alice")
    paths = [p for p, _ in err.value.errors]
    assert sorted(paths) == ["$.amount", "$.title"]
    with pytest.raises(FormError, match="urgency"):
        engine.start("start_request", {"title": "x", "urgency": "someday"}, actor="alice")
    with pytest.raises(FormError, match="title"):
        engine.start("start_request", {"title": "x" * 41}, actor="alice")
    assert _count(engine) == before  # nothing stored
    iid = engine.start("start_request", {"title": "desk", "urgency": "high"}, actor="bob")
    data = engine.instance(iid)["data"]
    assert data == {"title": "desk", "urgency": "high", "amount": 10, "notify": True, "starter": "bob"}


def test_form_ref__camunda_form_on_the_start_event(engine: Engine) -> None:
    from engine.camunda_start import start_form

    engine.deploy([FORM_REF])
    with pytest.raises(FormError, match="reason"):
        engine.start("start_formref", {"reason": "no"}, actor="carol")
    with pytest.raises(FormError, match="days"):
        engine.start("start_formref", {"reason": "family", "days": 31}, actor="carol")
    iid = engine.start("start_formref", {"reason": "family"}, actor="carol")
    assert engine.instance(iid)["data"] == {"reason": "family", "days": 1, "kind": "annual", "starter": "carol"}
    form = start_form(engine, "start_formref")
    assert form["form_ref"] == "leave_request" and form["schema"]["required"] == ["reason"]


def test_initiator__message_start__and_timer_start_has_none(engine: Engine, tmp_path: Path) -> None:
    body = ('    <bpmn:startEvent id="StartEvent_msg" camunda:initiator="filedBy">\n'
            '      <bpmn:messageEventDefinition id="Med_1" messageRef="Message_filed" />\n    </bpmn:startEvent>\n'
            '    <bpmn:userTask id="Task_check" name="Check" camunda:assignee="${filedBy}" />\n'
            '    <bpmn:endEvent id="EndEvent_1" />\n' + chain("StartEvent_msg", "Task_check", "EndEvent_1"))
    path = write(tmp_path, "filed.bpmn", bpmn("filed", body, '  <bpmn:message id="Message_filed" name="filed" />\n'))
    engine.deploy([path])
    [iid] = engine.message("filed", {"what": "x"}, actor="dora")["started"]
    [task] = [t for t in engine.instance(iid)["tasks"] if t.state == "open"]
    assert engine.instance(iid)["data"]["filedBy"] == "dora" and task.assignee == "dora"


def test_deploy__html_start_form_and_bad_initiator__refused_by_element(engine: Engine, tmp_path: Path) -> None:
    body = ('    <bpmn:startEvent id="StartEvent_1" camunda:formKey="embedded:app:forms/start.html" '
            'camunda:initiator="the starter" />\n    <bpmn:endEvent id="EndEvent_1" />\n'
            + chain("StartEvent_1", "EndEvent_1"))
    path = write(tmp_path, "html_start.bpmn", bpmn("html_start", body))
    with pytest.raises(DefinitionError) as err:
        engine.deploy([path])
    text = str(err.value.details())
    assert "HTML form" in text and "camunda:initiator 'the starter'" in text and "StartEvent_1" in text
    missing = write(tmp_path, "missing_start.bpmn", bpmn("missing_start", body.replace(
        'camunda:formKey="embedded:app:forms/start.html" camunda:initiator="the starter"', 'camunda:formKey="nosuch"')))
    with pytest.raises(DefinitionError, match="start form key 'nosuch' has no schema"):
        engine.deploy([missing])


# ----------------------------------------------------------------------------- command line
def test_cli__start_as_user__form_errors_name_the_field(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    ok(db, "init")
    ok(db, "directory", "load", str(ORG), "--as", "alice")
    ok(db, "deploy", str(FORM_DATA), "--as", "alice")
    line = refused(db, 5, "start", "start_request", "--data", '{"amount": 5000}', "--as", "bob")
    assert "$.amount" in line and "1000" in line and "$.title" in line
    assert "(none)" in ok(db, "instances")
    out = ok(db, "start", "start_request", "--data", '{"title": "lamp"}', "--as", "bob")
    assert "Review own request" in out and "bob" in out
    shown = ok(db, "show", "1")
    assert '"starter": "bob"' in shown and '"amount": 10' in shown


# ----------------------------------------------------------------------------- /api/v1
def test_api_v1__start_form_and_validated_start(site: Site) -> None:
    site.engine.deploy([FORM_DATA], actor="ada")
    form = site.get("/api/v1/processes/start_request/start-form", "bob").json()
    assert form["form_key"] == "camunda-formdata.start_request.StartEvent_request"
    assert {f["name"]: f["required"] for f in form["fields"]} == {"title": True, "amount": False,
                                                                 "urgency": False, "notify": False}
    assert site.get("/api/v1/processes/nosuch/start-form", "bob").status_code == 404
    r = site.post("/api/v1/processes/start_request/instances", "bob", json={"data": {"amount": "ten"}})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert {e["path"] for e in r.json()["errors"]} == {"$.amount", "$.title"}
    r = site.post("/api/v1/processes/start_request/instances", "bob", json={"data": {"title": "pens"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["data"]["starter"] == "bob" and body["open_tasks"][0]["assignee"] == "bob"
    assert site.post("/api/v1/processes/start_request/instances", "erin",
                     json={"data": {"title": "x"}}).status_code == 403  # an auditor only reads


# ----------------------------------------------------------------------------- /engine-rest
@pytest.fixture
def rest(db_url: str, tmp_path: Path) -> Iterator[str]:
    prepare(db_url, tmp_path)
    e = Engine(db_url)
    e.deploy([FORM_DATA, FORM_REF], actor="ada")
    e.close()
    srv = Server(db_url, "--no-worker")
    try:
        yield srv.base + "/engine-rest"
    finally:
        code, err = srv.stop()
        assert code == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_engine_rest__start_form_calls_and_pycamunda_start(rest: str, db_url: str) -> None:
    auth = ("carol", password("carol"))
    r = httpx.get(f"{rest}/process-definition/key/start_formref/startForm", auth=auth)
    assert r.status_code == 200 and r.json()["camundaFormRef"]["key"] == "leave_request"
    assert httpx.get(f"{rest}/process-definition/key/start_request/startForm", auth=auth).json()["key"] is None
    vars_ = httpx.get(f"{rest}/process-definition/key/start_request/form-variables", auth=auth).json()
    assert vars_["amount"] == {"type": "Long", "value": 10, "valueInfo": {}}
    assert vars_["title"] == {"type": "String", "value": None, "valueInfo": {}}
    assert vars_["notify"]["value"] is True and vars_["urgency"]["value"] == "normal"
    only = httpx.get(f"{rest}/process-definition/key/start_request/form-variables",
                     params={"variableNames": "amount"}, auth=auth).json()
    assert list(only) == ["amount"]

    bad = httpx.post(f"{rest}/process-definition/key/start_request/submit-form", auth=auth,
                     json={"variables": {"amount": {"value": 0, "type": "Long"}}})
    assert bad.status_code == 400 and set(bad.json()) == {"type", "message"}
    assert "$.title" in bad.json()["message"] and "$.amount" in bad.json()["message"]
    good = httpx.post(f"{rest}/process-definition/key/start_request/submit-form", auth=auth,
                      json={"variables": {"title": {"value": "chair", "type": "String"}}, "businessKey": "SF-1"})
    assert good.status_code == 200, good.text
    iid = int(good.json()["id"])
    assert good.json()["businessKey"] == "SF-1"

    start = pycamunda.processdef.StartInstance(rest, key="start_formref", with_variables_in_return=True)
    start.auth = HTTPBasicAuth("dora", password("dora"))
    with pytest.raises(pycamunda.BadRequest, match="reason"):
        start()
    start.add_variable("reason", "moving house", "String")
    pi = start()
    assert pi.variables["starter"].value == "dora" and pi.variables["days"].value == 1
    e = Engine(db_url)
    try:
        assert e.instance(iid)["data"]["starter"] == "carol"
        [task] = [t for t in e.instance(int(pi.id_))["tasks"] if t.state == "open"]
        assert task.assignee == "dora"
    finally:
        e.close()
