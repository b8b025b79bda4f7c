"""Definition bundles: reading files safely, validating them, and building runnable specs.

A bundle is a set of BPMN, DMN and form (JSON Schema) files. Validation happens before anything is
stored and names the file, the element id and the line of each problem:

* hostile XML is refused before it is parsed: files over the size limit, any DOCTYPE or entity
  declaration (XXE, "billion laughs");
* XML must be well-formed and BPMN files valid against the BPMN 2.0 schema;
* every script, condition and `${...}` expression passes the script engine's static check;
* timer values and due dates parse; every form key has a schema that is a valid JSON Schema;
* every lane maps to a role in the directory; every called process and decision exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import camunda, camunda_forms, camunda_io, camunda_start, cron, feel, handlers, limits, services, unsupported
from .assignment import Directory
from .errors import DefinitionError, InputError, Problem
from .juel import JuelError, expression_source
from .scripting import ScriptCheckError, check_source, is_expression, strip_expression
from .spiff import upgrade_specs
from .spiff_parser import TigaoParser
from .timeutil import check_timer_literal, due_from

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
)
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
MAX_FILE_BYTES = int(os.environ.get("TIGAO_MAX_FILE_BYTES", str(5 * 1024 * 1024)))
USER_TASK_ATTRS = ("assignee", "candidateUsers", "candidateGroups", "dueDate", "followUpDate", "priority")
FLOW_NODE_TAGS = (
    "userTask", "manualTask", "task", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                          remove_blank_text=False, dtd_validation=False)
_BPMN_VALIDATOR: BpmnValidator | None = None
_VALIDATOR_LOCK = threading.Lock()


def _bpmn_validator() -> BpmnValidator:
    global _BPMN_VALIDATOR
    with _VALIDATOR_LOCK:
        if _BPMN_VALIDATOR is None:
            _BPMN_VALIDATOR = BpmnValidator()
        return _BPMN_VALIDATOR


@dataclass
class TaskMeta:
    """What the engine reads itself from a user task: assignment, deadlines, form."""

    element_id: str
    name: str | None
    lane: str | None
    lane_id: str | None
    assignee: str | None = None
    candidate_users: str | None = None
    candidate_groups: str | None = None
    due_date: str | None = None
    follow_up_date: str | None = None
    priority: str | None = None
    form_key: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class Bundle:
    """Files by name: `x.bpmn`, `x.dmn`, `forms/k.json`."""

    files: dict[str, str]

    def bpmn_names(self) -> list[str]:
        return sorted(n for n in self.files if n.lower().endswith(".bpmn") or n.lower().endswith(".bpmn20.xml"))

    def dmn_names(self) -> list[str]:
        return sorted(n for n in self.files if n.lower().endswith(".dmn"))


def read_bundle(paths: list[str | Path]) -> Bundle:
    """Read files and folders. A folder gives its *.bpmn and *.dmn files and the *.json files
    beside them or in its forms/ folder; a BPMN file brings the form schemas beside it or in a
    forms/ folder beside it. Only regular files are read (a FIFO or device named *.bpmn is
    refused, never waited on), a file found in a folder may not be a link to outside that folder,
    and over-size files are refused before they are read."""
    files: dict[str, str] = {}
    problems: list[Problem] = []

    def add(path: Path, name: str, folder: Path | None = None) -> None:
        blob = _read_regular(path, name, folder, problems)
        if blob is None:
            return
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(Problem(name, "file is not UTF-8 text"))
            return
        if name in files and files[name] != text:
            problems.append(Problem(name, f"two different files are named '{name}' in this bundle"))
        files[name] = text

    def add_forms_near(folder: Path) -> None:
        for sub in (folder, folder / "forms"):
            if sub.is_dir():
                for f in sorted(sub.glob("*.json")) + sorted(sub.glob("*.form")):  # .form: Camunda Forms
                    add(f, f"forms/{f.name}", folder)

    if not paths:
        raise InputError("give at least one BPMN file or folder")
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"no such file or folder: '{p}'")
        if p.is_dir():
            found = sorted(list(p.glob("*.bpmn")) + list(p.glob("*.dmn")))
            schemas = sorted(p.glob("*.json")) + sorted(p.glob("forms/*.json")) + sorted(p.glob("*.form"))
            if not found and not schemas:
                raise InputError(f"folder '{p}' has no .bpmn, .dmn or form (.json) files")
            for f in found:
                add(f, f.name, p)
            add_forms_near(p)
        else:
            if p.suffix.lower() in (".json", ".form"):
                add(p, f"forms/{p.name}")
            else:
                add(p, p.name)
                add_forms_near(p.parent)
    if problems:
        raise DefinitionError(problems)
    return Bundle(files)


def with_deployed_forms(bundle: Bundle, deployed: list[dict[str, str]]) -> Bundle:
    """The bundle plus the forms it lacks that a deployed version of one of its diagrams holds.

    Redeploying a changed diagram alone keeps its unchanged forms (as a called process not in the
    bundle comes from its deployed version); a form given in the bundle always wins. `deployed`
    holds the files of each process's newest version.
    """
    files = dict(bundle.files)
    names = set(bundle.bpmn_names())
    for version in deployed:
        if names & set(version):
            for name, text in version.items():
                if name.startswith("forms/") and name not in files:
                    files[name] = text
    return Bundle(files)


def _read_regular(path: Path, name: str, folder: Path | None, problems: list[Problem]) -> bytes | None:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or None with the problem recorded."""
    if folder is not None:
        real, inside = path.resolve(), folder.resolve()
        if real != inside and inside not in real.parents:
            problems.append(Problem(name, f"is a link to '{real}', outside the folder '{folder}'; deploy "
                                    "reads only the folder's own files: copy the file in instead"))
            return None
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        problems.append(Problem(name, f"cannot be read: {exc.strerror}"))
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            why = "is not a regular file (a folder, device or pipe); give BPMN, DMN or JSON files"
        else:
            why = f"file is {st.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} (TIGAO_MAX_FILE_BYTES)"
        problems.append(Problem(name, why))
        return None
    with os.fdopen(fd, "rb") as f:
        blob = f.read(MAX_FILE_BYTES + 1)  # a file growing meanwhile is still cut at the limit
    if len(blob) > MAX_FILE_BYTES:
        problems.append(Problem(name, f"file is larger than {MAX_FILE_BYTES:,} bytes (TIGAO_MAX_FILE_BYTES)"))
        return None
    return blob


