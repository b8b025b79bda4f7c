"""Differences between two versions of a process, and their highlight on the newer diagram."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engine.errors import DefinitionError, InputError
from web.bpmn_diff import Change, diff_bpmn, diff_files
from web.diagram import render_svg

ROOT = Path(__file__).resolve().parent.parent
COMPLAINT = (ROOT / "processes" / "complaint.bpmn").read_text(encoding="utf-8")
PHASE2 = (ROOT / "processes" / "phase2_implement.bpmn").read_text(encoding="utf-8")


def _edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _changes(diff, el_id: str) -> dict[str, Change]:
    element = next(e for e in diff.changed if e.id == el_id)
    return {c.attribute: c for c in element.changes}


def test_diff__same_file__is_empty() -> None:
    diff = diff_bpmn(COMPLAINT, COMPLAINT)
    assert diff.is_empty and not diff.moved and diff.highlight() == {}


def test_diff__task_attributes__each_change_named_with_old_and_new() -> None:
    newer = _edit(COMPLAINT,
                  (('name="受理登記投訴(首問負責)" camunda:formKey="complaint_register" '
                    'camunda:candidateGroups="efficiency_office" camunda:dueDate="P1D"'),
                   ('name="受理並登記投訴" camunda:formKey="complaint_register_v2" '
                    'camunda:candidateGroups="efficiency_office,leaders" camunda:dueDate="P2D" '
                    'camunda:assignee="${registrar}"')),
                  ('<bpmn:script>channel = "public_supervision"</bpmn:script>',
                   '<bpmn:script>channel = "hotline"</bpmn:script>'))
    diff = diff_bpmn(COMPLAINT, newer, process_id="complaint")
    register = _changes(diff, "Task_register_complaint")
    assert register["name"] == Change("name", "受理登記投訴(首問負責)", "受理並登記投訴")
    assert register["formKey"].new == "complaint_register_v2"
    assert register["candidateGroups"] == Change("candidateGroups", "efficiency_office", "efficiency_office,leaders")
    assert register["dueDate"] == Change("dueDate", "P1D", "P2D")
    assert register["assignee"] == Change("assignee", None, "${registrar}")
    assert _changes(diff, "Script_complaint_channel")["script"].new == 'channel = "hotline"'
    assert not diff.added and not diff.removed
    assert diff.highlight() == {"Task_register_complaint": "changed", "Script_complaint_channel": "changed"}


def test_diff__conditions_timers_loops_and_lanes() -> None:
    newer = _edit(PHASE2,
                  ("found_problem == True</bpmn:conditionExpression>", "found_problem</bpmn:conditionExpression>"),
                  ("${inspection_dates[inspections_done]}</bpmn:timeDate>", "P90D</bpmn:timeDuration>"),
                  ('<bpmn:timeDate xsi:type="bpmn:tFormalExpression">P90D', '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P90D'),
                  ('<bpmn:multiInstanceLoopCharacteristics camunda:collection="all_staff" camunda:elementVariable="member" />\n    </bpmn:userTask>',
                   '<bpmn:multiInstanceLoopCharacteristics isSequential="true" camunda:collection="all_staff" camunda:elementVariable="member" />\n    </bpmn:userTask>'),
                  ('<bpmn:flowNodeRef>Task_bulletin</bpmn:flowNodeRef>', ''),
                  ('<bpmn:flowNodeRef>Task_research_article</bpmn:flowNodeRef>',
                   '<bpmn:flowNodeRef>Task_research_article</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_bulletin</bpmn:flowNodeRef>'))
    diff = diff_bpmn(PHASE2, newer)
    assert _changes(diff, "Flow_self_problem")["condition"] == Change("condition", "found_problem == True", "found_problem")
    timer = _changes(diff, "Timer_quarterly_inspection")["timer"]
    assert timer.old == "timeDate ${inspection_dates[inspections_done]}" and timer.new == "timeDuration P90D"
    assert _changes(diff, "Task_research_article")["multiInstance"] == Change("multiInstance", "parallel", "sequential")
    assert _changes(diff, "Task_bulletin")["lane"] == Change("lane", "效能辦", "幹部職工")


def test_diff__added_removed_and_moved__highlight_on_the_newer_diagram() -> None:
    newer = _edit(COMPLAINT,
                  ('<bpmn:endEvent id="EndEvent_complaint" name="投訴辦結">',
                   '<bpmn:manualTask id="Task_archive" name="歸檔" />\n    <bpmn:endEvent id="EndEvent_complaint" name="投訴辦結">'),
                  ('<dc:Bounds x="270" y="132" width="36" height="36" />', '<dc:Bounds x="250" y="132" width="36" height="36" />'),
                  ('<bpmn:scriptTask id="Script_complaint_channel"', '<bpmn:serviceTask id="Script_complaint_channel"'),
                  ('</bpmn:scriptTask>', '</bpmn:serviceTask>'))
    newer = newer.replace('<bpmndi:BPMNShape id="Task_notify_complainant_di"',
                          '<bpmndi:BPMNShape id="Task_archive_di" bpmnElement="Task_archive"><dc:Bounds x="700" y="250" '
                          'width="100" height="80" /></bpmndi:BPMNShape>\n      <bpmndi:BPMNShape id="Task_notify_complainant_di"')
    older = _edit(COMPLAINT, ('<bpmn:endEvent id="EndEvent_complaint" name="投訴辦結">',
                              ('<bpmn:textAnnotation id="Note_old"><bpmn:text>old</bpmn:text></bpmn:textAnnotation>'
                               '<bpmn:endEvent id="EndEvent_complaint" name="投訴辦結">')))
    diff = diff_bpmn(older, newer, process_id="complaint")
    assert [(e.id, e.type, e.name) for e in diff.added] == [("Task_archive", "manualTask", "歸檔")]
    assert [e.id for e in diff.removed] == ["Note_old"]
    assert _changes(diff, "Script_complaint_channel")["type"] == Change("type", "scriptTask", "serviceTask")
    assert diff.moved == ["StartEvent_complaint"]
    svg = etree.fromstring(render_svg(newer, highlight=diff.highlight()).encode())
    lit = {g.get("data-element-id"): g.get("class") for g in svg.iter("{http://www.w3.org/2000/svg}g")
           if "highlight" in (g.get("class") or "")}
    assert lit == {"Task_archive": "highlight highlight-added",
                   "Script_complaint_channel": "highlight highlight-changed"}
    assert diff.to_dict()["added"][0]["id"] == "Task_archive"


def test_diff__extension_elements_and_event_references() -> None:
    newer = _edit(COMPLAINT, ('<camunda:in variables="all" />', '<camunda:in source="case" target="case" />'),
                  ('<bpmn:message id="Message_complaint_received" name="complaint_received" />',
                   '<bpmn:message id="Message_complaint_received" name="hotline_call" />'))
    diff = diff_bpmn(COMPLAINT, newer, process_id="complaint")
    call = _changes(diff, "CallActivity_complaint_rectification")
    assert call["in:all"].new is None and call["in:case"].new == "source=case target=case"
    assert _changes(diff, "StartEvent_complaint")["message"] == Change("message", "complaint_received", "hotline_call")


def test_diff_files__bundle_versions__forms_and_new_process() -> None:
    old = {"complaint.bpmn": COMPLAINT, "forms/complaint_register.json": "{}", "forms/gone.json": "{}"}
    new = {"complaint.bpmn": _edit(COMPLAINT, ('name="投訴辦結"', 'name="結案"')),
           "forms/complaint_register.json": '{"type": "object"}', "forms/new.json": "{}"}
    diff = diff_files(old, new, "complaint")
    assert [e.id for e in diff.changed] == ["EndEvent_complaint"]
    assert diff.files == {"forms/complaint_register.json": "changed", "forms/gone.json": "removed",
                          "forms/new.json": "added"}
    fresh = diff_files({"other.bpmn": PHASE2}, new, "complaint")
    assert "Task_register_complaint" in {e.id for e in fresh.added} and not fresh.changed


def test_diff__bad_input__clear_errors() -> None:
    with pytest.raises(InputError, match="no process 'nope'"):
        diff_bpmn(COMPLAINT, COMPLAINT, process_id="nope")
    with pytest.raises(InputError, match="no BPMN file defining process 'nope'"):
        diff_files({"a.bpmn": COMPLAINT}, {"a.bpmn": COMPLAINT}, "nope")
    with pytest.raises(DefinitionError, match="DOCTYPE"):
        diff_bpmn(COMPLAINT, (ROOT / "tests" / "bpmn" / "bad" / "xxe.bpmn").read_text(encoding="utf-8"))
