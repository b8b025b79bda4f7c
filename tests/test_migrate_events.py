"""Migration of instances that wait at a boundary timer, a message catch and inside an embedded
subprocess: the timers and subscriptions follow, the instance runs on, and verify/replay hold
(a fresh engine between steps; SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import BPMN
from engine import Engine
from engine.deadlines import Worker
from engine.errors import Conflict
from migrate_support import holds, prepare, task_id
from storage.models import Instance, MessageSubscription, Timer

@pytest.fixture
def url(db_url: str, tmp_path: Path) -> str:
    """Version 1 of every test diagram."""
    prepare(db_url, tmp_path, [[BPMN]])
    return db_url


def deploy_v2(url: str, tmp_path: Path) -> None:
    """A version 2 of timers, message_catch and subprocess: the same diagram with one task's label
    changed."""
    v2 = tmp_path / "v2"
    shutil.copytree(BPMN / "forms", v2 / "forms")
    for name, old, new in (("timers", 'name="Answer the request"', 'name="Answer the request (v2)"'),
                           ("message_catch", 'name="Read the reply"', 'name="Read the reply (v2)"'),
                           ("subprocess", 'name="Confirm greeting"', 'name="Confirm greeting (v2)"')):
        text = (BPMN / f"{name}.bpmn").read_text(encoding="utf-8")
        assert old in text
        (v2 / f"{name}.bpmn").write_text(text.replace(old, new), encoding="utf-8")
    assert {r.version for r in Engine(url).deploy([v2], actor="root") if r.created} == {2}


def test_migrate__boundary_timer_keeps_its_due_time(url: str, tmp_path: Path) -> None:
    iid = Engine(url).start("timers", actor="alice")
    deploy_v2(url, tmp_path)
    with Engine(url)._tx() as s:
        due_before = sorted(t.due_at for t in s.scalars(select(Timer).where(Timer.instance_id == iid)))
    Engine(url).migrate(iid, 2, actor="root", reason="new label")
    holds(url, iid)
    with Engine(url)._tx() as s:
        assert sorted(t.due_at for t in s.scalars(select(Timer).where(Timer.instance_id == iid))) == due_before
    Engine(url).advance_clock(timedelta(days=5, minutes=1))
    Worker(Engine(url)).run_once()
    holds(url, iid)
    Engine(url).complete(task_id(url, iid, "Task_late"), "alice", {"ok": True})
    assert Engine(url).instance(iid)["status"] == "completed"
    holds(url, iid)


def test_migrate__waiting_for_a_message(url: str, tmp_path: Path) -> None:
    iid = Engine(url).start("message_catch", actor="alice")
    Engine(url).complete(task_id(url, iid, "Task_submit"), "alice", {"name": "x"})
    deploy_v2(url, tmp_path)
    Engine(url).migrate(iid, 2, actor="root", reason="new label")
    holds(url, iid)
    with Engine(url)._tx() as s:
        assert [m.element_id for m in s.scalars(select(MessageSubscription)
                                                  .where(MessageSubscription.instance_id == iid))] == ["Event_reply"]
    assert Engine(url).message("reply", {"answer": 42}, actor="bob") == {"delivered_to": iid}
    holds(url, iid)
    t = Engine(url).task(task_id(url, iid, "Task_read"))
    assert t.name == "Read the reply (v2)"  # created after the move: the new version's task
    Engine(url).complete(t.id, "alice", {"ok": True})
    assert Engine(url).instance(iid)["status"] == "completed"
    holds(url, iid)


def test_migrate__inside_an_embedded_subprocess(url: str, tmp_path: Path) -> None:
    iid = Engine(url).start("subprocess", actor="alice")
    deploy_v2(url, tmp_path)
    Engine(url).migrate(iid, 2, actor="root", reason="new label")
    holds(url, iid)
    Engine(url).complete(task_id(url, iid, "Task_inner"), "alice", {"name": "Ada"})
    holds(url, iid)
    t = Engine(url).task(task_id(url, iid, "Task_after"))
    assert t.name == "Confirm greeting (v2)"
    Engine(url).complete(t.id, "alice", {"ok": True})
    assert Engine(url).instance(iid)["status"] == "completed"
    holds(url, iid)


def test_modify__cancel_a_task_with_a_boundary_timer(url: str) -> None:
    iid = Engine(url).start("timers", actor="alice")
    Engine(url).start_before(iid, "Event_until", actor="root", reason="wait for the date as well")
    holds(url, iid)
    Engine(url).cancel_activity(iid, "Task_wait", actor="root", reason="answered by phone")
    holds(url, iid)
    info = Engine(url).instance(iid)
    assert info["status"] == "running"
    assert [w["element"] for w in info["waiting"]] == ["Event_until"]  # the boundary timer went with its task
    assert [t.element_id for t in Engine(url).tasks(instance_id=iid, scope="all")] == []


BOUNDARY = """
    <bpmn:boundaryEvent id="Boundary_t" attachedToRef="Task_fill">
      <bpmn:outgoing>Flow_late</bpmn:outgoing>
      <bpmn:timerEventDefinition id="Timer_t"><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="EndEvent_late"><bpmn:incoming>Flow_late</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_late" sourceRef="Boundary_t" targetRef="EndEvent_late"/>
  </bpmn:process>"""


def test_migrate__boundary_events_added_or_removed_around_a_waiting_task__refused(url: str, tmp_path: Path) -> None:
    first = Engine(url).start("user_task", actor="alice")
    v2 = tmp_path / "v2"
    shutil.copytree(BPMN / "forms", v2 / "forms")
    text = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    (v2 / "user_task.bpmn").write_text(text.replace("</bpmn:process>", BOUNDARY), encoding="utf-8")
    assert Engine(url).deploy([v2], actor="root")[0].version == 2
    second = Engine(url).start("user_task", actor="alice")
    with Engine(url)._tx() as s:
        before = {i: (s.get(Instance, i).state, s.get(Instance, i).last_seq) for i in (first, second)}
    with pytest.raises(Conflict, match="boundary events in the new version"):
        Engine(url).migrate(first, 2, actor="root", reason="gain a timer")
    with pytest.raises(Conflict, match="'Boundary_t' is waiting"):
        Engine(url).migrate(second, 1, actor="root", reason="lose the timer")
    with Engine(url)._tx() as s:
        assert {i: (s.get(Instance, i).state, s.get(Instance, i).last_seq) for i in (first, second)} == before
    for iid in (first, second):
        holds(url, iid)


def test_modify__start_before_in_a_subprocess_and_cancel_the_subprocess(url: str) -> None:
    iid = Engine(url).start("subprocess", actor="alice")
    Engine(url).start_before(iid, "Task_inner", actor="root", reason="a second inner form")
    assert [t.element_id for t in Engine(url).tasks(instance_id=iid, scope="all")] == ["Task_inner"] * 2
    holds(url, iid)
    Engine(url).start_before(iid, "Task_after", actor="root", reason="confirm now")
    Engine(url).cancel_activity(iid, "Sub_inner", actor="root", reason="inner work not needed")
    holds(url, iid)
    info = Engine(url).instance(iid)
    assert info["status"] == "running"
    assert sorted((t.element_id, t.state) for t in info["tasks"]) == [
        ("Task_after", "open"), ("Task_inner", "cancelled"), ("Task_inner", "cancelled")]
    Engine(url).complete(task_id(url, iid, "Task_after"), "alice", {"ok": True})
    assert Engine(url).instance(iid)["status"] == "completed"
    holds(url, iid)
