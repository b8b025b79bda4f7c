"""Camunda 7's semantics where ours differed: pass-through tasks, tasks nobody is named for,
inclusive flows without conditions, documentation processes, several pools, schema rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from camunda_support import bpmn, chain, write
from conftest import BPMN
from cli import main
from engine import DefinitionError, Engine, ScriptError
from helpers import assert_roundtrip, complete, open_tasks, status, task_by_element

UNNAMED = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:task id="Task_plain" name="Plain" />
    <bpmn:manualTask id="Task_manual" name="Manual" />
    <bpmn:userTask id="Task_anyone" name="Anyone" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_plain", "Task_manual", "Task_anyone", "EndEvent_1")


def test_plain_and_manual_tasks__pass_through__and_an_unnamed_task_goes_to_everyone(
        engine: Engine, tmp_path: Path) -> None:
    engine.deploy([write(tmp_path, "unnamed.bpmn", bpmn("unnamed", UNNAMED))])
    iid = engine.start("unnamed", actor="alice")
    assert_roundtrip(engine, iid)
    tasks = open_tasks(engine, iid)
    assert [t.element_id for t in tasks] == ["Task_anyone"]
    # everyone who may act: erin, whose only role is auditor, may not complete tasks
    users = sorted(u for u, p in engine.directory().users.items() if p.roles != ["auditor"])
    assert "erin" not in users and tasks[0].candidate_users == users and tasks[0].candidate_groups == []
    assert [t.id for t in engine.tasks(user="bob")] == [tasks[0].id]
    complete(engine, iid, "Task_anyone", user="bob")
    assert status(engine, iid) == "completed"
    created = [e.element_id for e in engine.history(iid) if e.type == "task_created"]
    assert created == ["Task_anyone"]


def test_unnamed_task__default_group_property__is_its_only_candidate(engine: Engine, tmp_path: Path) -> None:
    props = ('<bpmn:extensionElements><camunda:properties><camunda:property '
             'name="tigao.defaultCandidateGroup" value="manager" /></camunda:properties></bpmn:extensionElements>')
    engine.deploy([write(tmp_path, "unnamed_group.bpmn", bpmn("unnamed_group", props + UNNAMED))])
    iid = engine.start("unnamed_group", actor="alice")
    t = task_by_element(engine, iid, "Task_anyone")
    assert t.candidate_groups == ["manager"] and t.candidate_users == []


def test_unnamed_task__default_group_from_environment(engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIGAO_DEFAULT_CANDIDATE_GROUP", "staff")
    engine.deploy([write(tmp_path, "unnamed_env.bpmn", bpmn("unnamed_env", UNNAMED))])
    iid = engine.start("unnamed_env", actor="alice")
    assert task_by_element(engine, iid, "Task_anyone").candidate_groups == ["staff"]


def test_validate__unnamed_task__warns_and_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path / "d", "unnamed.bpmn", bpmn("unnamed", UNNAMED))
    db = tmp_path / "t.db"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", str(db), "init"]).exit_code == 0
    result = runner.invoke(main, ["--db", str(db), "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok  unnamed" in result.output
    assert "warning: unnamed.bpmn" in result.output and "[Task_anyone]" in result.output
    assert "every user of the directory may claim it" in result.output


INCLUSIVE = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:inclusiveGateway id="Gateway_split" />
    <bpmn:userTask id="Task_always" camunda:candidateGroups="staff" />
    <bpmn:userTask id="Task_big" camunda:candidateGroups="staff" />
    <bpmn:inclusiveGateway id="Gateway_join" />
    <bpmn:endEvent id="EndEvent_1" />
    <bpmn:sequenceFlow id="Flow_start" sourceRef="StartEvent_1" targetRef="Gateway_split" />
    <bpmn:sequenceFlow id="Flow_always" sourceRef="Gateway_split" targetRef="Task_always" />
    <bpmn:sequenceFlow id="Flow_big" sourceRef="Gateway_split" targetRef="Task_big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${amount gt 100}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
""" + chain("Task_always", "Gateway_join") + chain("Task_big", "Gateway_join") + chain("Gateway_join", "EndEvent_1")