def parse_xml(name: str, text: str) -> etree._Element:
    """Parse one XML file safely; raise DefinitionError on DOCTYPE/entities or malformed XML."""
    head = text[:65536].upper()
    if "<!DOCTYPE" in head or "<!ENTITY" in text.upper():
        line = text[: text.upper().find("<!")].count("\n") + 1
        raise DefinitionError([Problem(name, "DOCTYPE and entity declarations are not allowed in BPMN/DMN "
                                             "files (they can read local files or expand without limit); "
                                             "remove them", line=line)])
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise DefinitionError([Problem(name, f"file is larger than {MAX_FILE_BYTES:,} bytes")])
    try:
        root = etree.fromstring(text.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DefinitionError([Problem(name, f"malformed XML: {exc.msg}", line=exc.lineno)]) from exc
    return root


def content_hash(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode("utf-8") + b"\0" + files[name].encode("utf-8") + b"\0")
    return h.hexdigest()


@dataclass
class ProcessInfo:
    key: str
    name: str | None
    file: str
    called: set[str]
    decisions: set[str]
    form_keys: set[str]
    message_starts: list[str]
    timer_starts: list[tuple[str, str, str]]  # (element id, kind, value)
    executable: bool
    properties: dict[str, str] = field(default_factory=dict)
    # Where each called process / decision is referenced: (element id, line).
    references: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    dynamic_call: bool = False  # a calledElement="${...}": every process of the bundle may be called
    start: Any = None  # camunda_start.StartInfo: the initiator variable and the start form


@dataclass
class Analysis:
    """What validation learned about a bundle."""

    processes: dict[str, ProcessInfo]
    decisions: dict[str, str]  # decision id -> file
    task_meta: dict[tuple[str, str], TaskMeta]  # (owning process/subprocess id, element id)
    warnings: list[Problem] = field(default_factory=list)  # worth knowing, not errors


def _owner_id(el: etree._Element) -> str:
    parent = el.getparent()
    while parent is not None:
        tag = etree.QName(parent).localname
        if tag in ("process", "subProcess", "transaction", "adHocSubProcess"):
            return str(parent.get("id"))
        parent = parent.getparent()
    return ""


def _process_of(el: etree._Element) -> etree._Element | None:
    parent = el.getparent()
    while parent is not None:
        if etree.QName(parent).localname == "process":
            return parent
        parent = parent.getparent()
    return None


def _lane_of(el: etree._Element, lanes: dict[str, etree._Element]) -> etree._Element | None:
    """The lane holding a node, or holding its nearest enclosing subprocess."""
    node: etree._Element | None = el
    while node is not None:
        lane = lanes.get(str(node.get("id")))
        if lane is not None:
            return lane
        node = node.getparent()
        if node is not None and etree.QName(node).localname == "process":
            return None
    return None


def analyse(bundle: Bundle, directory: Directory | None, deployed_keys: set[str],
            check_roles: bool = True) -> Analysis:
    """Validate a bundle; raise DefinitionError listing every problem found."""
    problems: list[Problem] = []
    trees: dict[str, etree._Element] = {}
    for name in bundle.bpmn_names() + bundle.dmn_names():
        try:
            trees[name] = parse_xml(name, bundle.files[name])
        except DefinitionError as exc:
            problems.extend(exc.problems)
    forms: dict[str, Any] = {}
    for name in sorted(n for n in bundle.files if n.startswith("forms/") and n.endswith(".json")):
        key = name[len("forms/"):-len(".json")]
        try:
            schema = json.loads(bundle.files[name])
            validator_for(schema, default=Draft202012Validator).check_schema(schema)
            forms[key] = schema
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, f"form schema is not JSON: {exc.msg}", line=exc.lineno))
        except SchemaError as exc:
            problems.append(Problem(name, f"not a valid JSON Schema: {exc.message}"))
    if not bundle.bpmn_names():
        problems.append(Problem("(bundle)", "no BPMN file given"))
    if problems:
        raise DefinitionError(problems)

    processes: dict[str, ProcessInfo] = {}
    decisions: dict[str, str] = {}
    task_meta: dict[tuple[str, str], TaskMeta] = {}
    warnings: list[Problem] = []

    for name in bundle.dmn_names():
        root = trees[name]
        if etree.QName(root).namespace not in DMN_NAMESPACES:
            problems.append(Problem(name, "not a DMN 1.x file (unknown namespace "
                                          f"'{etree.QName(root).namespace}')", line=root.sourceline))
            continue
        dmn_ns = {"dmn": etree.QName(root).namespace}
        for dec in root.iterfind(".//dmn:decision", dmn_ns):
            decisions[str(dec.get("id"))] = name
        for tag in ("inputExpression/dmn:text", "inputEntry/dmn:text", "outputEntry/dmn:text"):
            for node in root.iterfind(f".//dmn:{tag}", dmn_ns):
                text = (node.text or "").strip()
                if not text or text == "-":
                    continue
                if tag.startswith("inputEntry"):
                    # Input entries may be unary tests ("< 3", "a", "b"); check each comma part loosely.
                    _check_unary(name, node, text, problems)
                else:
                    _check_expr(name, node, text, problems)

    validator = _bpmn_validator()
    for name in bundle.bpmn_names():
        root = trees[name]
        if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
            problems.append(Problem(name, "not a BPMN 2.0 file: the root must be bpmn:definitions in "
                                          f"namespace {BPMN_NS}", line=root.sourceline))
            continue
        try:
            validator.validate(camunda.schema_view(root), name)
        except ValidationException as exc:
            line = getattr(exc, "line_number", None) or None
            element = next((str(el.get("id")) for el in root.iter() if el.sourceline == line and el.get("id")),
                           None)
            message = _first_line(exc).replace(f"{{{BPMN_NS}}}", "bpmn:").rstrip(".")
            problems.append(Problem(name, f"not valid BPMN 2.0: {message}", element=element, line=line))
            continue
        _analyse_bpmn(name, root, bundle, forms, directory, check_roles, processes, task_meta, problems, warnings)

    known_keys = set(processes) | deployed_keys
    for info in processes.values():
        for called in sorted(info.called - known_keys):
            element, line = info.references.get(f"process:{called}", (None, None))
            problems.append(Problem(info.file, f"called process '{called}' is neither in this bundle nor "
                                               "deployed; deploy it first or add its file", element=element,
                                    line=line))
        for dec in sorted(info.decisions - set(decisions)):
            element, line = info.references.get(f"decision:{dec}", (None, None))
            problems.append(Problem(info.file, f"decision '{dec}' is not in any DMN file of this bundle; "
                                               "deploy its DMN file together with the process", element=element,
                                    line=line))
    if problems:
        raise DefinitionError(problems)

    # Finally let SpiffWorkflow build every executable process, each with only the files it
    # needs (embedded subprocess ids need only be unique within one process's files).
    for key, info in processes.items():
        if not info.executable:
            continue
        names = set(bundle.bpmn_names()) if info.dynamic_call else _closure_files(key, processes)
        parser = TigaoParser()
        try:
            for name in bundle.dmn_names():
                parser.add_dmn_xml(trees[name], filename=name)
            for name in sorted(names):
                parser.add_bpmn_xml(trees[name], filename=name)
            parser.get_spec(key)
            if not (info.called - set(processes)):
                camunda.subprocess_specs(parser, key)
        except (ValidationException, SpiffWorkflowException) as exc:
            problems.append(_spiff_problem(exc, info.file))
        except Exception as exc:  # noqa: BLE001 - the parser raises bare errors on odd input
            problems.append(Problem(info.file, f"cannot build process '{key}': {exc}", element=key))
    if problems:
        raise DefinitionError(problems)
    return Analysis(processes, decisions, task_meta, warnings)


