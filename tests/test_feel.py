"""FEEL unary tests in DMN input entries: translated for SpiffWorkflow's DMN engine and run."""

from __future__ import annotations

from pathlib import Path

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine
from engine.feel import unary_to_python
from helpers import data, status


@pytest.mark.parametrize(("feel", "python"), [
    ("[250..1000]", "(250 <= ? <= 1000)"),
    ("(1..5)", "(1 < ? < 5)"),
    ("]1..5[", "(1 < ? < 5)"),
    ("[1..5)", "(1 <= ? < 5)"),
    ("< 3", "(? < 3)"),
    (">= limit", "(? >= limit)"),
    ('"a","b"', "((? == 'a') or (? == 'b'))"),
    ('not("a", "b")', "(not ((? == 'a') or (? == 'b')))"),
    ('date("2012-01-01")', "(? == '2012-01-01')"),
    ('< date and time("2012-01-01T00:00:00")', "(? < '2012-01-01T00:00:00')"),
    ("1, [5..9]", "((? == 1) or (5 <= ? <= 9))"),
    ("true", "(? == True)"),
    ("null", "(? == None)"),
    ('"say \\"hi\\""', "(? == 'say \"hi\"')"),  # an escaped quote keeps the character after it
    ("-", None),
    ("60 <= ? < 90", None),  # not FEEL: SpiffWorkflow's own syntax keeps its meaning
])
def test_unary_to_python__feel__is_a_python_test(feel: str, python: str | None) -> None:
    assert unary_to_python(feel) == python


DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="Definitions_approval" name="Approval"
  namespace="http://camunda.org/schema/1.0/dmn" exporter="Camunda Modeler" exporterVersion="5.20.0">
  <decision id="approval" name="Approval">
    <decisionTable id="Table_approval" hitPolicy="FIRST">
      <input id="Input_amount" label="Amount"><inputExpression id="Expr_amount" typeRef="integer"><text>amount</text></inputExpression></input>
      <input id="Input_category" label="Category"><inputExpression id="Expr_category" typeRef="string"><text>category</text></inputExpression></input>
      <input id="Input_date" label="Date"><inputExpression id="Expr_date" typeRef="date"><text>invoiceDate</text></inputExpression></input>
      <output id="Output_approver" label="Approver" name="approver" typeRef="string" />
      <rule id="Rule_1"><inputEntry id="E11"><text>&lt; 250</text></inputEntry><inputEntry id="E12"><text>-</text></inputEntry>
        <inputEntry id="E13"><text></text></inputEntry><outputEntry id="O1"><text>"clerk"</text></outputEntry></rule>
      <rule id="Rule_2"><inputEntry id="E21"><text>[250..1000]</text></inputEntry><inputEntry id="E22"><text>not("travel")</text></inputEntry>
        <inputEntry id="E23"><text>-</text></inputEntry><outputEntry id="O2"><text>"manager"</text></outputEntry></rule>
      <rule id="Rule_3"><inputEntry id="E31"><text>]250..1000]</text></inputEntry><inputEntry id="E32"><text>"travel","misc"</text></inputEntry>
        <inputEntry id="E33"><text>&gt;= date("2012-06-01")</text></inputEntry><outputEntry id="O3"><text>"travel office"</text></outputEntry></rule>
      <rule id="Rule_4"><inputEntry id="E41"><text>-</text></inputEntry><inputEntry id="E42"><text>-</text></inputEntry>
        <inputEntry id="E43"><text>-</text></inputEntry><outputEntry id="O4"><text>"director"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""
PROCESS = bpmn("approval_rule", """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:businessRuleTask id="Rule_approval" camunda:decisionRef="approval" />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Rule_approval", "EndEvent_1"))


@pytest.mark.parametrize(("given", "approver"), [
    ({"amount": 100, "category": "travel", "invoiceDate": "2012-01-01"}, "clerk"),
    ({"amount": 250, "category": "office", "invoiceDate": "2012-01-01"}, "manager"),
    ({"amount": 1000, "category": "travel", "invoiceDate": "2012-07-01"}, "travel office"),
    ({"amount": 1000, "category": "travel", "invoiceDate": "2012-01-01"}, "director"),
    ({"amount": 5000, "category": "office", "invoiceDate": "2012-01-01"}, "director"),
])
def test_decision__feel_input_entries__choose_the_rule(engine: Engine, tmp_path: Path, given: dict,
                                                       approver: str) -> None:
    write(tmp_path, "approval.dmn", DMN)
    engine.deploy([write(tmp_path, "approval_rule.bpmn", PROCESS), tmp_path / "approval.dmn"])
    iid = engine.start("approval_rule", given, actor="alice")
    assert status(engine, iid) == "completed"
    assert data(engine, iid)["approver"] == approver


def test_deploy__feel_entry_naming_a_forbidden_name__is_refused(engine: Engine, tmp_path: Path) -> None:
    write(tmp_path, "approval.dmn", DMN.replace("&lt; 250", "&lt; __import__"))
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "approval_rule.bpmn", PROCESS), tmp_path / "approval.dmn"])
    assert info.value.problems[0].element == "E11"
