"""Camunda's forms at deployment: generated forms (camunda:formData) and Camunda Forms (form-js)
become JSON Schemas that task completion validates; HTML forms are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camunda_support import bpmn, chain, write
from engine import DefinitionError, Engine, FormError
from engine.camunda_forms import from_form_js
from helpers import complete, data, status, task_by_element

FORM_DATA = """
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_order" name="Order" camunda:candidateGroups="staff">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="customer" label="Customer" type="string">
            <camunda:validation><camunda:constraint name="required" /><camunda:constraint name="minlength" config="2" />
              <camunda:constraint name="maxlength" config="10" /></camunda:validation>
          </camunda:formField>
          <camunda:formField id="amount" label="Amount" type="long" defaultValue="5">
            <camunda:validation><camunda:constraint name="min" config="1" /><camunda:constraint name="max" config="100" /></camunda:validation>
          </camunda:formField>
          <camunda:formField id="express" label="Express?" type="boolean" defaultValue="false" />
          <camunda:formField id="due" label="Due" type="date" />
          <camunda:formField id="size" label="Size" type="enum">
            <camunda:value id="s" name="Small" /><camunda:value id="l" name="Large" />
          </camunda:formField>
          <camunda:formField id="reference" label="Reference" type="string">
            <camunda:validation><camunda:constraint name="readonly" /></camunda:validation>
          </camunda:formField>
        </camunda:formData>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_order", "EndEvent_1")


def _deploy_form_data(engine: Engine, tmp_path: Path) -> int:
    engine.deploy([write(tmp_path, "order.bpmn", bpmn("order", FORM_DATA))])
    return engine.start("order", actor="alice")


def test_form_data__becomes_a_json_schema_with_labels(engine: Engine, tmp_path: Path) -> None:
    iid = _deploy_form_data(engine, tmp_path)
    t = task_by_element(engine, iid, "Task_order")
    assert t.form_key == "camunda-formdata.order.Task_order"
    schema = engine.task_form(t.id)
    assert schema["required"] == ["customer"]
    props = schema["properties"]
    assert props["customer"] == {"title": "Customer", "type": "string", "minLength": 2, "maxLength": 10}
    assert props["amount"] == {"title": "Amount", "type": "integer", "minimum": 1, "maximum": 100, "default": 5}
    assert props["express"]["default"] is False and props["express"]["type"] == "boolean"
    assert props["size"]["oneOf"] == [{"const": "s", "title": "Small"}, {"const": "l", "title": "Large"}]
    assert props["reference"]["readOnly"] is True


@pytest.mark.parametrize(("given", "path"), [
    ({}, "$.customer"),
    ({"customer": "x"}, "$.customer"),
    ({"customer": "Acme", "amount": 0}, "$.amount"),
    ({"customer": "Acme", "amount": "lots"}, "$.amount"),
    ({"customer": "Acme", "size": "xl"}, "$.size"),
    ({"customer": "Acme", "due": "next week"}, "$.due"),
    ({"customer": "Acme", "reference": "R1"}, "$"),
])
def test_form_data__invalid_submission__is_refused_by_field(engine: Engine, tmp_path: Path, given: dict,
                                                            path: str) -> None:
    iid = _deploy_form_data(engine, tmp_path)
    t = task_by_element(engine, iid, "Task_order")
    with pytest.raises(FormError) as info:
        engine.complete(t.id, "alice", given)
    assert path in [p for p, _ in info.value.errors]
    assert status(engine, iid) == "running"


def test_form_data__valid_submission__completes(engine: Engine, tmp_path: Path) -> None:
    iid = _deploy_form_data(engine, tmp_path)
    complete(engine, iid, "Task_order", {"customer": "Acme", "amount": 7, "size": "l", "due": "2012-03-05"})
    assert status(engine, iid) == "completed"
    assert data(engine, iid)["size"] == "l"


def test_form_data__redeploying_the_same_file__is_a_no_op(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "order.bpmn", bpmn("order", FORM_DATA))
    first = engine.deploy([path])
    again = engine.deploy([path])
    assert first[0].created and not again[0].created


