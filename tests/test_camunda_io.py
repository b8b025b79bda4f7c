"""camunda:inputOutput on activities and camunda:in/out on call activities."""

from __future__ import annotations

from pathlib import Path

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine
from helpers import assert_roundtrip, complete, data, status, task_by_element

IO_TASK = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_review" camunda:candidateGroups="staff">
      <bpmn:extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="greeting">Dear ${customer}</camunda:inputParameter>
          <camunda:inputParameter name="limit">${amount * 2}</camunda:inputParameter>
          <camunda:inputParameter name="amount">#{amount + 1}</camunda:inputParameter>
          <camunda:inputParameter name="reviewers"><camunda:list><camunda:value>ann</camunda:value><camunda:value>${customer}</camunda:value></camunda:list></camunda:inputParameter>
          <camunda:inputParameter name="address"><camunda:map><camunda:entry key="city">Taipei</camunda:entry><camunda:entry key="zip">${postcode}</camunda:entry></camunda:map></camunda:inputParameter>
          <camunda:inputParameter name="nothing" />
          <camunda:outputParameter name="verdict">${approved ? 'yes' : 'no'}</camunda:outputParameter>
          <camunda:outputParameter name="seenLimit">${limit}</camunda:outputParameter>
        </camunda:inputOutput>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_review", "EndEvent_1")


def test_input_output__locals_are_seen_by_the_task_and_vanish__outputs_reach_the_process(
        engine: Engine, tmp_path: Path) -> None:
    engine.deploy([write(tmp_path, "io_task.bpmn", bpmn("io_task", IO_TASK))])
    iid = engine.start("io_task", {"customer": "Lee", "amount": 10, "postcode": "100"}, actor="alice")
    assert_roundtrip(engine, iid)
    seen = engine.task_data(task_by_element(engine, iid, "Task_review").id)
    assert seen["greeting"] == "Dear Lee" and seen["limit"] == 20 and seen["amount"] == 11
    assert seen["reviewers"] == ["ann", "Lee"] and seen["address"] == {"city": "Taipei", "zip": "100"}
    assert seen["nothing"] is None
    complete(engine, iid, "Task_review", {"approved": True})
    assert status(engine, iid) == "completed"
    final = data(engine, iid)
    assert final["verdict"] == "yes" and final["seenLimit"] == 20
    assert final["amount"] == 10  # the local amount vanished; the process variable is back
    assert "greeting" not in final and "reviewers" not in final and final["approved"] is True


CHILD = bpmn("io_child", """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:scriptTask id="Script_1" scriptFormat="python"><bpmn:script>result = (x or 0) + 1
leaked = True</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Script_1", "EndEvent_1"))


def _parent(mappings: str) -> str:
    return bpmn("io_parent", f"""
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:callActivity id="Call_child" calledElement="io_child">
      <bpmn:extensionElements>{mappings}</bpmn:extensionElements>
    </bpmn:callActivity>
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Call_child", "EndEvent_1"))


@pytest.mark.parametrize(("mappings", "expected"), [
    ('<camunda:in source="a" target="x" /><camunda:out source="result" target="answer" />',
     {"a": 4, "secret": "s", "answer": 5}),
    ('<camunda:in sourceExpression="${a * 10}" target="x" /><camunda:out variables="all" />',
     {"a": 4, "secret": "s", "x": 40, "result": 41, "leaked": True}),
    ('<camunda:in variables="all" /><camunda:in source="a" target="x" />'
     '<camunda:out sourceExpression="#{result gt 1 ? \'big\' : \'small\'}" target="size" />',
     {"a": 4, "secret": "s", "size": "big"}),
])
def test_call_activity__in_out_mappings__choose_what_crosses(engine: Engine, tmp_path: Path, mappings: str,
                                                             expected: dict) -> None:
    write(tmp_path, "io_child.bpmn", CHILD)
    engine.deploy([write(tmp_path, "io_parent.bpmn", _parent(mappings)), tmp_path / "io_child.bpmn"])
    iid = engine.start("io_parent", {"a": 4, "secret": "s"}, actor="alice")
    assert status(engine, iid) == "completed"
    assert data(engine, iid) == expected


def test_deploy__script_parameter__is_refused_naming_the_task(engine: Engine, tmp_path: Path) -> None:
    body = IO_TASK.replace('<camunda:inputParameter name="nothing" />',
                           '<camunda:inputParameter name="g"><camunda:script scriptFormat="groovy">1</camunda:script>'
                           '</camunda:inputParameter>')
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "io_bad.bpmn", bpmn("io_bad", body))])
    assert info.value.problems[0].element == "Task_review"
    assert "script parameters are not supported" in info.value.problems[0].message


def test_deploy__bad_expression_in_a_parameter__is_refused(engine: Engine, tmp_path: Path) -> None:
    body = IO_TASK.replace("${amount * 2}", "${amount &amp;&amp;}")
    with pytest.raises(DefinitionError, match="neither valid Python nor valid JUEL"):
        engine.deploy([write(tmp_path, "io_bad2.bpmn", bpmn("io_bad2", body))])


DYNAMIC = bpmn("dyn_parent", """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:callActivity id="Call_any" calledElement="${target}" />
    <bpmn:userTask id="Task_after" camunda:candidateGroups="staff" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Call_any", "Task_after", "EndEvent_1"))
WAITING_CHILD = bpmn("dyn_wait", """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_child" camunda:candidateGroups="staff" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_child", "EndEvent_1"))


@pytest.mark.parametrize(("target", "first"), [("io_child", "Task_after"), ("dyn_wait", "Task_child")])
def test_called_element_expression__resolves_at_run_time(engine: Engine, tmp_path: Path, target: str,
                                                         first: str) -> None:
    for name, text in (("io_child.bpmn", CHILD), ("dyn_wait.bpmn", WAITING_CHILD), ("dyn_parent.bpmn", DYNAMIC)):
        write(tmp_path / "dyn", name, text)
    engine.deploy([tmp_path / "dyn"])
    iid = engine.start("dyn_parent", {"target": target, "x": 1}, actor="alice")
    assert_roundtrip(engine, iid)
    complete(engine, iid, first)  # the reload between steps finds the resolved called process
    if first == "Task_child":
        complete(engine, iid, "Task_after")
    assert status(engine, iid) == "completed"
    if target == "io_child":
        assert data(engine, iid)["result"] == 2


def test_called_element_expression__unknown_target__fails_the_step_saying_which(engine: Engine,
                                                                                tmp_path: Path) -> None:
    from engine import ScriptError

    write(tmp_path / "dyn", "dyn_parent.bpmn", DYNAMIC)
    write(tmp_path / "dyn", "dyn_wait.bpmn", WAITING_CHILD)
    engine.deploy([tmp_path / "dyn"])
    with pytest.raises(ScriptError, match="'nowhere', which is not a process deployed with this one"):
        engine.start("dyn_parent", {"target": "nowhere"}, actor="alice")


def test_call_activity__calling_itself_without_end__fails_the_start_instead_of_hanging(
        engine: Engine, tmp_path: Path) -> None:
    from engine import ScriptError

    selfcall = bpmn("self_call", """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:callActivity id="Call_self" calledElement="self_call" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Call_self", "EndEvent_1"))
    engine.deploy([write(tmp_path, "self_call.bpmn", selfcall)])
    with pytest.raises(ScriptError, match="does a process call itself"):
        engine.start("self_call", actor="alice")
    assert engine.instances(key="self_call") == []
