"""Pruning (engine/prune.py): the stored task tree of a long-running instance stays small, and
the work cut from it stays in the history, the replay and the diagram."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import BPMN, ORG
from engine import Engine
from engine.audit import Auditor
from engine.inspection import element_states
from engine.prune import prune, task_count, taken_flows
from engine.state import StateSerializer
from storage.models import Definition, HumanTask, Instance


def _stored_workflow(engine: Engine, iid: int) -> Any:
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        d = s.get(Definition, inst.definition_id)
        built = engine._built(d)
        return StateSerializer().loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine), inst.state


@contextmanager
def _changes_written() -> Iterator[list[dict[str, Any]]]:
    """The part changes (`instances.state_changes`) the commands in the block wrote, decoded."""
    from sqlalchemy import event

    written: list[dict[str, Any]] = []

    def on_set(_target: Any, value: Any, *_args: Any) -> None:
        if value is not None:
            written.append(json.loads(value))

    event.listen(Instance.state_changes, "set", on_set)
    try:
        yield written
    finally:
        event.remove(Instance.state_changes, "set", on_set)


def _complete(engine: Engine, iid: int, element: str, data: dict[str, Any]) -> None:
    [t] = [t for t in engine.tasks(scope="all", instance_id=iid) if t.element_id == element]
    engine.complete(t.id, t.assignee or "alice", data)


def _loop(engine: Engine, iid: int, passes: int) -> list[int]:
    counts = []
    for n in range(passes):
        _complete(engine, iid, "Task_draft", {"text": f"draft {n}"})
        _complete(engine, iid, "Task_review", {"approve": False})
        counts.append(task_count(_stored_workflow(engine, iid)[0]))
    return counts


@pytest.mark.slow
def test_loop__220_passes__stored_tree_stays_bounded(engine_mode: str, engine: Engine) -> None:
    iid = engine.start("loop_back", actor="alice")
    counts = _loop(engine, iid, 220)
    # Without pruning the tree gains about 3 tasks a pass (660 by the end).
    assert max(counts) <= 12, counts
    assert counts[-1] == counts[10], counts
    wf, state = _stored_workflow(engine, iid)
    assert len(state) < 8_000
    # The work that was cut still shows on the diagram, and the replay still matches.
    states = element_states(wf)
    assert states["Task_review"].state == "completed"
    assert states["Gateway_approved"].state == "completed"
    assert ("loop_back", "Gateway_approved", "Task_draft") in taken_flows(wf)
    assert engine.task_data(next(t for t in engine.tasks(scope="all", instance_id=iid)).id)["text"] == "draft 219"
    # A pass cut from the tree still shows the data its tasks completed with (their rows keep it).
    with engine._tx(read=True) as s:
        first_review, last_review = [r.id for r in s.scalars(select(HumanTask).where(
            HumanTask.instance_id == iid, HumanTask.element_id == "Task_review").order_by(HumanTask.id))][::219]
    assert engine.task_data(first_review) == {"text": "draft 0", "approve": False}
    assert engine.task_data(last_review) == {"text": "draft 219", "approve": False}
    _complete(engine, iid, "Task_draft", {"text": "final"})
    _complete(engine, iid, "Task_review", {"approve": True})
    assert engine.instance(iid)["status"] == "completed"
    assert engine.instance(iid)["data"] == {"text": "final", "approve": True}
    result = Auditor(engine).replay(iid)
    assert result.ok, result.divergence
    assert Auditor(engine).verify([iid])[1] == []


def test_parallel_loop__join_in_progress_keeps_its_branches(engine: Engine) -> None:
    iid = engine.start("parallel_loop", actor="alice")
    for _ in range(6):
        wf, _state = _stored_workflow(engine, iid)
        before = task_count(wf)
        assert prune(wf) == 0  # what is stored is already pruned: pruning again cuts nothing
        assert task_count(wf) == before
        open_now = engine.tasks(scope="all", instance_id=iid)
        if not open_now:
            break
        t = open_now[0]
        form = engine.task_form(t.id) or {}
        props = form.get("properties", {})
        sample = {"boolean": True, "integer": 1, "number": 1, "string": "x"}
        engine.complete(t.id, t.assignee or "alice", {k: sample.get(v.get("type"), "x") for k, v in props.items()})
    assert Auditor(engine).replay(iid).ok
    assert Auditor(engine).verify([iid])[1] == []


def test_state_in_parts__a_completion_writes_only_the_tasks_that_changed(engine: Engine) -> None:
    from storage.models import StatePart

    iid = engine.start("loop_back", actor="alice")
    _loop(engine, iid, 3)
    with _changes_written() as written:
        _complete(engine, iid, "Task_draft", {"text": "once more"})
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        assert inst.state_format == 2 and inst.state_changes is None  # applied and cleared
        head = json.loads(inst.state_head)
        layout = head["tigao_layout"]
        assert "tigao_parts" not in head and head["subprocesses"] == {} and head["tasks"] == {}
        listed = set(layout["tasks"]) | {"@" + sp for sp in layout["subprocesses"]}
        stored = dict(s.execute(select(StatePart.part, StatePart.body).where(StatePart.instance_id == iid)).all())
        assert set(stored) == listed  # dropped parts are gone, new ones are there
        [change] = written
        assert not change.get("all")
        assert 0 < len(change["put"]) < len(listed)  # the draft's task and what followed, not the rest
        assert all(stored[k] == v for k, v in change["put"].items())
        assert not set(change["drop"]) & set(stored)
    wf, state = _stored_workflow(engine, iid)
    assert engine.task_data(engine.tasks(scope="all", instance_id=iid)[0].id)["text"] == "once more"


def test_state_stored_whole__replaces_the_parts(engine: Engine) -> None:
    """Writing a whole state (format 1) drops the instance's parts; it loads as before."""
    from storage.models import StatePart

    iid = engine.start("loop_back", actor="alice")
    _loop(engine, iid, 1)
    with engine._tx() as s:
        inst = s.get(Instance, iid)
        whole = inst.state
        inst.state = whole
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        assert inst.state_format == 1 and inst.state_head == whole
        assert s.scalars(select(StatePart.part).where(StatePart.instance_id == iid)).all() == []
    _complete(engine, iid, "Task_draft", {"text": "after"})
    _complete(engine, iid, "Task_review", {"approve": True})
    assert engine.instance(iid)["status"] == "completed"
    assert Auditor(engine).verify([iid])[1] == []