def _closure_files(key: str, processes: dict[str, ProcessInfo]) -> set[str]:
    names: set[str] = set()
    seen: set[str] = set()
    todo = [key]
    while todo:
        k = todo.pop()
        if k in seen or k not in processes:
            continue
        seen.add(k)
        names.add(processes[k].file)
        todo.extend(processes[k].called)
    return names


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def _spiff_problem(exc: Exception, default_file: str) -> Problem:
    return Problem(getattr(exc, "file_name", None) or default_file, _first_line(exc),
                   element=getattr(exc, "id", None) or None, line=getattr(exc, "line_number", None) or None)


def _check_expr(file: str, node: etree._Element, text: str, problems: list[Problem], mode: str = "eval") -> None:
    try:
        if mode == "eval":
            expression_source(text)  # JUEL that is not valid says where (engine/juel.py)
        check_source(strip_expression(text) if mode == "eval" else text, mode)
    except (ScriptCheckError, JuelError) as exc:
        element = _element_id(node)
        line = node.sourceline
        if getattr(exc, "line", None) and mode == "exec" and line:
            line = line + exc.line - 1
        snippet = " ".join(text.split())
        problems.append(Problem(file, f"{exc} in: {snippet[:80]}", element=element, line=line))


def _check_unary(file: str, node: etree._Element, text: str, problems: list[Problem]) -> None:
    """A DMN input entry: an expression, a comparison missing its left side (`< 3`), a list
    (`"a", "b"`), or a two-sided test with `?` for the input (`60 <= ? < 90`)."""
    text = feel.unary_to_python(text) or text  # a FEEL unary test is checked as its translation
    replaced = re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", text)
    syntax: ScriptCheckError | None = None
    for candidate in (replaced, f"dmninputexpr {text}", f"({text},)"):
        try:
            check_source(candidate, "eval")
            return
        except ScriptCheckError as exc:
            if not str(exc).startswith("syntax error"):
                problems.append(Problem(file, f"{exc} in: {' '.join(text.split())[:80]}", element=_element_id(node),
                                        line=node.sourceline))
                return
            syntax = syntax or exc
    problems.append(Problem(file, f"{syntax} in: {' '.join(text.split())[:80]}", element=_element_id(node),
                            line=node.sourceline))