@pytest.mark.parametrize(("amount", "expected"), [(5, ["Task_always"]), (500, ["Task_always", "Task_big"])])
def test_inclusive_gateway__flow_without_condition__is_always_taken(engine: Engine, tmp_path: Path,
                                                                    amount: int, expected: list[str]) -> None:
    engine.deploy([write(tmp_path, "incl.bpmn", bpmn("incl", INCLUSIVE))])
    iid = engine.start("incl", {"amount": amount}, actor="alice")
    assert sorted(t.element_id for t in open_tasks(engine, iid)) == expected
    for element in expected:
        complete(engine, iid, element)
    assert status(engine, iid) == "completed"


def test_not_executable_process__is_documentation__not_validated(engine: Engine, tmp_path: Path) -> None:
    # A timer nobody filled in and an unknown lane: wrong for execution, fine for documentation.
    doc = bpmn("doc_only", """
    <bpmn:laneSet id="LaneSet_1"><bpmn:lane id="Lane_x" name="Nobody"><bpmn:flowNodeRef>Catch_1</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:intermediateCatchEvent id="Catch_1"><bpmn:timerEventDefinition id="Timer_1"><bpmn:timeDate /></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
""" + chain("StartEvent_1", "Catch_1"), executable=False)
    analysis = engine.validate([write(tmp_path, "doc.bpmn", doc)])
    assert analysis.processes["doc_only"].executable is False
    assert engine.deploy([tmp_path / "doc.bpmn"]) == []


TWO_POOLS = """  <bpmn:collaboration id="Collab_1">
    <bpmn:participant id="P_a" processRef="pool_a" /><bpmn:participant id="P_b" processRef="pool_b" />
  </bpmn:collaboration>
  <bpmn:process id="pool_a" isExecutable="true">
    <bpmn:startEvent id="Start_a" /><bpmn:userTask id="Task_a" camunda:formKey="ack" camunda:candidateGroups="staff" /><bpmn:endEvent id="End_a" />
    <bpmn:sequenceFlow id="Flow_a1" sourceRef="Start_a" targetRef="Task_a" /><bpmn:sequenceFlow id="Flow_a2" sourceRef="Task_a" targetRef="End_a" />
  </bpmn:process>
  <bpmn:process id="pool_b" isExecutable="true">
    <bpmn:startEvent id="Start_b" /><bpmn:userTask id="Task_b" camunda:formKey="amount" camunda:candidateGroups="staff" /><bpmn:endEvent id="End_b" />
    <bpmn:sequenceFlow id="Flow_b1" sourceRef="Start_b" targetRef="Task_b" /><bpmn:sequenceFlow id="Flow_b2" sourceRef="Task_b" targetRef="End_b" />
  </bpmn:process>
"""


def test_several_executable_pools__each_deploys_with_every_form__and_starts(engine: Engine, tmp_path: Path) -> None:
    from camunda_support import HEAD

    path = write(tmp_path, "pools.bpmn", HEAD.format(key="pools") + TWO_POOLS + "</bpmn:definitions>\n")
    forms = Path(__file__).parent / "bpmn" / "forms"
    deployed = {r.key for r in engine.deploy([path, forms / "ack.json", forms / "amount.json"])}
    assert deployed == {"pool_a", "pool_b"}
    for key, element, given in (("pool_a", "Task_a", {"ok": True}), ("pool_b", "Task_b", {"amount": 3})):
        iid = engine.start(key, actor="alice")
        complete(engine, iid, element, given)
        assert status(engine, iid) == "completed"


@pytest.mark.parametrize(("body", "element", "why"), [
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:userTask id="Task_1" camunda:candidateGroups="staff" />'
     '<bpmn:sequenceFlow sourceRef="StartEvent_1" targetRef="Task_1" />', "StartEvent_1", "has no id"),
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:intermediateCatchEvent id="Catch_1">'
     '<bpmn:messageEventDefinition id="Med_1" /></bpmn:intermediateCatchEvent>'
     '<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Catch_1" />', "Catch_1", "no messageRef"),
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:intermediateCatchEvent id="Catch_1">'
     '<bpmn:messageEventDefinition id="Med_1" messageRef="Nope" /></bpmn:intermediateCatchEvent>'
     '<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Catch_1" />', "Catch_1", "'Nope', which is not"),
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:receiveTask id="Receive_1" />'
     '<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Receive_1" />', "Receive_1", "no messageRef"),
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:receiveTask id="Receive_1" messageRef="Nope" />'
     '<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Receive_1" />', "Receive_1",
     "receive task names message 'Nope', which is not"),
    ('<bpmn:startEvent id="StartEvent_1" /><bpmn:userTask id="Task_1" camunda:formKey="embedded:app:forms/x.html" />'
     '<bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_1" />', "Task_1", "names an HTML form"),
])
def test_deploy__what_camunda_requires__is_refused_by_element(engine: Engine, tmp_path: Path, body: str,
                                                              element: str, why: str) -> None:
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "bad.bpmn", bpmn("bad_schema", body))])
    assert any(p.element == element and why in p.message for p in info.value.problems), info.value.problems
    assert "bad_schema" not in {d["key"] for d in engine.definitions()}


