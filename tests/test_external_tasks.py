"""External tasks, in-process handlers and incidents, through the engine API.

Each step runs on a fresh Engine (as separate processes would), on SQLite and PostgreSQL; every
finished instance must replay to its stored state, and stored states must round-trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import ORG, set_simulated
from engine import Conflict, DefinitionError, Engine, InputError, NotAllowed, NotFound
from engine import handlers as handlers_mod
from engine.audit import Auditor
from engine.deadlines import Worker
from helpers import assert_roundtrip, open_tasks
from storage.models import Event, ExternalTask, Notification, Timer

HERE = Path(__file__).parent / "bpmn" / "external"
CALLS: list[dict[str, Any]] = []


def _double(data: dict[str, Any], ctx: handlers_mod.HandlerContext) -> dict[str, Any]:
    CALLS.append(dict(data))
    if data.get("fail"):
        raise RuntimeError("the registry is down")
    ctx.notify("alice", f"doubled {data['n']}")
    return {"n": data["n"] * 2}


@pytest.fixture
def url(db_url: str) -> Iterator[str]:
    handlers_mod.register("testDouble", _double)
    CALLS.clear()
    set_simulated(db_url)
    e = Engine(db_url)
    e.load_directory(ORG)
    e.deploy([HERE])
    e.close()
    yield db_url
    handlers_mod.unregister("testDouble")


@pytest.fixture
def fresh(url: str) -> Iterator[Callable[[], Engine]]:
    made: list[Engine] = []

    def make() -> Engine:
        e = Engine(url)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


def _charge(fresh: Callable[[], Engine], amount: int = 5, business_key: str | None = None) -> int:
    iid = fresh().start("external_charge", {"amount": amount}, business_key=business_key, actor="alice")
    assert_roundtrip(fresh(), iid)
    return iid


def _lock(fresh: Callable[[], Engine], worker: str = "w1", ms: int = 60_000, **kw: Any) -> list[dict[str, Any]]:
    return fresh().fetch_and_lock(worker, [{"topic": "charge", "lock_duration": ms, **kw}], max_tasks=10)


def _replays(engine: Engine, iid: int) -> None:
    r = Auditor(engine).replay(iid)
    assert r.ok, r.divergence


def test_external_task__created_locked_completed__flow_goes_on_and_replays(fresh: Callable[[], Engine]) -> None:
    iid = _charge(fresh, 7, "order-1")
    [row] = fresh().external_tasks()
    assert (row["topic"], row["element_id"], row["priority"], row["business_key"]) == ("charge", "Task_charge", 7,
                                                                                        "order-1")
    assert open_tasks(fresh(), iid) == []
    [got] = _lock(fresh, variables=["amount"])
    assert got["variables"] == {"amount": 7} and got["worker_id"] == "w1"
    assert _lock(fresh, "w2") == []  # locked: nobody else gets it
    with pytest.raises(Conflict, match="locked by 'w1'"):
        fresh().complete_external(got["id"], "w2", {"charged": True})
    fresh().complete_external(got["id"], "w1", {"charged": True})
    assert_roundtrip(fresh(), iid)
    assert [t.element_id for t in open_tasks(fresh(), iid)] == ["Task_ship"]
    assert fresh().instance(iid)["data"]["charged"] is True
    assert fresh().external_tasks() == []
    types = [e.type for e in fresh().history(iid)]
    assert types[:5] == ["instance_started", "external_task_created", "external_task_locked",
                         "external_task_completed", "task_created"]
    with pytest.raises(NotFound):
        fresh().complete_external(got["id"], "w1", {})
    _replays(fresh(), iid)
    checked, failures = Auditor(fresh()).verify([iid])
    assert checked == 1 and failures == []


def test_lock_expires__another_worker_fetches__first_may_not_report(fresh: Callable[[], Engine]) -> None:
    _charge(fresh)
    [got] = _lock(fresh, "w1", ms=1000)
    fresh().advance_clock(timedelta(seconds=2))
    [again] = _lock(fresh, "w2")
    assert again["id"] == got["id"] and again["worker_id"] == "w2"
    with pytest.raises(Conflict):
        fresh().complete_external(got["id"], "w1", {})
    fresh().advance_clock(timedelta(minutes=2))
    with pytest.raises(Conflict, match="expired"):
        fresh().extend_lock(got["id"], "w2", 1000)
    fresh().complete_external(got["id"], "w2", {})


def test_extend_lock_and_unlock(fresh: Callable[[], Engine]) -> None:
    iid = _charge(fresh)
    [got] = _lock(fresh, "w1", ms=1000)
    fresh().extend_lock(got["id"], "w1", 600_000)
    fresh().advance_clock(timedelta(seconds=5))
    assert _lock(fresh, "w2") == []
    with pytest.raises(Conflict):
        fresh().extend_lock(got["id"], "w2", 1000)
    for who in ("mallory", "system"):  # not on file; the engine's own name
        with pytest.raises(NotAllowed):
            fresh().unlock(got["id"], actor=who)
    assert _lock(fresh, "w2") == []  # still locked: the refusals changed nothing
    fresh().unlock(got["id"], actor="alice")
    [again] = _lock(fresh, "w2")
    assert again["id"] == got["id"]
    types = [e.type for e in fresh().history(iid)]
    assert "external_task_lock_extended" in types and "external_task_unlocked" in types


def test_failure__retries_and_timeout__then_incident__retry_resolves(fresh: Callable[[], Engine]) -> None:
    iid = _charge(fresh)
    [got] = _lock(fresh)
    fresh().external_failure(got["id"], "w1", "gateway timeout", "stack...", retries=1, retry_timeout=60_000)
    assert _lock(fresh) == []  # not before the retry timeout
    fresh().advance_clock(timedelta(minutes=2))
    [again] = _lock(fresh)
    assert again["retries"] == 1 and again["error_message"] == "gateway timeout"
    fresh().external_failure(again["id"], "w1", "still down", retries=0)
    assert _lock(fresh) == []
    [inc] = fresh().incidents()
    assert (inc["kind"], inc["instance_id"], inc["element_id"]) == ("external", iid, "Task_charge")
    assert "still down" in inc["message"]
    assert fresh().stuck_instances() == []
    with pytest.raises(NotFound):
        fresh().retry_incident(inc["id"] + 100, "alice")
    assert fresh().retry_incident(inc["id"], "alice")["resolved"] is True
    assert fresh().incidents() == []
    with pytest.raises(Conflict):
        fresh().retry_incident(inc["id"], "alice")
    [last] = _lock(fresh)
    fresh().complete_external(last["id"], "w1", {})
    types = [e.type for e in fresh().history(iid)]
    assert types.count("external_task_failed") == 2 and "incident_opened" in types and "incident_resolved" in types
    _replays(fresh(), iid)


def test_bpmn_error__caught_by_boundary__unknown_code_opens_an_incident(fresh: Callable[[], Engine]) -> None:
    iid = _charge(fresh)
    [got] = _lock(fresh)
    fresh().bpmn_error(got["id"], "w1", "other_code", "?")
    assert fresh().instance(iid)["status"] == "running"
    [inc] = fresh().incidents()
    assert "BPMN error 'other_code' from Task_charge is caught by no error boundary event" in inc["message"]
    assert _lock(fresh) == []  # it waits for an operator
    fresh().retry_incident(inc["id"], "alice")
    [got] = _lock(fresh)
    fresh().bpmn_error(got["id"], "w1", "card_declined", "insufficient funds", {"reason": "funds"})
    inst = fresh().instance(iid)
    assert inst["status"] == "completed" and inst["data"]["reason"] == "funds"
    _replays(fresh(), iid)


def test_bad_input__is_refused_and_changes_nothing(fresh: Callable[[], Engine]) -> None:
    iid = _charge(fresh)
    before = len(fresh().history(iid))
    with pytest.raises(InputError):
        fresh().fetch_and_lock("", [{"topic": "charge", "lock_duration": 1000}])
    with pytest.raises(InputError):
        fresh().fetch_and_lock("w1", [{"topic": "charge", "lock_duration": -5}])
    with pytest.raises(InputError):
        fresh().fetch_and_lock("w1", [])
    [got] = _lock(fresh)
    with pytest.raises(InputError):
        fresh().complete_external(got["id"], "w1", {"now": 1})  # a reserved helper name
    with pytest.raises(InputError):
        fresh().external_failure(got["id"], "w1", "x", retries=-1)
    with pytest.raises(NotFound):
        fresh().complete_external(999, "w1", {})
    assert len(fresh().history(iid)) == before + 1  # only the lock


def test_business_key_filter(fresh: Callable[[], Engine]) -> None:
    _charge(fresh, 1, "a")
    _charge(fresh, 2, "b")
    got = fresh().fetch_and_lock("w1", [{"topic": "charge", "lock_duration": 1000}], business_key="b")
    assert [g["business_key"] for g in got] == ["b"]
    got = _lock(fresh, "w2", business_key="a")
    assert [g["business_key"] for g in got] == ["a"]


def test_handler__run_by_worker__result_recorded__replay_does_not_call_it(fresh: Callable[[], Engine],
                                                                          url: str) -> None:
    iid = fresh().start("handler_step", {"n": 21}, actor="alice")
    assert CALLS == []
    fired = Worker(fresh()).run_once()
    assert [f.kind for f in fired] == ["handler"]
    assert CALLS == [{"n": 21}]
    assert_roundtrip(fresh(), iid)
    assert fresh().instance(iid)["data"]["n"] == 42
    assert [t.element_id for t in open_tasks(fresh(), iid)] == ["Task_check"]
    e = fresh()
    with e._tx() as s:
        notes = list(s.scalars(select(Notification).where(Notification.kind == "handler")))
        assert [(n.recipient, n.message) for n in notes] == [("alice", "doubled 21")]
        handler_events = list(s.scalars(select(Event).where(Event.type == "handler_completed")))
        assert handler_events[0].payload["data"] == {"n": 42}
    _replays(fresh(), iid)
    assert len(CALLS) == 1


def test_handler_failure__opens_incident__retry_runs_it_again(fresh: Callable[[], Engine]) -> None:
    iid = fresh().start("handler_step", {"n": 1, "fail": True}, actor="alice")
    fired = Worker(fresh()).run_once()
    assert [f.outcome for f in fired] == ["failed"]
    [inc] = fresh().incidents()
    assert inc["kind"] == "handler" and "registry is down" in inc["message"] and inc["element_id"] == "Task_double"
    from engine import ScriptError

    with pytest.raises(ScriptError, match="stays open"):
        fresh().retry_incident(inc["id"], "alice")
    assert len(fresh().incidents()) == 1
    e = fresh()
    with e._tx() as s:  # the operator fixed the cause (here: the data the handler refused)
        row = s.scalar(select(ExternalTask).where(ExternalTask.instance_id == iid))
        assert row is not None and row.state == "open"
    handlers_mod.register("testDouble", lambda data, ctx: {"n": 5})
    assert fresh().retry_incident(inc["id"], "alice")["resolved"]
    assert fresh().incidents() == [] and fresh().instance(iid)["data"]["n"] == 5
    _replays(fresh(), iid)


def test_stuck_instance__is_reported(fresh: Callable[[], Engine]) -> None:
    iid = fresh().start("handler_step", {"n": 1}, actor="alice")
    assert fresh().stuck_instances() == []
    e = fresh()
    with e._tx() as s:  # what an older engine left behind: a waiting step nobody knows about
        for t in s.scalars(select(Timer).where(Timer.instance_id == iid)):
            t.state = "cancelled"
        for r in s.scalars(select(ExternalTask).where(ExternalTask.instance_id == iid)):
            r.state = "cancelled"
    [stuck] = fresh().stuck_instances()
    assert stuck["instance_id"] == iid and "waits for no" in stuck["message"]


def test_deploy__service_task_without_implementation__is_refused(fresh: Callable[[], Engine],
                                                                 tmp_path: Path) -> None:
    text = (HERE / "handler_step.bpmn").read_text(encoding="utf-8")
    for attr, expect in ((' camunda:delegateExpression="${testDouble}"', "names no implementation"),
                         (' camunda:delegateExpression="${nobodyRegistered}"', "no handler 'nobodyRegistered'"),
                         (' camunda:type="connector"', "camunda:type='connector'"),
                         (' camunda:type="external"', "needs a camunda:topic")):
        bad = text.replace(' camunda:delegateExpression="${testDouble}"', attr if "testDouble" not in attr else "")
        bad = bad.replace('id="handler_step"', 'id="handler_bad"')
        p = tmp_path / "bad.bpmn"
        p.write_text(bad, encoding="utf-8")
        with pytest.raises(DefinitionError) as exc:
            fresh().deploy([p], actor="dora")
        assert "Task_double" in str(exc.value.problems[0]) and expect in str(exc.value.problems[0])
    assert "handler_bad" not in {d["key"] for d in fresh().definitions()}


@pytest.mark.postgres
def test_postgres__concurrent_fetches__never_share_a_task(pg_url: str) -> None:
    set_simulated(pg_url)
    e = Engine(pg_url)
    e.load_directory(ORG)
    e.deploy([HERE / "external_charge.bpmn"])
    for n in range(8):
        e.start("external_charge", {"amount": n}, actor="alice")
    got: dict[str, list[int]] = {}

    errors: list[BaseException] = []

    def fetch(worker: str) -> None:
        eng = Engine(pg_url)
        try:
            got[worker] = [t["id"] for t in eng.fetch_and_lock(worker, [{"topic": "charge", "lock_duration": 60_000}],
                                                               max_tasks=4)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        eng.close()

    threads = [threading.Thread(target=fetch, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [i for v in got.values() for i in v]
    assert len(ids) == len(set(ids)) and len(ids) == 8
    e.close()


def test_cli__external_tasks_incidents_retry(fresh: Callable[[], Engine], url: str) -> None:
    from click.testing import CliRunner

    from cli import main

    def tigao(*args: str) -> Any:
        return CliRunner(env={"TIGAO_USER": None, "TIGAO_DB": None}).invoke(main, ["--db", url, *args])

    iid = _charge(fresh, 9)
    r = tigao("external-tasks")
    assert r.exit_code == 0 and "charge" in r.output and "Task_charge" in r.output
    [got] = _lock(fresh)
    fresh().external_failure(got["id"], "w1", "printer on fire", retries=0)
    r = tigao("incidents")
    assert r.exit_code == 0 and "printer on fire" in r.output and str(iid) in r.output
    assert '"incidents"' in tigao("incidents", "--json").output
    r = tigao("retry", "1")
    assert r.exit_code == 3 and "--as" in r.output
    r = tigao("retry", "99", "--as", "alice")
    assert r.exit_code != 0 and "no incident 99" in r.output and "Traceback" not in r.output
    r = tigao("retry", "1", "--as", "alice")
    assert r.exit_code == 0 and "resolved" in r.output
    assert "(no open incidents)" in tigao("incidents").output


def test_timer_step_failure__opens_incident__retry_keeps_it_open_while_it_fails(fresh: Callable[[], Engine]) -> None:
    from engine import ScriptError

    iid = fresh().start("timer_script", {"total": 10, "parts": 0}, actor="alice")
    fresh().advance_clock(timedelta(hours=2))
    assert [f.outcome for f in Worker(fresh()).run_once()] == ["failed"]
    [inc] = fresh().incidents()
    assert (inc["kind"], inc["instance_id"], inc["element_id"]) == ("timer", iid, "Timer_wait")
    assert "division by zero" in inc["message"]
    with pytest.raises(ScriptError, match="stays open"):
        fresh().retry_incident(inc["id"], "alice")
    assert [i["id"] for i in fresh().incidents()] == [inc["id"]]
    assert fresh().stuck_instances() == []  # an instance with an open incident is not "stuck"
    assert "incident_opened" in [e.type for e in fresh().history(iid)]


def test_campaign_complaint__complainant_told_by_the_default_handler(db_url: str, tmp_path: Path) -> None:
    from campaign_support import run_scenario

    r = run_scenario("complaint_on_sunday_night", db_url, tmp_path)
    engine, iid = r["engine"], r["instance"]
    assert engine.instance(iid)["status"] == "completed"
    with engine._tx() as s:
        [note] = list(s.scalars(select(Notification).where(Notification.kind == "handler",
                                                           Notification.instance_id == iid)))
    assert note.recipient.startswith("complainant:")
    assert "handler_completed" in [e.type for e in engine.history(iid)]
    _replays(engine, iid)


def test_send_task_and_message_throw__as_external_tasks(fresh: Callable[[], Engine], tmp_path: Path) -> None:
    iid = fresh().start("send_throw", {}, actor="alice")
    for topic, element in (("mail", "Send_mail"), ("rules", "Rule_ext"), ("notify", "Throw_ext")):
        [got] = fresh().fetch_and_lock("w", [{"topic": topic, "lock_duration": 1000}])
        assert got["element_id"] == element
        assert_roundtrip(fresh(), iid)
        fresh().complete_external(got["id"], "w", {topic: True})
    inst = fresh().instance(iid)
    assert inst["status"] == "completed" and inst["data"] == {"mail": True, "rules": True, "notify": True}
    _replays(fresh(), iid)
    # A business rule task written so runs the same way: an external task (Camunda's pattern).
    text = (HERE / "send_throw.bpmn").read_text(encoding="utf-8").replace('id="send_throw"', 'id="brt_ext"')
    text = text.replace('<bpmn:serviceTask id="Rule_ext"', '<bpmn:businessRuleTask id="Rule_ext"', 1)
    text = text.replace("</bpmn:serviceTask>", "</bpmn:businessRuleTask>", 1)
    assert "<bpmn:businessRuleTask id=\"Rule_ext\"" in text
    p = tmp_path / "brt.bpmn"
    p.write_text(text, encoding="utf-8")
    fresh().deploy([p], actor="dora")
    iid = fresh().start("brt_ext", {}, actor="alice")
    for topic in ("mail", "rules", "notify"):
        [got] = fresh().fetch_and_lock("w", [{"topic": topic, "lock_duration": 1000}])
        fresh().complete_external(got["id"], "w", {topic: True})
    assert fresh().instance(iid)["status"] == "completed"
    _replays(fresh(), iid)