TWO_SUBPROCESSES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_two_subs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="two_subs" isExecutable="true">
    <bpmn:startEvent id="StartEvent_top"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="Split"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:subProcess id="Sub_a"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:startEvent id="Start_a"><bpmn:outgoing>a1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="Task_a1" camunda:assignee="alice"><bpmn:incoming>a1</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing></bpmn:userTask>
      <bpmn:userTask id="Task_a2" camunda:assignee="alice"><bpmn:incoming>a2</bpmn:incoming><bpmn:outgoing>a3</bpmn:outgoing></bpmn:userTask>
      <bpmn:endEvent id="End_a"><bpmn:incoming>a3</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="a1" sourceRef="Start_a" targetRef="Task_a1" />
      <bpmn:sequenceFlow id="a2" sourceRef="Task_a1" targetRef="Task_a2" />
      <bpmn:sequenceFlow id="a3" sourceRef="Task_a2" targetRef="End_a" />
    </bpmn:subProcess>
    <bpmn:subProcess id="Sub_b"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:startEvent id="Start_b"><bpmn:outgoing>b1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="Task_b" camunda:assignee="bob"><bpmn:incoming>b1</bpmn:incoming><bpmn:outgoing>b2</bpmn:outgoing></bpmn:userTask>
      <bpmn:endEvent id="End_b"><bpmn:incoming>b2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="b1" sourceRef="Start_b" targetRef="Task_b" />
      <bpmn:sequenceFlow id="b2" sourceRef="Task_b" targetRef="End_b" />
    </bpmn:subProcess>
    <bpmn:parallelGateway id="Join"><bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming>
      <bpmn:outgoing>f6</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="EndEvent_top"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_top" targetRef="Split" />
    <bpmn:sequenceFlow id="f2" sourceRef="Split" targetRef="Sub_a" />
    <bpmn:sequenceFlow id="f3" sourceRef="Split" targetRef="Sub_b" />
    <bpmn:sequenceFlow id="f4" sourceRef="Sub_a" targetRef="Join" />
    <bpmn:sequenceFlow id="f5" sourceRef="Sub_b" targetRef="Join" />
    <bpmn:sequenceFlow id="f6" sourceRef="Join" targetRef="EndEvent_top" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_state_parts__a_command_in_one_subprocess_rewrites_its_part_not_the_others(engine: Engine,
                                                                                   tmp_path: Path) -> None:
    """Each subprocess is a part of its own (without its tasks, listing their ids): the head does
    not list every task, and a command inside one subprocess leaves the other's part alone."""
    from storage.models import StatePart

    path = tmp_path / "two_subs.bpmn"
    path.write_text(TWO_SUBPROCESSES)
    engine.deploy([path], actor="alice")
    iid = engine.start("two_subs", actor="alice")

    def stored() -> tuple[dict[str, Any], dict[str, str]]:
        with engine._tx(read=True) as s:
            inst = s.get(Instance, iid)
            return json.loads(inst.state_head), dict(
                s.execute(select(StatePart.part, StatePart.body).where(StatePart.instance_id == iid)).all())

    head, parts = stored()
    subs = head["tigao_layout"]["subprocesses"]
    assert len(subs) == 2 and head["subprocesses"] == {} and all("@" + sp in parts for sp in subs)
    sub_of = {}
    for sp in subs:
        for tid in json.loads(parts["@" + sp])["tigao_tasks"]:
            sub_of[tid] = sp
    [a1] = [t for t in engine.tasks(scope="all", instance_id=iid) if t.element_id == "Task_a1"]
    with engine._tx(read=True) as s:
        a_sub = sub_of[s.get(HumanTask, a1.id).spiff_id]
    with _changes_written() as written:
        engine.complete(a1.id, "alice", {})
    [change] = written
    put = set(change["put"])
    assert "@" + a_sub in put  # its task list and last task moved on
    assert not {"@" + sp for sp in subs if sp != a_sub} & put
    assert not {tid for tid, sp in sub_of.items() if sp != a_sub} & put  # nor the other's tasks
    for element in ("Task_b", "Task_a2"):
        [t] = [t for t in engine.tasks(scope="all", instance_id=iid) if t.element_id == element]
        engine.complete(t.id, t.assignee, {})
    assert engine.instance(iid)["status"] == "completed"
    assert Auditor(engine).verify([iid])[1] == []
