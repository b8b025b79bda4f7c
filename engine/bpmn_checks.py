"""What validation reads from one BPMN file: each process's facts and every user task's meta.

`analyse_bpmn` walks the processes of a parsed file and records, for `engine.definitions.analyse`,
what each process calls, decides, starts by and shows (`ProcessInfo`), and how each user task is
assigned, timed and given its form (`TaskMeta`); every script, condition, `${...}` expression,
timer value and due date passes its static check here, each problem with its file, element and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from . import camunda, camunda_forms, camunda_io, camunda_start, cron, feel, handlers, limits, services, unsupported
from .assignment import Directory
from .bundles import CAMUNDA_NS, NS, Bundle
from .errors import Problem
from .juel import JuelError, expression_source
from .scripting import ScriptCheckError, check_source, is_expression, strip_expression
from .timeutil import check_timer_literal, due_from

USER_TASK_ATTRS = ("assignee", "candidateUsers", "candidateGroups", "dueDate", "followUpDate", "priority")


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


def _owner_id(el: etree._Element) -> str:
    parent = el.getparent()
    while parent is not None:
        tag = etree.QName(parent).localname
        if tag in ("process", "subProcess", "transaction", "adHocSubProcess"):
            return str(parent.get("id"))
        parent = parent.getparent()
    return ""


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


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def spiff_problem(exc: Exception, default_file: str) -> Problem:
    return Problem(getattr(exc, "file_name", None) or default_file, first_line(exc),
                   element=getattr(exc, "id", None) or None, line=getattr(exc, "line_number", None) or None)


def check_expr(file: str, node: etree._Element, text: str, problems: list[Problem], mode: str = "eval") -> None:
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


def check_unary(file: str, node: etree._Element, text: str, problems: list[Problem]) -> None:
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


def analyse_bpmn(name: str, root: etree._Element, bundle: Bundle, forms: dict[str, Any],
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
            check_expr(name, node, text, problems)
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
            check_expr(name, body, body.text or "", problems, mode="exec")
        for cond in proc.iterfind(".//bpmn:conditionExpression", NS):
            check_expr(name, cond, cond.text or "", problems)
        for cond in proc.iterfind(".//bpmn:completionCondition", NS):
            check_expr(name, cond, cond.text or "", problems)
        for call in proc.iterfind(".//bpmn:callActivity", NS):
            called = call.get("calledElement")
            if not called:
                problems.append(Problem(name, "call activity has no calledElement", element=call.get("id"),
                                        line=call.sourceline))
            elif camunda.is_dynamic_call(called):
                info.dynamic_call = True  # resolved at run time among the processes deployed with it
                check_expr(name, call, called, problems)
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
            check_expr(name, node, text, problems)
        else:
            literal = text
            if text[:1] in ("'", '"'):
                import ast

                try:
                    literal = str(ast.literal_eval(text))
                except (ValueError, SyntaxError):
                    check_expr(name, node, text, problems)
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
            check_expr(name, task, value, problems)
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
