"""Pruning (engine/prune.py): the stored task tree of a long-running instance stays small, and
the work cut from it stays in the history, the replay and the diagram."""

from __future__ import annotations

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
    import json

    from sqlalchemy import event

    from storage.models import StatePart

    iid = engine.start("loop_back", actor="alice")
    _loop(engine, iid, 3)
    written: list[dict[str, Any]] = []

    def on_set(_target: Any, value: Any, *_args: Any) -> None:
        if value is not None:
            written.append(json.loads(value))

    event.listen(Instance.state_changes, "set", on_set)
    try:
        _complete(engine, iid, "Task_draft", {"text": "once more"})
    finally:
        event.remove(Instance.state_changes, "set", on_set)
    with engine._tx(read=True) as s:
        inst = s.get(Instance, iid)
        assert inst.state_format == 2 and inst.state_changes is None  # applied and cleared
        head = json.loads(inst.state_head)
        listed = {i for ids in head["tigao_parts"].values() for i in ids}
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
