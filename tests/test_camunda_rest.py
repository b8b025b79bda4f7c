"""/engine-rest with a real Camunda 7 client (pycamunda) against a real `tigao serve` process,
on SQLite and PostgreSQL; plus the calls pycamunda does not offer (form variables, submit-form,
history), in Camunda's JSON shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pycamunda
import pycamunda.message
import pycamunda.processdef
import pycamunda.processinst
import pycamunda.task
import pytest
import requests
from requests.auth import HTTPBasicAuth
from web_support import Server, password, prepare


@pytest.fixture
def camunda(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    tokens, _ = prepare(db_url, tmp_path)
    srv = Server(db_url, "--no-worker")
    try:
        yield srv.base + "/engine-rest", tokens
    finally:
        code, err = srv.stop()
        assert code == 0 and "Traceback" not in err, err


def as_user(request: pycamunda.base.CamundaRequest, user: str, secret: str | None = None) -> pycamunda.base.CamundaRequest:
    request.auth = HTTPBasicAuth(user, secret or password(user))
    return request


@pytest.mark.slow
def test_pycamunda__start_work_complete(camunda: tuple[str, dict[str, str]]) -> None:
    url, tokens = camunda
    defs = as_user(pycamunda.processdef.GetList(url, latest_version=True), "alice")()
    assert "user_task" in {d.key for d in defs}
    d = as_user(pycamunda.processdef.Get(url, key="user_task"), "alice")()
    assert d.key == "user_task" and d.version == 1 and d.resource == "user_task.bpmn"

    start = as_user(pycamunda.processdef.StartInstance(url, key="user_task", business_key="CAM-1",
                                                       with_variables_in_return=True), "alice", tokens["alice"])
    start.add_variable("name", "from camunda", "String")
    start.add_variable("amount", 7, "Integer")
    pi = start()
    assert pi.business_key == "CAM-1" and pi.definition_id.startswith("user_task:1:")
    assert pi.variables["amount"].value == 7 and pi.variables["amount"].type_ == "Integer"
    assert as_user(pycamunda.processinst.Get(url, pi.id_), "erin")().id_ == pi.id_

    [t] = as_user(pycamunda.task.GetList(url, process_instance_id=pi.id_), "alice")()
    assert t.task_definition_key == "Task_fill" and t.assignee is None and t.form_key == "simple"
    assert t.created is not None
    offered = as_user(pycamunda.task.GetList(url, candidate_group="staff"), "alice")()
    assert t.id_ in {x.id_ for x in offered}
    assert t.id_ in {x.id_ for x in as_user(pycamunda.task.GetList(url, candidate_user="bob"), "bob")()}

    as_user(pycamunda.task.Claim(url, t.id_, user_id="alice"), "alice")()
    assert as_user(pycamunda.task.Get(url, t.id_), "alice")().assignee == "alice"
    assert [x.id_ for x in as_user(pycamunda.task.GetList(url, assignee="alice"), "alice")()] == [t.id_]
    as_user(pycamunda.task.Unclaim(url, t.id_), "alice")()
    as_user(pycamunda.task.Claim(url, t.id_, user_id="alice"), "alice")()

    bad = as_user(pycamunda.task.Complete(url, t.id_), "alice")
    bad.add_variable("amount", "lots", "Integer")
    with pytest.raises(pycamunda.BadRequest, match="amount"):
        bad()
    invalid = as_user(pycamunda.task.Complete(url, t.id_), "alice")
    invalid.add_variable("amount", -3, "Integer")  # a whole number, but the form wants it >= 0
    with pytest.raises(pycamunda.BadRequest, match="minimum"):
        invalid()
    done = as_user(pycamunda.task.Complete(url, t.id_), "alice")
    done.add_variable("name", "finished", "String")
    done()

    hist = requests.get(f"{url}/history/process-instance", params={"processInstanceId": pi.id_},
                        auth=HTTPBasicAuth("erin", password("erin")), timeout=10).json()
    assert hist[0]["state"] == "COMPLETED" and hist[0]["startUserId"] == "alice"
    assert hist[0]["processDefinitionKey"] == "user_task" and hist[0]["endTime"]


@pytest.mark.slow
def test_pycamunda__errors_in_camunda_shape(camunda: tuple[str, dict[str, str]]) -> None:
    url, tokens = camunda
    with pytest.raises(pycamunda.NotFound):
        as_user(pycamunda.task.Get(url, "999999"), "alice")()
    with pytest.raises(pycamunda.NotFound):
        as_user(pycamunda.processdef.Get(url, key="nope"), "alice")()
    with pytest.raises(pycamunda.Unauthorized):
        as_user(pycamunda.processdef.GetList(url), "alice", "wrong-password")()
    auditor = as_user(pycamunda.processdef.StartInstance(url, key="user_task"), "erin")
    with pytest.raises(pycamunda.Forbidden):
        auditor()
    start = as_user(pycamunda.processdef.StartInstance(url, key="user_task"), "alice")
    start.add_variable("n", "x", "Date-ish")
    with pytest.raises(pycamunda.BadRequest, match="not supported"):
        start()
    r = httpx.get(f"{url}/task/abc", auth=("alice", password("alice")))
    assert r.status_code == 404 and set(r.json()) == {"type", "message"}
    r = httpx.post(f"{url}/process-definition/key/user_task/start", content=b"{oops",
                   headers={"Content-Type": "application/json"}, auth=("alice", password("alice")))
    assert r.status_code == 400 and r.json()["type"] == "InvalidRequestException"
    assert httpx.get(f"{url}/engine").json() == [{"name": "default"}]
    r = httpx.get(f"{url}/task", headers={"Authorization": f"Bearer {tokens['bob']}"})
    assert r.status_code == 200 and isinstance(r.json(), list)


@pytest.mark.slow
def test_pycamunda__message_form_variables_submit_form(camunda: tuple[str, dict[str, str]]) -> None:
    url, tokens = camunda
    auth = ("bob", tokens["bob"])  # Basic with a token as the password
    start = as_user(pycamunda.processdef.StartInstance(url, key="message_catch"), "bob", tokens["bob"])
    start.add_variable("name", "question", "String")
    start.add_variable("details", '{"a": [1, 2]}', "Json")
    pi = start()
    [t] = httpx.get(f"{url}/task", params={"processInstanceId": pi.id_}, auth=auth).json()
    fv = httpx.get(f"{url}/task/{t['id']}/form-variables", auth=auth).json()
    assert fv["name"] == {"type": "String", "value": "question", "valueInfo": {}}
    assert fv["details"]["type"] == "Json" and fv["details"]["value"] == '{"a": [1, 2]}'
    r = httpx.post(f"{url}/task/{t['id']}/submit-form", auth=auth,
                   json={"variables": {"name": {"value": "asked", "type": "String"}}})
    assert r.status_code == 204, r.text

    corr = as_user(pycamunda.message.CorrelateSingle(url, "reply", process_instance_id=pi.id_,
                                                     result_enabled=True), "bob", tokens["bob"])
    corr.add_process_variable("answer", 42, "Long")
    [result] = corr()
    assert result.result_type.value == "Execution"
    [t2] = httpx.get(f"{url}/task", params={"processInstanceId": pi.id_}, auth=auth).json()
    assert t2["taskDefinitionKey"] == "Task_read"
    fv = httpx.get(f"{url}/task/{t2['id']}/form-variables", params={"variableNames": "answer"}, auth=auth).json()
    assert fv == {"answer": {"type": "Integer", "value": 42, "valueInfo": {}}}
    r = httpx.post(f"{url}/message", auth=auth, json={"messageName": "nobody-waits"})
    assert r.status_code == 400 and "Cannot correlate" in r.json()["message"]
    started = httpx.post(f"{url}/message", auth=auth, json={"messageName": "complaint", "resultEnabled": True,
                                                            "businessKey": "MSG-1"}).json()
    assert started[0]["resultType"] == "ProcessDefinition"
    assert started[0]["processInstance"]["businessKey"] == "MSG-1"
    hist = httpx.get(f"{url}/history/process-instance", params={"unfinished": "true",
                                                                "processDefinitionKey": "message_start"},
                     auth=auth).json()
    assert [h["businessKey"] for h in hist] == ["MSG-1"] and hist[0]["state"] == "ACTIVE"