def _element_id(node: etree._Element) -> str | None:
    n: etree._Element | None = node
    while n is not None:
        if n.get("id"):
            return str(n.get("id"))
        n = n.getparent()
    return None


def _analyse_bpmn(name: str, root: etree._Element, bundle: Bundle, forms: dict[str, Any],
                  directory: Directory | None, check_roles: bool, processes: dict[str, ProcessInfo],
                  task_meta: dict[tuple[str, str], TaskMeta], problems: list[Problem],
                  warnings: list[Problem] | None = None) -> None:
    for proc in root.iterfind("bpmn:process", NS):
        key = str(proc.get("id"))
        if key in processes:
            problems.append(Problem(name, f"process id '{key}' is defined twice in this bundle "
                                          f"(also in {processes[key].file})", element=key, line=proc.sourceline))
            continue
        if proc.get("isExecutable", "true") == "false":
            # Documentation (Camunda does not run it): kept with the file, never checked for execution.
            processes[key] = ProcessInfo(key, proc.get("name"), name, set(), set(), set(), [], [], False)
            continue
        for el in proc.iter():
            # SpiffWorkflow names its own start, end and join specs so; an element with such an id
            # would replace them and the process could never start.
            if isinstance(el.tag, str) and el.get("id") in ("Start", "End", f"{key}.EndJoin"):
                problems.append(Problem(name, f"the id '{el.get('id')}' is reserved by the engine; give the "
                                              f"element another id (e.g. '{el.get('id')}Event_1')",
                                        element=el.get("id"), line=el.sourceline))
        lanes: dict[str, etree._Element] = {}
        for lane in proc.iterfind(".//bpmn:lane", NS):
            for ref in lane.iterfind("bpmn:flowNodeRef", NS):
                lanes[(ref.text or "").strip()] = lane
            if check_roles and not lane.findall("bpmn:childLaneSet", NS):
                role = directory.role_for_lane(lane.get("name"), lane.get("id")) if directory else None
                if role is None:
                    hint = ("load the directory first ('tigao directory load FILE')" if directory is None
                            or not directory.roles else "name the lane after a role id or role name")
                    problems.append(Problem(name, f"lane '{lane.get('name') or lane.get('id')}' maps to no "
                                                  f"known role; {hint}", element=lane.get("id"),
                                            line=lane.sourceline))
        info = ProcessInfo(key, proc.get("name"), name, set(), set(), set(), [], [],
                           proc.get("isExecutable", "true") != "false")
        processes[key] = info
        for prop in proc.iterfind("bpmn:extensionElements/camunda:properties/camunda:property", NS):
            info.properties[str(prop.get("name"))] = str(prop.get("value"))
        camunda.check_process(name, root, proc, lanes, problems, warnings if warnings is not None else [])
        camunda_io.check(name, proc, problems)
        services.check(name, proc, problems, handlers.registered() if check_roles else None)
        unsupported.check(name, proc, NS, problems)
        for node, text in camunda_io.expressions(proc):
            _check_expr(name, node, text, problems)
        bound_problem = limits.check_properties(info.properties)  # tigao.script.cpu / .memory
        if bound_problem:
            problems.append(Problem(name, bound_problem, element=key, line=proc.sourceline))

        for script in proc.iterfind(".//bpmn:scriptTask", NS):
            fmt = (script.get("scriptFormat") or "python").lower()
            if fmt not in ("python", "py", ""):
                problems.append(Problem(name, f"script format '{fmt}' is not supported; write Python",
                                        element=script.get("id"), line=script.sourceline))
            body = script.find("bpmn:script", NS)
            if body is None or not (body.text or "").strip():
                problems.append(Problem(name, "script task has no script", element=script.get("id"),
                                        line=script.sourceline))
                continue
            _check_expr(name, body, body.text or "", problems, mode="exec")
        for cond in proc.iterfind(".//bpmn:conditionExpression", NS):
            _check_expr(name, cond, cond.text or "", problems)
        for cond in proc.iterfind(".//bpmn:completionCondition", NS):
            _check_expr(name, cond, cond.text or "", problems)
        for call in proc.iterfind(".//bpmn:callActivity", NS):
            called = call.get("calledElement")
            if not called:
                problems.append(Problem(name, "call activity has no calledElement", element=call.get("id"),
                                        line=call.sourceline))
            elif camunda.is_dynamic_call(called):
                info.dynamic_call = True  # resolved at run time among the processes deployed with it
                _check_expr(name, call, called, problems)
            else:
                info.called.add(called)
                info.references.setdefault(f"process:{called}", (call.get("id"), call.sourceline))
        for brt in proc.iterfind(".//bpmn:businessRuleTask", NS):
            ref = brt.get(f"{{{CAMUNDA_NS}}}decisionRef")
            if not ref and services.meta_of(brt) is not None:
                continue  # an external task or a handler, not a decision
            if not ref:
                problems.append(Problem(name, "business rule task has no camunda:decisionRef",
                                        element=brt.get("id"), line=brt.sourceline))
            else:
                info.decisions.add(ref)
                info.references.setdefault(f"decision:{ref}", (brt.get("id"), brt.sourceline))
        for tdef in proc.iterfind(".//bpmn:timerEventDefinition", NS):
            _check_timer(name, tdef, problems, info)
        info.start = camunda_start.analyse(name, root, proc, bundle.files, forms, problems, info)
        for tag in ("userTask", "manualTask"):
            for task in proc.iterfind(f".//bpmn:{tag}", NS):
                meta = _task_meta(name, task, lanes, problems)
                generated = camunda_forms.form_for(name, task, key, bundle.files, forms, problems)
                if generated is not None:
                    meta.form_key = generated or None
                task_meta[(_owner_id(task), meta.element_id)] = meta
                if meta.form_key:
                    info.form_keys.add(meta.form_key)
                    if meta.form_key not in forms:
                        problems.append(Problem(name, f"form key '{meta.form_key}' has no schema: add "
                                                      f"{meta.form_key}.json beside the BPMN file or in forms/",
                                                element=meta.element_id, line=task.sourceline))


