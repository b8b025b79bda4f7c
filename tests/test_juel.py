"""JUEL as Camunda Modeler users write it: translated to Python, checked at deployment, run."""

from __future__ import annotations

from pathlib import Path

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine
from engine.juel import JuelError, expression_source
from helpers import complete, data, status, task_by_element


@pytest.mark.parametrize(("text", "python"), [
    ("${!isHoliday}", "(not isHoliday)"),
    ("#{!approved}", "(not approved)"),
    ("${a && b || !c}", "((a and b) or (not c))"),
    ("${amount gt 1000 and region eq 'north'}", "((amount > 1000) and (region == 'north'))"),
    ("${x ne 1 or y lt 2}", "((x != 1) or (y < 2))"),
    ("${x le 1 && y ge 2}", "((x <= 1) and (y >= 2))"),
    ("${a ? 'yes' : b.c}", "('yes' if a else b['c'])"),
    ("${order.amount > 10}", "order['amount'] > 10"),       # valid Python: property access refined
    ("${order['amount'] ge 10}", "(order['amount'] >= 10)"),
    ("${x div 2 mod 3}", "((x / 2) % 3)"),
    ("${amount > 100}", "amount > 100"),                    # valid Python keeps its meaning
    ("${name.upper() == 'A'}", "name.upper() == 'A'"),      # a method call stays Python
    ("amount > 100", "amount > 100"),                       # a bare condition is Python
    ("#{approved == true}", "(approved == True)"),
    ("${x == null ? 1 : 2}", "(1 if (x == None) else 2)"),
    ("#{\"it's\" != 'a\\'b'}", "(\"it's\" != \"a'b\")"),
])
def test_translate__camunda_modeler_juel__is_python(text: str, python: str) -> None:
    assert expression_source(text) == python


def test_translate__empty__is_true_for_null_empty_string_list_and_map() -> None:
    source = expression_source("${empty v}")
    for value, expected in ((None, True), ("", True), ([], True), ({}, True), ("x", False), (0, False),
                            ([1], False), (False, False)):
        assert eval(source, {"v": value}) is expected, value  # noqa: S307 - our own translation
    assert eval(expression_source("${not empty v}"), {"v": "x"}) is True  # noqa: S307


def test_translate__precedence_follows_juel() -> None:
    env = {"a": True, "b": False, "c": False, "x": 3}
    assert eval(expression_source("#{a || b && c}"), env) is True  # noqa: S307 - && binds tighter
    assert eval(expression_source("#{!b && x + 1 * 2 eq 5}"), env) is True  # noqa: S307
    assert eval(expression_source("#{-x lt 0 ? 'neg' : 'pos'}"), env) == "neg"  # noqa: S307


@pytest.mark.parametrize(("text", "why"), [
    ("${a eq}", "ends too early"),
    ("${a $ b}", "unexpected character '\\$'"),
    ("#{a ? b}", "ends too early"),
    ("#{class}", "reserved word"),
])
def test_translate__neither_python_nor_juel__says_where(text: str, why: str) -> None:
    with pytest.raises(JuelError, match=why):
        expression_source(text)


GATEWAY = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_enter" camunda:candidateGroups="staff" />
    <bpmn:exclusiveGateway id="Gateway_1" default="Flow_other" />
    <bpmn:userTask id="Task_holiday" camunda:candidateGroups="staff" />
    <bpmn:userTask id="Task_north" camunda:assignee="${region eq 'north' ? 'alice' : 'bob'}" />
    <bpmn:userTask id="Task_other" camunda:candidateGroups="staff" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_enter", "Gateway_1") + """
    <bpmn:sequenceFlow id="Flow_holiday" sourceRef="Gateway_1" targetRef="Task_holiday">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${isHoliday &amp;&amp; !empty region}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_north" sourceRef="Gateway_1" targetRef="Task_north">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">#{!isHoliday and order.amount gt 1000}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_other" sourceRef="Gateway_1" targetRef="Task_other" />
""" + chain("Task_holiday", "EndEvent_1") + chain("Task_north", "EndEvent_1")[0:0] + """
    <bpmn:sequenceFlow id="Flow_north_end" sourceRef="Task_north" targetRef="EndEvent_1" />
    <bpmn:sequenceFlow id="Flow_other_end" sourceRef="Task_other" targetRef="EndEvent_1" />
"""


@pytest.mark.parametrize(("given", "element"), [
    ({"isHoliday": True, "region": "north", "order": {"amount": 5}}, "Task_holiday"),
    ({"isHoliday": False, "region": "north", "order": {"amount": 5000}}, "Task_north"),
    ({"isHoliday": True, "region": "", "order": {"amount": 5000}}, "Task_other"),
])
def test_gateway__juel_conditions__choose_the_flow(engine: Engine, tmp_path: Path, given: dict, element: str) -> None:
    engine.deploy([write(tmp_path, "juel_gateway.bpmn", bpmn("juel_gateway", GATEWAY))])
    iid = engine.start("juel_gateway", actor="alice")
    complete(engine, iid, "Task_enter", given)
    t = task_by_element(engine, iid, element)
    if element == "Task_north":
        assert t.assignee == "alice"  # the ternary in camunda:assignee
    complete(engine, iid, element)
    assert status(engine, iid) == "completed"
    assert data(engine, iid)["region"] == given["region"]


def test_deploy__invalid_juel__is_refused_naming_the_flow(engine: Engine, tmp_path: Path) -> None:
    body = GATEWAY.replace("${isHoliday &amp;&amp; !empty region}", "${isHoliday &amp;&amp; }")
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "bad_juel.bpmn", bpmn("bad_juel", body))])
    problem = info.value.problems[0]
    assert problem.element == "Flow_holiday"
    assert "neither valid Python nor valid JUEL" in problem.message
    assert "bad_juel" not in {d["key"] for d in engine.definitions()}


def test_deploy__juel_calling_a_forbidden_function__is_refused(engine: Engine, tmp_path: Path) -> None:
    # JUEL reaches only data and the helpers: the translation goes through the script engine's check.
    body = GATEWAY.replace("${isHoliday &amp;&amp; !empty region}", "#{getattr(order, 'x') &amp;&amp; x}")
    with pytest.raises(DefinitionError, match="'getattr' is not allowed"):
        engine.deploy([write(tmp_path, "bad_juel2.bpmn", bpmn("bad_juel2", body))])


def test_property_access__is_a_key_lookup_never_an_attribute() -> None:
    assert expression_source("#{order.__class__}") == "order['__class__']"
