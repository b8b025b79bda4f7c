"""Definition bundles: validating them, and building runnable specs.

A bundle (`engine.bundles`: read safely, parsed safely) is a set of BPMN, DMN and form (JSON
Schema) files. Validation happens before anything is stored and names the file, the element id and
the line of each problem:

* XML must be well-formed and BPMN files valid against the BPMN 2.0 schema;
* every script, condition and `${...}` expression passes the script engine's static check;
* timer values and due dates parse; every form key has a schema that is a valid JSON Schema;
* every lane maps to a role in the directory; every called process and decision exists.

What one BPMN file holds is read by `engine.bpmn_checks`; this module puts a bundle's files
together, lets SpiffWorkflow build each process, and keeps the built specs per definition.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import camunda, camunda_io, feel, services
from .assignment import Directory
from .bpmn_checks import ProcessInfo, TaskMeta, analyse_bpmn, check_expr, check_unary, first_line, spiff_problem
from .bundles import BPMN_NS, DMN_NAMESPACES, Bundle, parse_xml
from .errors import DefinitionError, Problem
from .spiff import upgrade_specs
from .spiff_parser import TigaoParser

_BPMN_VALIDATOR: BpmnValidator | None = None
_VALIDATOR_LOCK = threading.Lock()


def _bpmn_validator() -> BpmnValidator:
    global _BPMN_VALIDATOR
    with _VALIDATOR_LOCK:
        if _BPMN_VALIDATOR is None:
            _BPMN_VALIDATOR = BpmnValidator()
        return _BPMN_VALIDATOR


@dataclass
class Analysis:
    """What validation learned about a bundle."""

    processes: dict[str, ProcessInfo]
    decisions: dict[str, str]  # decision id -> file
    task_meta: dict[tuple[str, str], TaskMeta]  # (owning process/subprocess id, element id)
    warnings: list[Problem] = field(default_factory=list)  # worth knowing, not errors


def analyse(bundle: Bundle, directory: Directory | None, deployed_keys: set[str],
            check_roles: bool = True, deployed: bool = False) -> Analysis:
    """Validate a bundle; raise DefinitionError listing every problem found.

    `deployed`: the files of a stored definition, which passed this whole validation when they
    were deployed; the two costly checks, the BPMN schema and SpiffWorkflow building every
    process, are left out (`build` builds the one process it needs right after, and a file that
    no longer parses still fails there).
    """
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
                    check_unary(name, node, text, problems)
                else:
                    check_expr(name, node, text, problems)

    validator = None if deployed else _bpmn_validator()
    for name in bundle.bpmn_names():
        root = trees[name]
        if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
            problems.append(Problem(name, "not a BPMN 2.0 file: the root must be bpmn:definitions in "
                                          f"namespace {BPMN_NS}", line=root.sourceline))
            continue
        try:
            if validator is not None:
                validator.validate(camunda.schema_view(root), name)
        except ValidationException as exc:
            line = getattr(exc, "line_number", None) or None
            element = next((str(el.get("id")) for el in root.iter() if el.sourceline == line and el.get("id")),
                           None)
            message = first_line(exc).replace(f"{{{BPMN_NS}}}", "bpmn:").rstrip(".")
            problems.append(Problem(name, f"not valid BPMN 2.0: {message}", element=element, line=line))
            continue
        analyse_bpmn(name, root, bundle, forms, directory, check_roles, processes, task_meta, problems, warnings)

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
    if deployed:
        return Analysis(processes, decisions, task_meta, warnings)

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
            problems.append(spiff_problem(exc, info.file))
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
    analysis = analyse(bundle, None, set(), check_roles=False, deployed=True)
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
