"""camunda:failedJobRetryTimeCycle on service tasks: an in-process handler that fails is tried again
when the cycle's interval has passed on the engine clock, by the worker (and `tigao worker --once`);
an external task a worker fails without saying its retries waits the interval before it can be
fetched again (through /engine-rest); the last failure opens an incident; a bad cycle is refused
at deployment. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from camunda_support import bpmn, chain, write
from conftest import ORG, set_simulated
from engine import DefinitionError, Engine
from engine import handlers as handlers_mod
from engine.audit import Auditor
from engine.deadlines import Worker
from engine.retry_cycle import parse
from test_cli import ok
from web_support import Site, site  # noqa: F401 - fixtures

CYCLE = Path(__file__).parent / "bpmn" / "camunda" / "retry_cycle.bpmn"
R = "/engine-rest/external-task"
FAILS = {"left": 0, "calls": 0}


def _flaky(data: dict[str, Any], ctx: handlers_mod.HandlerContext) -> dict[str, Any]:
    FAILS["calls"] += 1
    if FAILS["left"] > 0:
        FAILS["left"] -= 1
        raise ConnectionError("the registry is down")
    return {"registered": True}


@pytest.fixture(autouse=True)
def flaky() -> Iterator[None]:
    handlers_mod.register("flakyRegistry", _flaky)
    FAILS.update(left=0, calls=0)
    yield
    handlers_mod.unregister("flakyRegistry")


def _engine(url: str) -> Engine:
    set_simulated(url)
    e = Engine(url)
    e.load_directory(ORG)
    e.deploy([CYCLE])
    return e


def _row(e: Engine, iid: int, element: str) -> dict[str, Any]:
    [row] = [r for r in e.external_tasks(instance_id=iid, state="any", handlers=True) if r["element_id"] == element]
    return row


def test_parse__counts_and_intervals() -> None:
    c = parse("R3/PT5M")
    assert (c.attempts, c.left_after_failure(None), c.interval_after(2)) == (3, 2, "PT5M")
    c = parse("PT1M, PT10M")
    assert c.attempts == 3 and c.interval_after(2) == "PT1M" and c.interval_after(1) == "PT10M"
    for bad in ("", "R3/5M", "R0/PT1M", "R3", "every 5 minutes", "PT1M,soon"):
        with pytest.raises(ValueError):
            parse(bad)


def test_handler__retried_after_the_interval__then_incident(db_url: str) -> None:
    e = _engine(db_url)
    FAILS["left"] = 10
    iid = e.start("retry_cycle", {}, actor="alice")
    worker = Worker(e)
    [fired] = worker.run_once()
    assert fired.outcome == "retrying" and FAILS["calls"] == 1
    row = _row(e, iid, "Task_register")
    assert row["retries"] == 2 and row["error_message"] == "handler 'flakyRegistry' at Task_register failed: " \
                                                            "the registry is down"
    assert e.incidents() == [] and e.stuck_instances() == []
    assert worker.run_once() == [] and FAILS["calls"] == 1  # not due yet
    e.advance_clock(timedelta(minutes=4, seconds=59))
    assert worker.run_once() == [] and FAILS["calls"] == 1
    e.advance_clock(timedelta(seconds=1))
    assert [f.outcome for f in worker.run_once()] == ["retrying"] and FAILS["calls"] == 2
    assert _row(e, iid, "Task_register")["retries"] == 1
    e.advance_clock(timedelta(minutes=5))
    assert [f.outcome for f in worker.run_once()] == ["failed"] and FAILS["calls"] == 3
    [inc] = e.incidents()
    assert inc["element_id"] == "Task_register" and "no retries left after 3 attempt(s)" in inc["message"]
    assert _row(e, iid, "Task_register")["retries"] == 0
    failed = [ev for ev in e.history(iid) if ev.type == "handler_failed"]
    assert [ev.payload["retries"] for ev in failed] == [2, 1]
    e.advance_clock(timedelta(hours=1))
    assert worker.run_once() == [] and FAILS["calls"] == 3  # the incident waits for an operator
    FAILS["left"] = 0
    assert e.retry_incident(inc["id"], "alice")["resolved"]
    assert _row(e, iid, "Task_charge")["state"] == "open"
    _n, failures = Auditor(e).verify([iid], replay=True)
    assert failures == []
    e.close()


def test_handler__succeeds_on_a_retry__through_the_cli(db_url: str) -> None:
    e = _engine(db_url)
    FAILS["left"] = 1
    iid = e.start("retry_cycle", {}, actor="alice")
    ok(db_url, "worker", "--once")
    row = _row(e, iid, "Task_register")
    assert row["state"] == "open" and row["retries"] == 2
    shown = ok(db_url, "show", str(iid), "--wide")
    assert "flakyRegistry" in shown and "the registry is down" in shown
    ok(db_url, "clock", "advance", "PT5M", "--as", "alice")
    ok(db_url, "worker", "--once")
    assert FAILS["calls"] == 2 and _row(e, iid, "Task_register")["state"] == "completed"
    assert e.instance(iid)["data"]["registered"] is True and e.incidents() == []
    _n, failures = Auditor(e).verify([iid], replay=True)
    assert failures == []
    e.close()


def test_external_failure__cycle_sets_retries_and_wait__over_engine_rest(site: Site) -> None:
    site.engine.deploy([CYCLE], actor="ada")
    iid = site.engine.start("retry_cycle", {}, actor="alice")
    Worker(site.engine).run_once()  # the handler step succeeds: the external task opens

    def fetch() -> list[dict[str, Any]]:
        r = site.post(f"{R}/fetchAndLock", "alice", json={
            "workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "charge_retry", "lockDuration": 60000}]})
        assert r.status_code == 200, r.text
        return r.json()

    def fail(tid: str) -> None:
        r = site.post(f"{R}/{tid}/failure", "alice", json={"workerId": "w1", "errorMessage": "gateway down"})
        assert r.status_code == 204, r.text

    def advance(duration: str) -> None:
        assert site.post("/api/v1/clock", "ada", json={"advance": duration}).status_code == 200

    [task] = fetch()
    fail(task["id"])
    assert _row(site.engine, iid, "Task_charge")["retries"] == 2
    assert fetch() == []  # PT1M on the engine clock first
    advance("PT59S")
    assert fetch() == []
    advance("PT1S")
    [again] = fetch()
    assert again["id"] == task["id"] and again["retries"] == 2 and again["errorMessage"] == "gateway down"
    fail(task["id"])
    advance("PT9M")
    assert fetch() == []
    advance("PT1M")
    [third] = fetch()
    assert third["retries"] == 1 and site.engine.incidents() == []
    fail(task["id"])
    [inc] = site.engine.incidents()
    assert inc["element_id"] == "Task_charge" and "no retries left" in inc["message"]
    advance("PT1H")
    assert fetch() == []
    # What a worker states explicitly wins: retries 5 and a timeout of 2 s.
    assert site.post(f"/api/v1/incidents/{inc['id']}/retry", "alice").status_code == 200
    [fourth] = fetch()
    r = site.post(f"{R}/{fourth['id']}/failure", "alice",
                  json={"workerId": "w1", "errorMessage": "again", "retries": 5, "retryTimeout": 2000})
    assert r.status_code == 204
    assert _row(site.engine, iid, "Task_charge")["retries"] == 5
    advance("PT2S")
    assert [t["id"] for t in fetch()] == [task["id"]]


def test_deploy__bad_cycle__refused_naming_the_element(engine: Engine, tmp_path: Path) -> None:
    handlers_mod.register("flakyRegistry", _flaky)
    for i, text in enumerate(("R3/5M", "", "R0/PT5M", "PT5M,later")):
        body = ('    <bpmn:startEvent id="StartEvent_1" />\n'
                '    <bpmn:serviceTask id="Task_flaky" camunda:delegateExpression="${flakyRegistry}">\n'
                '      <bpmn:extensionElements>\n'
                f'        <camunda:failedJobRetryTimeCycle>{text}</camunda:failedJobRetryTimeCycle>\n'
                '      </bpmn:extensionElements>\n    </bpmn:serviceTask>\n'
                '    <bpmn:endEvent id="EndEvent_1" />\n' + chain("StartEvent_1", "Task_flaky", "EndEvent_1"))
        path = write(tmp_path, f"bad_cycle_{i}.bpmn", bpmn(f"bad_cycle_{i}", body))
        with pytest.raises(DefinitionError) as err:
            engine.deploy([path])
        [problem] = err.value.problems
        assert problem.element == "Task_flaky" and "R3/PT5M" in problem.message, problem
    assert not [d for d in engine.definitions() if d["key"].startswith("bad_cycle")]
