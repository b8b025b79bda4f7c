"""The engine's SpiffWorkflow extensions, exercised in memory."""

from __future__ import annotations

from pathlib import Path

from SpiffWorkflow.util.task import TaskState

from conftest import BPMN, T0
from engine.clock import SettableClock
from engine.bundles import read_bundle
from engine.definitions import build
from engine.scripting import TigaoScriptEngine
from engine.spiff import TigaoWorkflow
from engine.state import StateSerializer


def _loop_back() -> TigaoWorkflow:
    files = read_bundle([BPMN / "loop_back.bpmn"]).files
    built = build(1, "loop_back", files)
    wf = TigaoWorkflow(built.spec, built.subprocess_specs, script_engine=TigaoScriptEngine(SettableClock(T0)))
    wf.do_engine_steps()
    return wf


def _ready(wf: TigaoWorkflow) -> list[str]:
    return [t.task_spec.bpmn_id for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]


def test_loop__taken_hundreds_of_times__the_tree_deeper_than_1000_levels_keeps_working() -> None:
    wf = _loop_back()
    for n in range(400):  # ~3 tree levels per round: well past SpiffWorkflow's default depth of 1,000
        for element, data in (("Task_draft", {"text": f"v{n}"}), ("Task_review", {"approve": False})):
            task = next(t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == element)
            task.data.update(data)
            task.run()
            wf.do_engine_steps()
        assert not wf.is_completed(), f"completed by mistake after {n + 1} rounds"
        assert _ready(wf) == ["Task_draft"]
    task = next(t for t in wf.get_tasks(state=TaskState.READY))
    task.run()
    wf.do_engine_steps()
    review = next(t for t in wf.get_tasks(state=TaskState.READY))
    review.data["approve"] = True
    review.run()
    wf.do_engine_steps()
    assert wf.is_completed()


def test_state__round_trips_through_the_serializer(tmp_path: Path) -> None:
    wf = _loop_back()
    files = read_bundle([BPMN / "loop_back.bpmn"]).files
    built = build(1, "loop_back", files)
    ser = StateSerializer()
    text = ser.dumps(wf)
    again = ser.loads(text, built.spec, built.subprocess_specs, wf.script_engine)
    assert isinstance(again, TigaoWorkflow)
    assert ser.dumps(again) == text
