"""/engine-rest/external-task: Camunda 7's wire format, in-process and against a real `tigao serve`
driven by the unchanged PyPI client camunda-external-task-client-python3."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from web_support import Server, Site, password, site  # noqa: F401 - fixtures

CHARGE = Path(__file__).parent / "bpmn" / "external" / "external_charge.bpmn"
R = "/engine-rest/external-task"


def _deploy_and_start(url: str, n: int = 1) -> list[int]:
    e = Engine(url)
    e.deploy([CHARGE], actor="ada")
    ids = [e.start("external_charge", {"amount": 10 + i, "customer": {"name": "Lin"}}, business_key=f"o{i}",
                   actor="alice") for i in range(n)]
    e.close()
    return ids


def _fetch(site: Site, worker: str = "w1", **extra: Any) -> Any:
    body = {"workerId": worker, "maxTasks": 5, "topics": [{"topicName": "charge", "lockDuration": 60000}],
            "usePriority": True, "sorting": None, **extra}
    return site.post(f"{R}/fetchAndLock", "alice", json=body)


def test_fetch_complete__typed_variables__and_camunda_errors(site: Site) -> None:
    [iid] = _deploy_and_start(site.url)
    assert site.post(f"{R}/fetchAndLock", json={"workerId": "w", "topics": []}).status_code == 401
    r = _fetch(site)
    assert r.status_code == 200, r.text
    [task] = r.json()
    assert task["topicName"] == "charge" and task["processInstanceId"] == str(iid) and task["businessKey"] == "o0"
    assert task["activityId"] == "Task_charge" and task["workerId"] == "w1" and task["lockExpirationTime"]
    assert task["variables"]["amount"] == {"value": 10, "type": "Integer", "valueInfo": {}}
    assert task["variables"]["customer"]["type"] == "Json"
    assert _fetch(site, "w2").json() == []
    bad = site.post(f"{R}/{task['id']}/complete", "alice", json={"workerId": "w2", "variables": {}})
    assert bad.status_code == 409 and set(bad.json()) == {"type", "message"} and "locked by 'w1'" in bad.json()["message"]
    bad = site.post(f"{R}/{task['id']}/complete", "alice",
                    json={"workerId": "w1", "variables": {"paid": {"value": "maybe", "type": "Boolean"}}})
    assert bad.status_code == 400 and "paid" in bad.json()["message"]
    assert site.post(f"{R}/999/complete", "alice", json={"workerId": "w1"}).status_code == 404
    assert site.post(f"{R}/abc/complete", "alice", json={"workerId": "w1"}).status_code == 404
    assert site.post(f"{R}/fetchAndLock", "alice", json={"workerId": "w1"}).status_code == 400
    listed = site.get(R, "alice", params={"topicName": "charge"}).json()
    assert [t["id"] for t in listed] == [task["id"]] and listed[0]["workerId"] == "w1"
    ok = site.post(f"{R}/{task['id']}/complete", "alice",
                   json={"workerId": "w1", "variables": {"paid": {"value": True, "type": "Boolean"},
                                                         "receipt": {"value": '{"no": 7}', "type": "Json"}}})
    assert ok.status_code == 204, ok.text
    data = site.engine.instance(iid)["data"]
    assert data["paid"] is True and data["receipt"] == {"no": 7}
    assert site.get(R, "alice").json() == []


def test_failure_extend_unlock_bpmn_error(site: Site) -> None:
    [iid] = _deploy_and_start(site.url)
    [task] = _fetch(site).json()
    tid = task["id"]
    assert site.post(f"{R}/{tid}/extendLock", "alice", json={"workerId": "w1", "newDuration": 90000}).status_code == 204
    assert site.post(f"{R}/{tid}/unlock", "alice").status_code == 204
    [task] = _fetch(site, "w2").json()
    r = site.post(f"{R}/{tid}/failure", "alice", json={"workerId": "w2", "errorMessage": "down", "retries": 0,
                                                       "retryTimeout": 0})
    assert r.status_code == 204
    assert _fetch(site).json() == []
    [inc] = site.engine.incidents()
    assert site.engine.retry_incident(inc["id"], "alice")["resolved"]
    [task] = _fetch(site, "w3").json()
    assert task["retries"] == 1 and task["errorMessage"] == "down"
    r = site.post(f"{R}/{tid}/bpmnError", "alice", json={"workerId": "w3", "errorCode": "card_declined",
                                                          "variables": {"why": {"value": "funds", "type": "String"}}})
    assert r.status_code == 204, r.text
    assert site.engine.instance(iid)["status"] == "completed"


def test_long_poll__waits_then_returns_empty(site: Site) -> None:
    before = time.monotonic()
    r = _fetch(site, asyncResponseTimeout=700)
    assert r.status_code == 200 and r.json() == []
    assert time.monotonic() - before >= 0.6


@pytest.mark.slow
def test_camunda_python_client__unchanged__against_tigao_serve(db_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from camunda.external_task.external_task_worker import ExternalTaskWorker

    from web_support import prepare

    prepare(db_url, tmp_path)
    ids = _deploy_and_start(db_url, 3)
    srv = Server(db_url, "--no-worker")
    try:
        config = {"auth_basic": {"username": "alice", "password": password("alice")}, "maxTasks": 1,
                  "lockDuration": 10000, "asyncResponseTimeout": 1000, "retries": 1, "retryTimeout": 0,
                  "sleepSeconds": 0}
        worker = ExternalTaskWorker(worker_id="py-1", base_url=f"{srv.base}/engine-rest", config=config)
        seen: list[Any] = []

        def charge(task: Any) -> Any:
            seen.append((task.get_variable("amount"), task.get_business_key()))
            if task.get_business_key() == "o1":
                return task.bpmn_error("card_declined", "insufficient funds", {"why": "funds"})
            if task.get_business_key() == "o2":
                return task.failure("gateway down", "timeout after 5 s", max_retries=1, retry_timeout=0)
            return task.complete({"paid": True, "receipt": 42})

        for _ in range(4):
            worker.fetch_and_execute("charge", charge)
        # camunda:taskPriority="${amount}": the highest first; o2's failure leaves it one retry, so it
        # comes back at once (retryTimeout 0) and its second failure leaves none (an incident).
        assert seen == [(12, "o2"), (12, "o2"), (11, "o1"), (10, "o0")]
    finally:
        code, err = srv.stop()
    e = Engine(db_url)
    first, second, third = (e.instance(i) for i in ids)
    assert first["data"]["paid"] is True and first["data"]["receipt"] == 42
    assert second["status"] == "completed" and second["data"]["why"] == "funds"
    assert third["status"] == "running"
    [inc] = e.incidents()
    assert inc["instance_id"] == ids[2] and "gateway down" in inc["message"]
    e.close()


def test_api_v1__incidents_and_external_tasks(site: Site) -> None:
    [iid] = _deploy_and_start(site.url)
    [row] = site.get("/api/v1/external-tasks", "bob").json()
    assert row["topic"] == "charge" and row["instance_id"] == iid
    [task] = _fetch(site).json()
    site.post(f"{R}/{task['id']}/failure", "alice", json={"workerId": "w1", "errorMessage": "down", "retries": 0})
    body = site.get("/api/v1/incidents", "bob").json()
    [inc] = body["incidents"]
    assert inc["kind"] == "external" and body["stuck"] == []
    assert site.get("/api/v1/incidents").status_code == 401
    assert site.post("/api/v1/incidents/999/retry", "alice").status_code == 404
    r = site.post(f"/api/v1/incidents/{inc['id']}/retry", "alice")
    assert r.status_code == 200 and r.json()["resolved"] is True
    assert site.post(f"/api/v1/incidents/{inc['id']}/retry", "alice").status_code == 409
    assert site.get("/api/v1/incidents", "bob").json()["incidents"] == []