def _check_timer(name: str, tdef: etree._Element, problems: list[Problem], info: ProcessInfo) -> None:
    for tag, kind in (("timeDate", "date"), ("timeDuration", "duration"), ("timeCycle", "cycle")):
        node = tdef.find(f"bpmn:{tag}", NS)
        if node is None:
            continue
        text = (node.text or "").strip()
        event = tdef.getparent()
        if not text:
            problems.append(Problem(name, f"{tag} is empty", element=event.get("id"), line=node.sourceline))
        elif is_expression(text):
            _check_expr(name, node, text, problems)
        else:
            literal = text
            if text[:1] in ("'", '"'):
                import ast

                try:
                    literal = str(ast.literal_eval(text))
                except (ValueError, SyntaxError):
                    _check_expr(name, node, text, problems)
                    return
            try:
                if kind == "cycle" and cron.is_quartz(literal):
                    cron.to_croniter(literal)  # Quartz cron, as Camunda accepts it
                else:
                    check_timer_literal(kind, literal)
            except ValueError as exc:
                problems.append(Problem(name, f"{tag}: {exc}", element=event.get("id"), line=node.sourceline))
                return
        if etree.QName(event).localname == "startEvent" and etree.QName(event.getparent()).localname == "process":
            info.timer_starts.append((str(event.get("id")), kind, text))
        return
    problems.append(Problem(name, "timer event needs a timeDate, timeDuration or timeCycle",
                            element=tdef.getparent().get("id"), line=tdef.sourceline))