FORM_JS = {
    "id": "invoice_form", "type": "default", "components": [
        {"type": "text", "text": "# Invoice"},
        {"type": "textfield", "key": "creditor", "label": "Creditor", "validate": {"required": True, "minLength": 2}},
        {"type": "textfield", "key": "invoiceNumber", "label": "Invoice Number", "validate": {"pattern": "^C-[0-9]+$"}},
        {"type": "textarea", "key": "notes", "label": "Notes", "validate": {"maxLength": 20}},
        {"type": "number", "key": "amount", "label": "Amount", "validate": {"required": True, "min": 1, "max": 999}},
        {"type": "checkbox", "key": "urgent", "label": "Urgent", "defaultValue": False},
        {"type": "select", "key": "category", "label": "Category",
         "values": [{"label": "Travel", "value": "travel"}, {"label": "Office", "value": "office"}]},
        {"type": "radio", "key": "approver", "label": "Approver", "values": [{"label": "Mary", "value": "mary"}]},
        {"type": "checklist", "key": "tags", "label": "Tags", "values": [{"label": "A", "value": "a"}]},
        {"type": "datetime", "key": "invoiceDate", "label": "Invoice date", "subtype": "date"},
        {"type": "group", "label": "Contact", "components": [
            {"type": "textfield", "key": "email", "label": "E-mail", "validate": {"validationType": "email"}}]},
        {"type": "button", "action": "submit", "label": "Submit"},
    ],
}


def test_form_js__components__become_a_json_schema_with_labels() -> None:
    schema = from_form_js(FORM_JS)
    props = schema["properties"]
    assert list(props) == ["creditor", "invoiceNumber", "notes", "amount", "urgent", "category", "approver", "tags",
                           "invoiceDate", "email"]
    assert schema["required"] == ["creditor", "amount"]
    assert props["amount"] == {"title": "Amount", "type": "number", "minimum": 1, "maximum": 999}
    assert props["category"]["oneOf"][0] == {"const": "travel", "title": "Travel"}
    assert props["tags"]["type"] == "array"
    assert props["creditor"]["title"] == "Creditor"


def _form_js_process(form_attr: str) -> str:
    return bpmn("invoice", f"""
    <bpmn:startEvent id="StartEvent_1" />
    <bpmn:userTask id="Task_approve" camunda:candidateGroups="staff" {form_attr} />
    <bpmn:endEvent id="EndEvent_1" />
""" + chain("StartEvent_1", "Task_approve", "EndEvent_1"))


@pytest.mark.parametrize("form_attr", [
    'camunda:formKey="camunda-forms:deployment:invoice.form"',
    'camunda:formKey="camunda-forms:app:forms/invoice.form"',
    'camunda:formRef="invoice_form" camunda:formRefBinding="latest"',
])
def test_form_js__named_from_the_task__validates_submissions(engine: Engine, tmp_path: Path, form_attr: str) -> None:
    write(tmp_path, "invoice.form", json.dumps(FORM_JS))
    engine.deploy([write(tmp_path, "invoice.bpmn", _form_js_process(form_attr))])
    iid = engine.start("invoice", actor="alice")
    t = task_by_element(engine, iid, "Task_approve")
    with pytest.raises(FormError) as info:
        engine.complete(t.id, "alice", {"creditor": "Acme", "amount": 5000, "invoiceNumber": "X", "email": "nope"})
    assert {p for p, _ in info.value.errors} == {"$.amount", "$.invoiceNumber", "$.email"}
    complete(engine, iid, "Task_approve", {"creditor": "Acme", "amount": 50, "invoiceNumber": "C-12", "tags": ["a"]})
    assert status(engine, iid) == "completed"


def test_form_js__missing_file__is_refused_at_deployment(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as info:
        engine.deploy([write(tmp_path, "invoice.bpmn", _form_js_process('camunda:formRef="nowhere"'))])
    assert info.value.problems[0].element == "Task_approve"
    assert "names no Camunda Form" in info.value.problems[0].message


def test_form_data__unsupported_type__is_refused_naming_the_field(engine: Engine, tmp_path: Path) -> None:
    body = FORM_DATA.replace('type="boolean"', 'type="color"')
    with pytest.raises(DefinitionError, match="field 'express' has type 'color'"):
        engine.deploy([write(tmp_path, "order.bpmn", bpmn("order", body))])