MESSAGES = '<bpmn:message id="Msg_done" name="done" /><bpmn:message id="Msg_ping" name="ping" />\n'
THROW_RECEIVE = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:intermediateThrowEvent id="Throw_1"><bpmn:messageEventDefinition id="Med_1" messageRef="Msg_ping" /></bpmn:intermediateThrowEvent>
    <bpmn:sendTask id="Send_1" messageRef="Msg_ping" />
    <bpmn:receiveTask id="Receive_1" messageRef="Msg_done" />
    <bpmn:endEvent id="EndEvent_1"><bpmn:messageEventDefinition id="Med_2" messageRef="Msg_ping" /></bpmn:endEvent>
""" + chain("StartEvent_1", "Throw_1", "Send_1", "Receive_1", "EndEvent_1")


def test_receive_task__waits__and_message_delivers_to_it__throws_without_payload_pass(
        engine: Engine, tmp_path: Path) -> None:
    engine.deploy([write(tmp_path, "receive.bpmn", bpmn("receive", THROW_RECEIVE, extra=MESSAGES))])
    iid = engine.start("receive", actor="alice")
    assert_roundtrip(engine, iid)  # the thrown messages serialise with the state
    assert [w["element"] for w in engine.instance(iid)["waiting"]] == ["Receive_1"]
    assert engine.message("done", {"reply": "yes"}, actor="alice") == {"delivered_to": iid}
    assert_roundtrip(engine, iid)
    assert status(engine, iid) == "completed"
    assert engine.instance(iid)["data"]["reply"] == "yes"
    assert [e.type for e in engine.history(iid)][-2:] == ["message_received", "instance_completed"]


def test_receive_task__in_a_diagram_without_message_events__can_be_delivered_to(engine: Engine) -> None:
    """A diagram whose only message waits are receive tasks (one multi-instance) gets subscriptions."""
    engine.deploy([BPMN / "corpus" / "receive_only.bpmn"])
    iid = engine.start("receive_only", actor="alice")
    assert [w["element"] for w in engine.instance(iid)["waiting"]] == ["Receive_paid"]
    assert engine.message("paid", {"amount": 12}, actor="alice") == {"delivered_to": iid}
    assert_roundtrip(engine, iid)
    assert [w["element"] for w in engine.instance(iid)["waiting"]] == ["Receive_signed"] * 3
    assert engine.message("signed", {}, actor="alice", instance_id=iid) == {"delivered_to": iid}
    assert status(engine, iid) == "completed"
    assert engine.instance(iid)["data"]["amount"] == 12


@pytest.mark.parametrize(("amount", "size"), [(20, "big"), (5, "small")])
def test_exclusive_gateway__flow_without_condition__is_taken_when_no_earlier_flow_is(engine: Engine, amount: int,
                                                                                     size: str) -> None:
    """Camunda reads a missing condition as true: the first true flow in the file's order wins."""
    engine.deploy([BPMN / "corpus" / "exclusive_unconditioned.bpmn"])
    iid = engine.start("exclusive_unconditioned", {"amount": amount}, actor="alice")
    assert status(engine, iid) == "completed"
    assert engine.instance(iid)["data"]["size"] == size


@pytest.mark.parametrize(("data", "says"), [({}, "is not set"), ({"names": 5}, "holds a value of type int"),
                                            ({"names": None}, "is not set")])
def test_multi_instance__collection_not_a_list__is_refused_naming_it(engine: Engine, data: dict, says: str) -> None:
    engine.deploy([BPMN / "corpus" / "mi_collection.bpmn"])
    with pytest.raises(ScriptError) as err:
        engine.start("mi_collection", data, actor="alice")
    assert f"the collection 'names' of multi-instance Script_greet {says}" in str(err.value)
    assert engine.instances() == []  # nothing stored
    iid = engine.start("mi_collection", {"names": ["alice", "bob"]}, actor="alice")
    assert sorted(t.assignee for t in open_tasks(engine, iid)) == ["alice", "bob"]