def _task_meta(name: str, task: etree._Element, lanes: dict[str, etree._Element],
               problems: list[Problem]) -> TaskMeta:
    lane = _lane_of(task, lanes)
    meta = TaskMeta(
        element_id=str(task.get("id")),
        name=task.get("name"),
        lane=lane.get("name") if lane is not None else None,
        lane_id=lane.get("id") if lane is not None else None,
        assignee=task.get(f"{{{CAMUNDA_NS}}}assignee"),
        candidate_users=task.get(f"{{{CAMUNDA_NS}}}candidateUsers"),
        candidate_groups=task.get(f"{{{CAMUNDA_NS}}}candidateGroups"),
        due_date=task.get(f"{{{CAMUNDA_NS}}}dueDate"),
        follow_up_date=task.get(f"{{{CAMUNDA_NS}}}followUpDate"),
        priority=task.get(f"{{{CAMUNDA_NS}}}priority"),
        form_key=task.get(f"{{{CAMUNDA_NS}}}formKey"),
    )
    for prop in task.iterfind("bpmn:extensionElements/camunda:properties/camunda:property", NS):
        meta.properties[str(prop.get("name"))] = str(prop.get("value"))
    for attr in USER_TASK_ATTRS:
        value = task.get(f"{{{CAMUNDA_NS}}}{attr}")
        if value is None:
            continue
        if is_expression(value):
            _check_expr(name, task, value, problems)
        elif "${" in value or "#{" in value:
            # `${currentUser()` (no closing brace) or `user-${id}` would be taken as a literal name
            problems.append(Problem(name, f"camunda:{attr} '{value}' is not one expression: write the whole "
                                          "value as ${...}, with its closing '}', or a plain value",
                                    element=meta.element_id, line=task.sourceline))
        elif attr in ("dueDate", "followUpDate"):
            try:
                from datetime import datetime, timezone

                due_from(value, datetime(2000, 1, 1, tzinfo=timezone.utc))
            except ValueError as exc:
                problems.append(Problem(name, f"camunda:{attr}: {exc}", element=meta.element_id,
                                        line=task.sourceline))
        elif attr == "priority" and not value.strip().lstrip("-").isdigit():
            problems.append(Problem(name, f"camunda:priority must be a whole number or ${{...}}, not '{value}'",
                                    element=meta.element_id, line=task.sourceline))
    return meta


