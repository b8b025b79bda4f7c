"""The rest of BPMN's events, one diagram each (tests/bpmn/events/), driven step by step with a
reload check (helpers.assert_roundtrip) after every step and a replay of every instance at the end.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine import DefinitionError, Engine, InputError, NotFound, Worker
from engine.audit import Auditor
from helpers import assert_roundtrip, complete, data, open_tasks, status
from storage.models import MessageSubscription

pytestmark = pytest.mark.usefixtures("engine_mode")

EVENTS = Path(__file__).parent / "bpmn" / "events"


@pytest.fixture
def ev(engine: Engine) -> Engine:
    engine.deploy([EVENTS], actor="alice")
    return engine


def start(engine: Engine, key: str, data_: dict[str, Any] | None = None) -> int:
    iid = engine.start(key, data_, actor="alice")
    assert_roundtrip(engine, iid)
    return iid


def open_elements(engine: Engine, iid: int) -> list[str]:
    return sorted(t.element_id for t in open_tasks(engine, iid))


def subscriptions(engine: Engine, kind: str) -> list[tuple[int, str, str]]:
    with engine._tx(read=True) as s:
        rows = s.query(MessageSubscription).filter(MessageSubscription.kind == kind).all()
        return sorted((r.instance_id, r.message_name, r.element_id) for r in rows)


def assert_replays(engine: Engine, *iids: int) -> None:
    for iid in iids:
        r = Auditor(engine).replay(iid)
        assert r.ok and r.matches_stored, (iid, r.divergence)


def by_key(engine: Engine, key: str) -> list[int]:
    return sorted(i["id"] for i in engine.instances() if i["key"] == key)


# ---------------------------------------------------------------------------------------------- signals


def test_signal__broadcast_reaches_every_waiting_instance_and_starts_signal_processes(ev: Engine) -> None:
    a, b = start(ev, "signal_catch"), start(ev, "signal_catch")
    assert open_elements(ev, a) == [] and ev.instance(a)["status"] == "running"
    assert subscriptions(ev, "signal") == [(a, "go", "Event_go"), (b, "go", "Event_go")]
    assert subscriptions(ev, "message") == []

    result = ev.signal("go", {"x": 1}, actor="dora")

    started = by_key(ev, "signal_start")
    assert result == {"delivered_to": [a, b], "started": started, "failed": [], "truncated": False}
    assert len(started) == 1
    for iid in (a, b, *started):
        assert_roundtrip(ev, iid)
        assert data(ev, iid) == {"x": 1}
    assert open_elements(ev, a) == open_elements(ev, b) == ["Task_after"]
    assert open_elements(ev, started[0]) == ["Task_started"]
    assert subscriptions(ev, "signal") == []
    received = [e for e in ev.history(a) if e.type == "signal_received"]
    assert [(e.actor, e.element_id, e.payload["name"], e.payload["data"]) for e in received] == \
        [("dora", "Event_go", "go", {"x": 1})]
    assert ev.history(started[0])[0].payload["via"] == "signal"

    complete(ev, a, "Task_after")
    complete(ev, started[0], "Task_started")
    assert status(ev, a) == status(ev, started[0]) == "completed"
    assert_replays(ev, a, b, started[0])


def test_signal__thrown_inside_a_process_is_broadcast_to_the_others(ev: Engine) -> None:
    waiting = start(ev, "signal_catch")
    thrower = start(ev, "signal_throw")

    complete(ev, thrower, "Task_prepare")

    assert status(ev, thrower) == "completed"
    assert open_elements(ev, waiting) == ["Task_after"]
    assert_roundtrip(ev, waiting)
    received = [e for e in ev.history(waiting) if e.type == "signal_received"][0]
    assert received.payload["from_instance"] == thrower
    started = by_key(ev, "signal_start")
    assert len(started) == 1 and open_elements(ev, started[0]) == ["Task_started"]
    assert_replays(ev, waiting, thrower, started[0])


def test_signal_boundary__interrupts_the_user_task(ev: Engine) -> None:
    iid = start(ev, "signal_boundary")
    assert open_elements(ev, iid) == ["Task_work"]

    ev.signal("stop", actor="dora")
    assert_roundtrip(ev, iid)

    assert open_elements(ev, iid) == ["Task_stopped"]
    types = [(e.type, e.element_id) for e in ev.history(iid)
             if e.type in ("task_cancelled", "signal_received", "task_created")]
    assert types == [("task_created", "Task_work"), ("signal_received", "Event_stop"),
                     ("task_cancelled", "Task_work"), ("task_created", "Task_stopped")]
    complete(ev, iid, "Task_stopped")
    assert status(ev, iid) == "completed"
    assert_replays(ev, iid)


def test_signal__nobody_waiting_or_bad_input__is_refused_and_changes_nothing(ev: Engine) -> None:
    iid = start(ev, "signal_boundary")
    before = len(ev.history(iid))
    with pytest.raises(NotFound, match="no instance waits for signal 'nobody'"):
        ev.signal("nobody", actor="dora")
    with pytest.raises(InputError):
        ev.signal("stop", ["not", "an", "object"], actor="dora")  # type: ignore[arg-type]
    assert len(ev.history(iid)) == before
    assert open_elements(ev, iid) == ["Task_work"]


def test_signal__cli_broadcasts_and_reports_json(ev: Engine, db_url: str) -> None:
    iid = start(ev, "signal_catch")
    run = CliRunner().invoke(main, ["--db", db_url, "signal", "go", "--data", '{"n": 2}', "--as", "dora", "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["delivered_to"] == [iid] and len(out["started"]) == 1
    assert data(ev, iid) == {"n": 2}
    bad = CliRunner().invoke(main, ["--db", db_url, "signal", "go", "--data", "[1", "--as", "dora"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    none = CliRunner().invoke(main, ["--db", db_url, "signal", "nobody", "--as", "dora"])
    assert none.exit_code != 0 and "no instance waits for signal 'nobody'" in none.output


# ---------------------------------------------------------------------------------------------- message boundary


def test_message_boundary__non_interrupting_adds_a_task_then_interrupting_cancels(ev: Engine) -> None:
    iid = start(ev, "message_boundary")
    assert open_elements(ev, iid) == ["Task_work"]
    assert [(n, e) for _, n, e in subscriptions(ev, "message")] == [("note", "Event_note"),
                                                                    ("withdraw", "Event_withdraw")]

    ev.message("note", {"note": "call me"}, actor="dora")
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_note", "Task_work"]  # the work goes on

    ev.message("withdraw", {"reason": "moved"}, actor="dora")
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_note", "Task_withdrawn"]
    assert subscriptions(ev, "message") == []
    cancelled = [e.element_id for e in ev.history(iid) if e.type == "task_cancelled"]
    assert cancelled == ["Task_work"]

    complete(ev, iid, "Task_note")
    complete(ev, iid, "Task_withdrawn")
    assert status(ev, iid) == "completed"
    assert data(ev, iid)["reason"] == "moved" and data(ev, iid)["note"] == "call me"
    assert_replays(ev, iid)


def test_message_boundary__task_completed_first__subscriptions_go_away(ev: Engine) -> None:
    iid = start(ev, "message_boundary")
    complete(ev, iid, "Task_work")
    assert status(ev, iid) == "completed"
    assert subscriptions(ev, "message") == []
    with pytest.raises(NotFound):
        ev.message("withdraw", {}, actor="dora")
    assert_replays(ev, iid)


# ---------------------------------------------------------------------------------------------- event-based gateway


def pending_timers(engine: Engine, iid: int) -> list[str]:
    from storage.models import Timer

    with engine._tx(read=True) as s:
        return sorted(r.element_id for r in s.query(Timer).filter(Timer.instance_id == iid, Timer.kind == "timer",
                                                                   Timer.state == "pending"))


def test_event_gateway__message_first__takes_its_branch_and_drops_the_timer(ev: Engine) -> None:
    iid = start(ev, "event_gateway")
    assert open_elements(ev, iid) == []
    assert pending_timers(ev, iid) == ["Gateway_wait"]
    assert subscriptions(ev, "message") == [(iid, "answer", "Gateway_wait")]

    assert ev.message("answer", {"answer": "yes"}, actor="dora") == {"delivered_to": iid}
    assert_roundtrip(ev, iid)

    assert open_elements(ev, iid) == ["Task_answered"]
    assert pending_timers(ev, iid) == [] and subscriptions(ev, "message") == []
    ev.advance_clock(timedelta(days=2))
    Worker(ev).run_once()
    assert open_elements(ev, iid) == ["Task_answered"]
    complete(ev, iid, "Task_answered")
    assert status(ev, iid) == "completed" and data(ev, iid) == {"answer": "yes"}
    assert_replays(ev, iid)


def test_event_gateway__timer_first__takes_its_branch_and_drops_the_subscription(ev: Engine) -> None:
    iid = start(ev, "event_gateway")
    ev.advance_clock(timedelta(hours=23))
    Worker(ev).run_once()
    assert open_elements(ev, iid) == []
    ev.advance_clock(timedelta(hours=2))
    Worker(ev).run_once()
    assert_roundtrip(ev, iid)

    assert open_elements(ev, iid) == ["Task_chase"]
    assert pending_timers(ev, iid) == [] and subscriptions(ev, "message") == []
    with pytest.raises(NotFound):
        ev.message("answer", {"answer": "late"}, actor="dora")
    complete(ev, iid, "Task_chase")
    assert status(ev, iid) == "completed"
    assert_replays(ev, iid)


# ---------------------------------------------------------------------------------------------- event subprocess


def test_event_subprocess__non_interrupting_timer__starts_a_reminder_beside_the_work(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_timer")
    assert open_elements(ev, iid) == ["Task_work"]
    assert pending_timers(ev, iid) == ["StartEvent_remind"]

    ev.advance_clock(timedelta(hours=23))
    Worker(ev).run_once()
    assert open_elements(ev, iid) == ["Task_work"]
    ev.advance_clock(timedelta(hours=2))
    Worker(ev).run_once()
    assert_roundtrip(ev, iid)

    assert open_elements(ev, iid) == ["Task_remind", "Task_work"]
    complete(ev, iid, "Task_remind")
    complete(ev, iid, "Task_work")
    assert status(ev, iid) == "completed"
    assert_replays(ev, iid)


def test_event_subprocess__non_interrupting_timer__main_flow_done_first__instance_completes(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_timer")
    complete(ev, iid, "Task_work")
    assert status(ev, iid) == "completed"  # the reminder that never came does not keep it open
    assert pending_timers(ev, iid) == []
    ev.advance_clock(timedelta(days=2))
    Worker(ev).run_once()
    assert open_elements(ev, iid) == []
    assert_replays(ev, iid)


def test_event_subprocess__cycle_timer__repeats_until_the_scope_ends_then_stops(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_cycle")
    for _ in range(2):
        ev.advance_clock(timedelta(minutes=61))
        Worker(ev).run_once()
        assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_remind", "Task_remind", "Task_work"]
    complete(ev, iid, "Task_work")
    complete(ev, iid, "Task_remind")
    assert status(ev, iid) == "running"  # one reminder is still being sent
    complete(ev, iid, "Task_remind")
    assert status(ev, iid) == "completed"  # the third hour never comes: the scope has ended
    assert pending_timers(ev, iid) == []
    ev.advance_clock(timedelta(hours=2))
    Worker(ev).run_once()
    assert open_elements(ev, iid) == []
    assert_replays(ev, iid)


def timer_states(engine: Engine, iid: int) -> list[tuple[str, str, str]]:
    from storage.models import Timer

    with engine._tx(read=True) as s:
        return sorted((r.element_id, r.kind, r.state) for r in s.query(Timer).filter(Timer.instance_id == iid))


def test_event_subprocess__interrupting_timer__cancels_the_work_and_voids_its_timers(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_timeout")
    assert open_elements(ev, iid) == ["Task_work"]
    assert timer_states(ev, iid) == [("StartEvent_timeout", "timer", "pending"), ("Task_work", "due", "pending")]

    ev.advance_clock(timedelta(hours=25))
    Worker(ev).run_once()
    assert_roundtrip(ev, iid)

    assert open_elements(ev, iid) == ["Task_late"]
    assert timer_states(ev, iid) == [("StartEvent_timeout", "timer", "fired"), ("Task_work", "due", "cancelled")]
    types = [(e.type, e.element_id) for e in ev.history(iid) if e.type in ("timer_fired", "task_cancelled", "task_created")]
    assert types == [("task_created", "Task_work"), ("timer_fired", "StartEvent_timeout"),
                     ("task_cancelled", "Task_work"), ("task_created", "Task_late")]
    assert task_states(ev, iid) == [("Task_late", "open"), ("Task_work", "cancelled")]
    ev.advance_clock(timedelta(days=3))  # the cancelled task's due date passes: nothing happens
    Worker(ev).run_once()
    complete(ev, iid, "Task_late")
    assert status(ev, iid) == "completed"
    assert task_states(ev, iid) == [("Task_late", "completed"), ("Task_work", "cancelled")]
    assert_replays(ev, iid)


def task_states(engine: Engine, iid: int) -> list[tuple[str, str]]:
    from storage.models import HumanTask

    with engine._tx(read=True) as s:
        return sorted((r.element_id, r.state) for r in s.query(HumanTask).filter(HumanTask.instance_id == iid))


def test_event_subprocess__message__non_interrupting_each_time_then_interrupting_cancels_everything(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_message", {"case": 7})
    assert open_elements(ev, iid) == ["Task_work"]
    assert subscriptions(ev, "message") == [(iid, "case_cancelled", "StartEvent_cancel"),
                                            (iid, "case_note", "StartEvent_note")]

    assert ev.message("case_note", {"note": "first"}, actor="dora", instance_id=iid) == {"delivered_to": iid}
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_note", "Task_work"]
    # Armed again at once: the next note starts another instance of the event subprocess.
    assert subscriptions(ev, "message") == [(iid, "case_cancelled", "StartEvent_cancel"),
                                            (iid, "case_note", "StartEvent_note")]
    ev.message("case_note", {"note": "second"}, actor="dora", instance_id=iid)
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_note", "Task_note", "Task_work"]
    complete(ev, iid, "Task_note")

    ev.message("case_cancelled", {"reason": "moved"}, actor="dora")
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_cancelled"]
    assert subscriptions(ev, "message") == []
    assert task_states(ev, iid) == [("Task_cancelled", "open"), ("Task_note", "cancelled"),
                                    ("Task_note", "completed"), ("Task_work", "cancelled")]
    with pytest.raises(NotFound):
        ev.message("case_note", {"note": "late"}, actor="dora", instance_id=iid)

    complete(ev, iid, "Task_cancelled")
    assert status(ev, iid) == "completed"
    assert data(ev, iid)["case"] == 7 and data(ev, iid)["reason"] == "moved"
    received = [(e.type, e.element_id) for e in ev.history(iid) if e.type == "message_received"]
    assert received == [("message_received", "StartEvent_note")] * 2 + [("message_received", "StartEvent_cancel")]
    assert_replays(ev, iid)


def test_event_subprocess__message__main_flow_done_first__subscriptions_go_away(ev: Engine, db_url: str) -> None:
    iid = start(ev, "event_subprocess_message")
    run = CliRunner().invoke(main, ["--db", db_url, "message", "case_note", "--instance", str(iid),
                                    "--data", '{"note": "hi"}', "--as", "dora"])
    assert run.exit_code == 0, run.output
    assert f"delivered to instance {iid}" in run.output
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_note", "Task_work"]
    complete(ev, iid, "Task_work")
    assert status(ev, iid) == "running"  # the note that started is still being read
    assert subscriptions(ev, "message") == [(iid, "case_cancelled", "StartEvent_cancel"),
                                            (iid, "case_note", "StartEvent_note")]
    complete(ev, iid, "Task_note")
    assert status(ev, iid) == "completed"
    assert subscriptions(ev, "message") == []
    late = CliRunner().invoke(main, ["--db", db_url, "message", "case_cancelled", "--instance", str(iid), "--as", "dora"])
    assert late.exit_code != 0 and "Traceback" not in late.output
    assert "is not waiting for message 'case_cancelled'" in late.output
    assert_replays(ev, iid)


def test_event_subprocess__signal__non_interrupting_each_time_then_interrupting(ev: Engine, db_url: str) -> None:
    iid = start(ev, "event_subprocess_signal")
    assert subscriptions(ev, "signal") == [(iid, "notice", "StartEvent_ping"), (iid, "recall", "StartEvent_recall")]

    assert ev.signal("notice", {"n": 1}, actor="dora")["delivered_to"] == [iid]
    assert_roundtrip(ev, iid)
    run = CliRunner().invoke(main, ["--db", db_url, "signal", "notice", "--data", '{"n": 2}', "--as", "dora", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["delivered_to"] == [iid]
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_ping", "Task_ping", "Task_work"]
    assert subscriptions(ev, "signal") == [(iid, "notice", "StartEvent_ping"), (iid, "recall", "StartEvent_recall")]

    ev.signal("recall", actor="dora")
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_recalled"]
    assert subscriptions(ev, "signal") == []
    assert task_states(ev, iid) == [("Task_ping", "cancelled"), ("Task_ping", "cancelled"),
                                    ("Task_recalled", "open"), ("Task_work", "cancelled")]
    complete(ev, iid, "Task_recalled")
    assert status(ev, iid) == "completed"
    assert_replays(ev, iid)


@pytest.mark.parametrize(("outcome", "handler", "after"), [
    ("fixable", "Task_inner_fix", ["Task_after"]),  # the subprocess's own event subprocess, before its boundary
    ("serious", "Task_outer_fix", []),  # no handler in the subprocess: the process's event subprocess
    ("ok", None, ["Task_after"]),
])
def test_event_subprocess__error_end_event__caught_by_the_innermost_scope(ev: Engine, outcome: str,
                                                                          handler: str | None, after: list[str]) -> None:
    iid = start(ev, "event_subprocess_error")
    assert open_elements(ev, iid) == ["Task_inner"]
    complete(ev, iid, "Task_inner", {"outcome": outcome})
    if handler is not None:
        assert open_elements(ev, iid) == [handler]
        complete(ev, iid, handler, {"fixed": True})
    assert open_elements(ev, iid) == after
    if after:
        complete(ev, iid, "Task_after")
    assert status(ev, iid) == "completed"
    created = [e.element_id for e in ev.history(iid) if e.type == "task_created"]
    assert "Task_boundary" not in created
    assert data(ev, iid)["outcome"] == outcome
    assert_replays(ev, iid)


def test_event_subprocess__escalation__non_interrupting_throw_runs_beside_the_work(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_escalation")
    assert open_elements(ev, iid) == ["Task_side", "Task_work"]
    complete(ev, iid, "Task_work", {"need": "help"})
    assert open_elements(ev, iid) == ["Task_help", "Task_side"]
    complete(ev, iid, "Task_help")
    complete(ev, iid, "Task_side")
    assert status(ev, iid) == "completed"
    assert_replays(ev, iid)


def test_event_subprocess__escalation__interrupting_end_event_cancels_the_other_branch(ev: Engine) -> None:
    iid = start(ev, "event_subprocess_escalation")
    complete(ev, iid, "Task_work", {"need": "stop"})
    assert open_elements(ev, iid) == ["Task_stopped"]
    assert task_states(ev, iid) == [("Task_side", "cancelled"), ("Task_stopped", "open"), ("Task_work", "completed")]
    complete(ev, iid, "Task_stopped")
    assert status(ev, iid) == "completed" and data(ev, iid)["need"] == "stop"
    assert_replays(ev, iid)


@pytest.mark.parametrize("withdrawn", [True, False])
def test_event_subprocess__in_a_subprocess__interrupts_only_its_scope(ev: Engine, withdrawn: bool) -> None:
    iid = start(ev, "event_subprocess_nested", {"case": "c1"})
    assert subscriptions(ev, "message") == [(iid, "case_withdrawn", "StartEvent_withdraw")]
    if withdrawn:
        ev.message("case_withdrawn", {"why": "moved"}, actor="dora")
        assert_roundtrip(ev, iid)
        assert open_elements(ev, iid) == ["Task_withdrawn"]
        assert task_states(ev, iid) == [("Task_review", "cancelled"), ("Task_withdrawn", "open")]
        complete(ev, iid, "Task_withdrawn")
    else:
        complete(ev, iid, "Task_review")
    # Either way the subprocess ends normally and the process goes on after it.
    assert open_elements(ev, iid) == ["Task_archive"]
    assert subscriptions(ev, "message") == []
    complete(ev, iid, "Task_archive")
    assert status(ev, iid) == "completed"
    assert data(ev, iid) == ({"case": "c1", "why": "moved"} if withdrawn else {"case": "c1"})
    assert_replays(ev, iid)


def test_event_subprocess__diagram_states__waiting_then_running_then_cancelled(ev: Engine) -> None:
    from engine.inspection import instance_picture

    iid = start(ev, "event_subprocess_message")
    states = instance_picture(ev, iid).states
    assert (states["Sub_cancel"].state, states["Sub_cancel"].waiting_for) == ("waiting", "message")
    assert (states["StartEvent_note"].state, states["StartEvent_note"].waiting_for) == ("waiting", "message")
    assert states["Task_work"].state == "active"
    ev.message("case_note", {}, actor="dora", instance_id=iid)
    states = instance_picture(ev, iid).states
    assert states["Sub_note"].state == "active" and states["Task_note"].state == "active"
    ev.message("case_cancelled", {}, actor="dora", instance_id=iid)
    states = instance_picture(ev, iid).states
    assert states["Task_work"].state == "cancelled" and states["Task_note"].state == "cancelled"
    assert states["Sub_cancel"].state == "active" and states["StartEvent_cancel"].state == "completed"
    complete(ev, iid, "Task_cancelled")
    states = instance_picture(ev, iid).states
    assert states["Sub_cancel"].state == "completed" and "Task_cancelled" in states


# ---------------------------------------------------------------------------------------------- link events


def test_link__throw_goes_on_at_the_catch_of_its_name_in_its_own_scope(ev: Engine) -> None:
    iid = start(ev, "link_events")
    assert open_elements(ev, iid) == ["Task_fill"]
    complete(ev, iid, "Task_fill", {"request": "a desk"})
    assert open_elements(ev, iid) == ["Task_check"]  # via the process's link, then the subprocess's own
    complete(ev, iid, "Task_check")
    assert open_elements(ev, iid) == ["Task_decide"]
    complete(ev, iid, "Task_decide")
    assert status(ev, iid) == "completed" and data(ev, iid)["request"] == "a desk"
    assert_replays(ev, iid)


# ---------------------------------------------------------------------------------------------- refused by name


@pytest.mark.parametrize(("file", "element", "says"), [
    ("link_unmatched.bpmn", "Event_link_throw", "link throw event 'finish' has no link catch event of that name"),
    ("link_unmatched.bpmn", "Event_link_catch", "link catch event 'the_end' has no link throw event of that name"),
    ("link_duplicate.bpmn", "Event_next_b", "link catch event 'next' appears twice in the same process"),
    ("compensation_throw.bpmn", "Event_undo", "compensation events are not supported"),
    ("conditional_catch.bpmn", "Event_ready", "conditional events are not supported"),
    ("event_subprocess_refused.bpmn", "StartEvent_error", "an error start event always interrupts"),
    ("event_subprocess_refused.bpmn", "StartEvent_plain", "the start event of an event subprocess needs a trigger"),
    ("embedded_signal_start.bpmn", "StartEvent_inner_signal",
     "the start event of embedded subprocess 'Sub_wait' has a signal trigger"),
])
def test_deploy__construct_the_engine_cannot_run__is_refused_by_element(engine: Engine, file: str, element: str,
                                                                       says: str) -> None:
    before = engine.definitions()
    with pytest.raises(DefinitionError) as err:
        engine.deploy([EVENTS / "refused" / file], actor="alice")
    problems = [(p.element, p.message) for p in err.value.problems]
    assert any(e == element and says in m for e, m in problems), problems
    assert engine.definitions() == before


# ------------------------------------------------------------------------------ multiple catches


@pytest.mark.parametrize("name", ["paid", "waived"])
def test_multiple_catch__each_of_its_messages_is_subscribed_and_delivers(ev: Engine, name: str) -> None:
    iid = start(ev, "multiple_messages")
    assert [(n, e) for i, n, e in subscriptions(ev, "message") if i == iid] == [("paid", "Event_either"),
                                                                               ("waived", "Event_either")]
    assert ev.message(name, {"how": name}, actor="dora") == {"delivered_to": iid}
    assert_roundtrip(ev, iid)
    assert open_elements(ev, iid) == ["Task_after"]
    assert [s for s in subscriptions(ev, "message") if s[0] == iid] == []
    complete(ev, iid, "Task_after")
    assert status(ev, iid) == "completed" and data(ev, iid)["how"] == name
    assert_replays(ev, iid)
