"""Checks of the campaign's deployable files themselves (processes/, forms/), without the engine.

The BPMN and DMN files must be well-formed, schema-valid and parse with SpiffWorkflow's
CamundaParser; every form key must have a valid JSON Schema; lanes must name roles of the
sample organisation; the diagrams must carry complete BPMN DI; user tasks must say who, how
(form) and by when (due date); the decision tables must give the documented answers.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.camunda.parser import CamundaParser

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"
BPMN_FILES = sorted(PROCESSES.glob("*.bpmn"))
DMN_FILES = sorted(PROCESSES.glob("*.dmn"))

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"

EXPECTED_PROCESSES = {
    "campaign", "phase1_mobilize", "phase2_implement", "phase3_evaluate", "spot_check",
    "after_check", "complaint", "rectification", "self_rectification",
}
EXPECTED_DECISIONS = {"routing", "disposition"}
# Functions the engine provides to scripts and expressions (docs/CONVENTIONS.md). SpiffWorkflow
# refuses task data that shadows one of them, so no variable may take these names.
HELPERS = {"now", "departments", "department_head", "staff", "role_members",
           "user_department", "add_duration"}
FLOW_NODES = (
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "scriptTask", "serviceTask", "businessRuleTask", "manualTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway",
)
ISO_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")
ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?)?")
EXPRESSION = re.compile(r"\$\{(.*)\}", re.S)


def parse_xml(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(path), parser)


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


@pytest.fixture(scope="module")
def trees() -> dict[str, etree._ElementTree]:
    return {path.name: parse_xml(path) for path in BPMN_FILES}


@pytest.fixture(scope="module")
def org() -> dict:
    with open(PROCESSES / "org.toml", "rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def parser() -> CamundaParser:
    parser = CamundaParser(validator=BpmnValidator())  # validates BPMN and DMN against the XSDs
    parser.add_bpmn_files([str(p) for p in BPMN_FILES])
    parser.add_dmn_files([str(p) for p in DMN_FILES])
    return parser


def all_elements(trees: dict[str, etree._ElementTree], tag: str) -> list[tuple[str, etree._Element]]:
    return [(name, el) for name, tree in trees.items()
            for el in tree.iterfind(f".//bpmn:{tag}", namespaces=NS)]


def flow_nodes(tree: etree._ElementTree) -> list[etree._Element]:
    return [el for tag in FLOW_NODES for el in tree.iterfind(f".//bpmn:{tag}", namespaces=NS)]


# --- XML and parsing -----------------------------------------------------------------------

@pytest.mark.parametrize("path", BPMN_FILES + DMN_FILES, ids=lambda p: p.name)
def test_file__is_well_formed_without_doctype(path: Path) -> None:
    tree = parse_xml(path)
    assert tree.docinfo.doctype == ""
    assert tree.docinfo.encoding.upper() == "UTF-8"


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_bpmn__is_written_like_camunda_modeler(path: Path) -> None:
    root = parse_xml(path).getroot()
    assert root.get("exporter") == "Camunda Modeler"
    assert root.get("exporterVersion", "").startswith("5.")
    assert len(root.findall("bpmn:process", NS)) == 1


def test_parser__finds_every_process_and_builds_its_spec(parser: CamundaParser) -> None:
    assert set(parser.get_process_ids()) == EXPECTED_PROCESSES
    for process_id in EXPECTED_PROCESSES:
        spec = parser.get_spec(process_id)
        assert spec.name == process_id
        parser.get_subprocess_specs(process_id)  # every called process resolves


def test_dmn__decision_ids(parser: CamundaParser) -> None:
    assert set(parser.dmn_parsers) == EXPECTED_DECISIONS


def test_references__called_elements_and_decisions_exist(trees) -> None:
    for name, call in all_elements(trees, "callActivity"):
        assert call.get("calledElement") in EXPECTED_PROCESSES, (name, call.get("id"))
    for name, rule in all_elements(trees, "businessRuleTask"):
        assert rule.get(f"{CAMUNDA}decisionRef") in EXPECTED_DECISIONS, (name, rule.get("id"))


def test_messages__complaint_start_event(trees) -> None:
    start = trees["complaint.bpmn"].find(".//bpmn:startEvent/bpmn:messageEventDefinition", NS)
    message_id = start.get("messageRef")
    message = trees["complaint.bpmn"].find(f".//bpmn:message[@id='{message_id}']", NS)
    assert message.get("name") == "complaint_received"


# --- forms --------------------------------------------------------------------------------

def form_keys(trees) -> set[str]:
    """Task forms (camunda:formKey) and public start forms (the tigao.publicForm property)."""
    keys = {el.get(f"{CAMUNDA}formKey") for _, tree in trees.items() for el in tree.iter()
            if isinstance(el.tag, str) and el.get(f"{CAMUNDA}formKey")}
    keys |= {el.get("value") for _, tree in trees.items() for el in tree.iter(f"{CAMUNDA}property")
             if el.get("name") == "tigao.publicForm"}
    return keys


def test_forms__every_form_key_has_a_valid_json_schema(trees) -> None:
    for key in sorted(form_keys(trees)):
        path = FORMS / f"{key}.json"
        assert path.is_file(), f"no schema for form key {key!r}"
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"
        assert schema["title"] and schema["description"]
        assert set(schema.get("required", [])) <= set(schema["properties"]), key
        for field, definition in schema["properties"].items():
            assert definition.get("title") and definition.get("description"), (key, field)
            assert field not in HELPERS, (key, field)


def test_forms__every_schema_is_used(trees) -> None:
    assert {p.stem for p in FORMS.glob("*.json")} == form_keys(trees)


# The fields that decide a gateway must be required by the form of the task before it.
@pytest.mark.parametrize("key, field", [
    ("plan_approval", "approved"), ("bulletin", "more_bulletins"), ("self_check", "found_problem"),
    ("quarterly_inspection", "findings"), ("investigation", "confirmed"), ("verification", "verified"),
    ("spot_check_record", "problem_found"), ("after_check_record", "problem_found"),
    ("department_evaluation", "score"),
])
def test_forms__gateway_fields_are_required(key: str, field: str) -> None:
    schema = json.loads((FORMS / f"{key}.json").read_text(encoding="utf-8"))
    assert field in schema["required"]


def test_forms__finding_requires_what_rectification_reads() -> None:
    validator = Draft202012Validator(json.loads((FORMS / "spot_check_record.json").read_text(encoding="utf-8")))
    assert not validator.is_valid({"checked_department": "finance", "problem_found": True})
    assert validator.is_valid({"checked_department": "finance", "problem_found": False})
    assert validator.is_valid({
        "checked_department": "finance", "problem_found": True, "category": 5, "severity": "serious",
        "repeated": False, "department": "finance", "person": "", "description": "亂收費",
    })
    assert not validator.is_valid({"checked_department": "finance", "problem_found": False, "approved": True})


# --- people -------------------------------------------------------------------------------

def test_org__directory_is_consistent(org) -> None:
    roles, departments, users = org["roles"], org["departments"], org["users"]
    assert len(users) >= 50
    for department_id, department in departments.items():
        assert department["name"]
        assert department["head"] in users, department_id
        assert users[department["head"]]["department"] == department_id
        assert "department_head" in users[department["head"]]["roles"]
        if "parent" in department:
            assert department["parent"] in departments, department_id
    for user_id, user in users.items():
        assert set(user["roles"]) <= set(roles), user_id
        if user["roles"] == ["auditor"]:  # the outside auditor: in no department, acts on nothing
            assert "department" not in user, user_id
            continue
        assert user["name"] and user["department"] in departments, user_id
        assert "staff" in user["roles"], user_id
    assert any("admin" in u["roles"] for u in users.values())
    for role in ("party_committee", "leadership_group", "efficiency_office", "department_head",
                 "discipline_inspection", "evaluation_group"):
        assert any(role in u["roles"] for u in users.values()), role


def test_lanes__name_a_role(trees, org) -> None:
    known = set(org["roles"]) | {role["name"] for role in org["roles"].values()}
    for name, lane in all_elements(trees, "lane"):
        assert lane.get("name") in known, (name, lane.get("id"), lane.get("name"))


def test_lanes__hold_every_flow_node_once(trees) -> None:
    for name, tree in trees.items():
        refs = [r.text for r in tree.iterfind(".//bpmn:lane/bpmn:flowNodeRef", namespaces=NS)]
        assert len(refs) == len(set(refs)), name
        assert set(refs) == {node.get("id") for node in flow_nodes(tree)}, name


def lane_of(tree: etree._ElementTree, element: etree._Element) -> str | None:
    """The lane of a node, or of the embedded sub-process around it."""
    lanes = {r.text: r.getparent().get("name")
             for r in tree.iterfind(".//bpmn:lane/bpmn:flowNodeRef", namespaces=NS)}
    while element is not None:
        if element.get("id") in lanes:
            return lanes[element.get("id")]
        element = element.getparent()
    return None


def test_user_tasks__have_lane_form_and_due_date(trees) -> None:
    for name, tree in trees.items():
        for task in tree.iterfind(".//bpmn:userTask", namespaces=NS):
            where = (name, task.get("id"))
            assert lane_of(tree, task), where
            assert task.get(f"{CAMUNDA}formKey"), where
            due = task.get(f"{CAMUNDA}dueDate")
            assert due, where
            assert EXPRESSION.fullmatch(due) or ISO_DURATION.fullmatch(due) or ISO_DATE_TIME.fullmatch(due), where


def test_user_tasks__literal_dates_fall_in_the_campaign_year(trees) -> None:
    for name, task in all_elements(trees, "userTask"):
        due = task.get(f"{CAMUNDA}dueDate")
        if ISO_DATE_TIME.fullmatch(due):
            assert due.startswith("2012-") and due.endswith("+08:00"), (name, task.get("id"), due)


# --- scripts and expressions ---------------------------------------------------------------

def python_sources(trees) -> list[tuple[str, str, str]]:
    """(file, element id, Python source) of every script, condition and ${...} expression."""
    sources = []
    for name, tree in trees.items():
        for script in tree.iterfind(".//bpmn:script", namespaces=NS):
            sources.append((name, script.getparent().get("id"), script.text))
        for condition in tree.iterfind(".//bpmn:conditionExpression", namespaces=NS):
            sources.append((name, condition.getparent().get("id"), condition.text))
        for element in tree.iter():
            if not isinstance(element.tag, str):
                continue
            values = list(element.attrib.values())
            if local(element) in ("timeDate", "timeDuration", "timeCycle"):
                values.append(element.text or "")
            for value in values:
                match = EXPRESSION.fullmatch(value.strip())
                if match:
                    sources.append((name, element.get("id") or element.getparent().get("id"), match.group(1)))
    return sources


def test_scripts__obey_the_restricted_python_rules(trees) -> None:
    for name, element_id, source in python_sources(trees):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.Import, ast.ImportFrom)), (name, element_id)
            if isinstance(node, ast.Name):
                assert not node.id.startswith("_"), (name, element_id)
                if isinstance(node.ctx, ast.Store):
                    assert node.id not in HELPERS, (name, element_id, f"{node.id} shadows a helper")
            if isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_"), (name, element_id)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"exec", "eval", "open", "compile", "globals", "locals",
                                            "getattr", "setattr", "vars", "__import__"}


def test_multi_instance__collections_are_variables_not_helpers(trees) -> None:
    for name, loop in all_elements(trees, "multiInstanceLoopCharacteristics"):
        collection = loop.get(f"{CAMUNDA}collection")
        element = loop.get(f"{CAMUNDA}elementVariable")
        assert collection and element, name
        assert collection not in HELPERS and element not in HELPERS, (name, collection, element)


def test_exclusive_gateways__every_branch_is_decided(trees) -> None:
    for name, tree in trees.items():
        flows = list(tree.iterfind(".//bpmn:sequenceFlow", namespaces=NS))
        for gateway in tree.iterfind(".//bpmn:exclusiveGateway", namespaces=NS):
            outgoing = [f for f in flows if f.get("sourceRef") == gateway.get("id")]
            if len(outgoing) > 1:
                for flow in outgoing:
                    has_condition = flow.find("bpmn:conditionExpression", NS) is not None
                    assert has_condition or gateway.get("default") == flow.get("id"), (name, flow.get("id"))


# --- diagram interchange --------------------------------------------------------------------

@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_diagram__every_element_is_drawn(path: Path) -> None:
    tree = parse_xml(path)
    shapes = {s.get("bpmnElement"): s for s in tree.iterfind(".//bpmndi:BPMNShape", namespaces=NS)}
    edges = {e.get("bpmnElement"): e for e in tree.iterfind(".//bpmndi:BPMNEdge", namespaces=NS)}
    for node in flow_nodes(tree):
        assert node.get("id") in shapes, node.get("id")
    for kind in ("lane", "participant"):
        for element in tree.iterfind(f".//bpmn:{kind}", namespaces=NS):
            assert element.get("id") in shapes, element.get("id")
    for flow in tree.iterfind(".//bpmn:sequenceFlow", namespaces=NS):
        assert flow.get("id") in edges, flow.get("id")
        assert len(edges[flow.get("id")].findall("di:waypoint", NS)) >= 2, flow.get("id")
    ids = {el.get("id") for el in tree.iter() if isinstance(el.tag, str) and el.get("id")}
    assert set(shapes) | set(edges) <= ids
    plane = tree.find(".//bpmndi:BPMNPlane", NS)
    assert plane.get("bpmnElement") in ids


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_diagram__flow_refs_match_sequence_flows(path: Path) -> None:
    tree = parse_xml(path)
    flows = list(tree.iterfind(".//bpmn:sequenceFlow", namespaces=NS))
    for node in flow_nodes(tree):
        incoming = {r.text for r in node.findall("bpmn:incoming", NS)}
        outgoing = {r.text for r in node.findall("bpmn:outgoing", NS)}
        assert incoming == {f.get("id") for f in flows if f.get("targetRef") == node.get("id")}, node.get("id")
        assert outgoing == {f.get("id") for f in flows if f.get("sourceRef") == node.get("id")}, node.get("id")


# --- decision tables ------------------------------------------------------------------------

DECISION_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_probe" targetNamespace="probe">
  <bpmn:process id="probe" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:businessRuleTask id="decide" camunda:decisionRef="{decision}" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def decide(decision: str, **data) -> dict:
    parser = CamundaParser()
    parser.add_bpmn_str(DECISION_PROCESS.replace("{decision}", decision).encode())
    parser.add_dmn_files([str(p) for p in DMN_FILES])
    workflow = BpmnWorkflow(parser.get_spec("probe"))
    workflow.get_next_task(spec_name="Start").set_data(**data)
    workflow.do_engine_steps()
    assert workflow.completed
    return workflow.data


@pytest.mark.parametrize("data, department, level", [
    (dict(department="finance", category=5, severity="minor"), "finance", "department"),
    (dict(department="finance", category=5, severity="serious"), "finance", "bureau"),
    (dict(department="", category=1, severity="minor"), "transport_admin", "department"),
    (dict(department="", category=2, severity="serious"), "planning", "bureau"),
    (dict(department="", category=3, severity="minor"), "office", "department"),
    (dict(department="", category=4, severity="minor"), "road_admin", "department"),
    (dict(department="", category=5, severity="minor"), "finance", "department"),
    (dict(department="", category=6, severity="serious"), "personnel", "bureau"),
])
def test_routing__owning_department_and_level(data, department, level) -> None:
    result = decide("routing", **data)
    assert (result["department"], result["level"]) == (department, level)


def test_routing__every_owner_is_a_department(org) -> None:
    for category in range(1, 7):
        for severity in ("minor", "serious"):
            assert decide("routing", department="", category=category, severity=severity)["department"] in org["departments"]


@pytest.mark.parametrize("data, disposition, within, leader", [
    (dict(category=1, severity="minor", repeated=False), "criticism", "P7D", False),
    (dict(category=2, severity="minor", repeated=False), "education", "P15D", False),
    (dict(category=3, severity="minor", repeated=False), "criticism", "P5D", False),
    (dict(category=5, severity="minor", repeated=False), "education", "P10D", False),
    (dict(category=1, severity="minor", repeated=True), "discipline", "P15D", True),
    (dict(category=3, severity="serious", repeated=False), "discipline", "P10D", True),
    (dict(category=6, severity="serious", repeated=True), "discipline", "P30D", True),
])
def test_disposition__criticism_education_or_discipline(data, disposition, within, leader) -> None:
    result = decide("disposition", **data)
    assert (result["disposition"], result["rectify_within"], result["leader_accountable"]) == (disposition, within, leader)


def test_disposition__every_case_has_an_answer() -> None:
    for category in range(1, 7):
        for severity in ("minor", "serious"):
            for repeated in (False, True):
                result = decide("disposition", category=category, severity=severity, repeated=repeated)
                assert result["disposition"] in ("criticism", "education", "discipline")
                assert ISO_DURATION.fullmatch(result["rectify_within"])
                assert (result["disposition"] == "discipline") == (severity == "serious" or repeated)