def files_for(key: str, analysis: Analysis, bundle: Bundle, deployed_files: dict[str, dict[str, str]]) -> dict[str, str]:
    """Every file process `key` needs: its own, its called processes' (transitively), its decisions'
    and its forms. A called process that is not in the bundle comes from its newest deployed version."""
    files: dict[str, str] = {}
    seen: set[str] = set()
    todo = [key]
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        info = analysis.processes.get(k)
        if info is None:
            files.update(deployed_files.get(k, {}))
            continue
        files[info.file] = bundle.files[info.file]
        for dec in info.decisions:
            dmn = analysis.decisions[dec]
            files[dmn] = bundle.files[dmn]
        # Every pool of the file is rebuilt with it, so every pool's forms travel with it.
        for other in analysis.processes.values():
            if other.file == info.file:
                for fk in other.form_keys:
                    files[f"forms/{fk}.json"] = bundle.files[f"forms/{fk}.json"]
        todo.extend(info.called)
        if info.dynamic_call:
            todo.extend(k for k, other in analysis.processes.items() if other.executable)
        # Embedded subprocess forms and decisions are already in the process's own analysis.
    return dict(sorted(files.items()))


# ---------------------------------------------------------------------------------------------
# Built definitions (cached per definition id)


@dataclass
class Built:
    definition_id: int
    key: str
    spec: Any
    subprocess_specs: dict[str, Any]
    task_meta: dict[tuple[str, str], TaskMeta]
    forms: dict[str, Any]
    analysis: Analysis
    has_timers: bool = True  # any BPMN timer event in these files (else no timer rows to sync)
    has_messages: bool = True  # any message event or receive task (else no subscriptions to sync)
    has_signals: bool = True  # any signal event (else no signal subscriptions to sync)


class BuiltCache:
    """Parsed specs per definition id: parsing a diagram is done once per process."""

    def __init__(self, size: int = 64):
        self._items: OrderedDict[int, Built] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def peek(self, definition_id: int) -> Built | None:
        """The built definition if this process has it (a definition row never changes)."""
        with self._lock:
            return self._items.get(definition_id)

    def get(self, definition_id: int, key: str, files: dict[str, str]) -> Built:
        with self._lock:
            built = self._items.get(definition_id)
            if built is not None:
                self._items.move_to_end(definition_id)
                return built
        built = build(definition_id, key, files)
        with self._lock:
            self._items[definition_id] = built
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return built


def build(definition_id: int, key: str, files: dict[str, str]) -> Built:
    bundle = Bundle(files)
    analysis = analyse(bundle, None, set(), check_roles=False)
    parser = TigaoParser()
    for name in bundle.dmn_names():
        parser.add_dmn_xml(parse_xml(name, files[name]), filename=name)
    mappings: dict[tuple[str, str], Any] = {}
    implementations: dict[str, services.ServiceMeta] = {}
    for name in bundle.bpmn_names():
        tree = parse_xml(name, files[name])
        mappings.update(camunda_io.collect(tree))
        implementations.update(services.collect(tree))
        parser.add_bpmn_xml(tree, filename=name)
    spec = parser.get_spec(key)
    subs = camunda.subprocess_specs(parser, key)
    upgrade_specs([spec, *subs.values()])
    camunda.pass_through([spec, *subs.values()])
    feel.translate_decisions([spec, *subs.values()])
    camunda_io.apply([spec, *subs.values()], mappings)
    camunda.dynamic_calls([spec, *subs.values()])
    services.apply([spec, *subs.values()], implementations)
    forms = {n[len("forms/"):-len(".json")]: json.loads(t) for n, t in files.items()
             if n.startswith("forms/") and n.endswith(".json")}
    bpmn_text = "".join(files[n] for n in bundle.bpmn_names())
    return Built(definition_id, key, spec, subs, analysis.task_meta, forms, analysis,
                 has_timers="timerEventDefinition" in bpmn_text,
                 has_messages="messageEventDefinition" in bpmn_text or "receiveTask" in bpmn_text,
                 has_signals="signalEventDefinition" in bpmn_text)
