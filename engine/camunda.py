"""Camunda 7's semantics where SpiffWorkflow's (or Tigao's first reading) differ.

* A plain `bpmn:task` and a `manualTask` pass straight through, as in Camunda: nobody gets a task.
* A user task nobody is named for (no assignee, candidate users or groups, no lane) goes to every
  user of the directory as candidates (Camunda with authorisation off lets anyone claim it),
  unless a default group is configured: the process's extension property
  `tigao.defaultCandidateGroup`, else the environment variable `TIGAO_DEFAULT_CANDIDATE_GROUP`.
  `tigao validate` warns about each such task.
* An inclusive- or exclusive-gateway flow without a condition is always taken (an exclusive gateway
  takes the first true flow in the file's order, as Camunda's does).
* What Camunda's schema requires is refused at deployment by element, never discovered at run
  time: a sequence flow without an id, a catching message event or receive task without
  `messageRef` (or naming no message), HTML form keys (`embedded:`, `app:`) that Tigao cannot show.
"""

from __future__ import annotations

import os
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.task_parsers import ConditionalGatewayParser
from SpiffWorkflow.bpmn.specs.defaults import CallActivity, ManualTask, NoneTask

from .camunda_forms import is_html_form_key
from .errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
DEFAULT_GROUP_PROPERTY = "tigao.defaultCandidateGroup"
DEFAULT_GROUP_ENV = "TIGAO_DEFAULT_CANDIDATE_GROUP"
CATCHING = ("startEvent", "intermediateCatchEvent", "boundaryEvent")


def default_candidates(process_properties: dict[str, str], all_users: list[str]) -> tuple[list[str], list[str]]:
    """(candidate users, candidate groups) for a user task nobody is named for."""
    group = (process_properties.get(DEFAULT_GROUP_PROPERTY) or os.environ.get(DEFAULT_GROUP_ENV) or "").strip()
    if group:
        return [], [group]
    return sorted(all_users), []


def pass_through(specs: list[Any]) -> None:
    """Plain and manual tasks are not human tasks: the engine runs them like any automatic step."""
    for spec in specs:
        for ts in spec.task_specs.values():
            if isinstance(ts, (NoneTask, ManualTask)):
                ts.manual = False


class InclusiveGatewayParser(ConditionalGatewayParser):
    """A non-default flow out of an inclusive or exclusive gateway without a condition is always
    taken (Camunda's gateway behaviours read a missing condition as true)."""

    def connect_outgoing(self, outgoing_task: Any, sequence_flow_node: Any, is_default: bool) -> None:
        if not is_default and self.parse_condition(sequence_flow_node) is None:
            self.task.connect_outgoing_if("True", outgoing_task)
            return
        super().connect_outgoing(outgoing_task, sequence_flow_node, is_default)


def catch_or_drop(top: Any, event: Any) -> None:
    """Throw a message inside the instance. Camunda: without a payload expression it carries no
    payload, and one nothing in the instance catches goes nowhere. SpiffWorkflow would keep the
    latter in `bpmn_events` for a caller that delivers events elsewhere, which nothing here does, so
    it would pile up in the stored state with every throw."""
    top.catch(event)
    top.bpmn_events = [e for e in top.bpmn_events if e is not event]


def check_process(name: str, root: etree._Element, proc: etree._Element, lanes: dict[str, Any],
                  problems: list[Problem], warnings: list[Problem]) -> None:
    """Camunda's structural rules for one executable process (see the module docstring)."""
    messages = {str(m.get("id")) for m in root.iterfind("bpmn:message", NS)}
    for flow in proc.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        if not flow.get("id"):
            problems.append(Problem(name, f"sequence flow from '{flow.get('sourceRef')}' to '{flow.get('targetRef')}' "
                                          "has no id; give it one (Camunda Modeler always does)",
                                    element=flow.get("sourceRef"), line=flow.sourceline))
    for holder in proc.iter(f"{{{BPMN_NS}}}messageEventDefinition", f"{{{BPMN_NS}}}receiveTask"):
        is_task = etree.QName(holder).localname == "receiveTask"
        # A catching event must know its message; a throwing one without it throws nothing (Camunda).
        if is_task or etree.QName(holder.getparent()).localname in CATCHING or holder.get("messageRef"):
            _check_message_ref(name, holder, holder if is_task else holder.getparent(), messages, problems)
    for task in proc.iter(f"{{{BPMN_NS}}}userTask"):
        key = (task.get(f"{{{CAMUNDA_NS}}}formKey") or "").strip()
        if is_html_form_key(key):
            problems.append(Problem(name, f"form key '{key}' names an HTML form, which only Camunda's Tasklist "
                                          "can show; "
                                          "use camunda:formData fields, a Camunda Form (camunda:formRef or "
                                          "'camunda-forms:deployment:NAME.form' with the .form file beside the BPMN "
                                          "file), or a JSON Schema form key",
                                    element=task.get("id"), line=task.sourceline))
        named = any(task.get(f"{{{CAMUNDA_NS}}}{a}") for a in ("assignee", "candidateUsers", "candidateGroups"))
        if not named and not _in_lane(task, lanes):
            warnings.append(Problem(name, "user task names no assignee, candidates or lane: every user of the "
                                          f"directory may claim it (or set the process property "
                                          f"{DEFAULT_GROUP_PROPERTY})", element=task.get("id"), line=task.sourceline))


_NO_MESSAGE_REF = {
    "receiveTask": "receive task has no messageRef: it would wait for a trigger nothing can send; name a "
                   "bpmn:message and deliver it with 'tigao message NAME'",
    "event": "message event has no messageRef: it cannot be told which message it sends or waits for; add a "
             "bpmn:message and set messageRef",
}


def _check_message_ref(name: str, holder: etree._Element, element: etree._Element, messages: set[str],
                       problems: list[Problem]) -> None:
    """`holder` carries the messageRef (a receive task, or an event's definition) of `element`."""
    is_task = etree.QName(holder).localname == "receiveTask"
    ref = holder.get("messageRef")
    if not ref:
        problems.append(Problem(name, _NO_MESSAGE_REF["receiveTask" if is_task else "event"],
                                element=element.get("id"), line=holder.sourceline))
    elif ref not in messages:
        what = "receive task" if is_task else "message event"
        problems.append(Problem(name, f"{what} names message '{ref}', which is not defined in this file",
                                element=element.get("id"), line=holder.sourceline))


def _in_lane(task: etree._Element, lanes: dict[str, Any]) -> bool:
    node: etree._Element | None = task
    while node is not None:
        if str(node.get("id")) in lanes:
            return True
        node = node.getparent()
        if node is not None and etree.QName(node).localname == "process":
            return False
    return False


# ---------------------------------------------------------------------------------------------
# calledElement="${expression}": the called process is chosen at run time

CALLED_KEY = "called_element"


def is_dynamic_call(called: str | None) -> bool:
    """Whether a calledElement is an expression (`${var}`), resolved when the activity starts."""
    text = (called or "").strip()
    return text.startswith(("${", "#{")) and text.endswith("}")


class DynamicCallActivityMixin:
    """Evaluates calledElement when the activity starts and remembers the answer in the task, so
    a reload (and a replay) finds the same called process. The target must be one of the
    processes deployed with the caller (every process of its bundle)."""

    def start_workflow(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        name = my_task.internal_data.get(CALLED_KEY)
        if name is None:
            name = str(my_task.workflow.script_engine.evaluate(my_task, self.spec))  # type: ignore[attr-defined]
            my_task.internal_data[CALLED_KEY] = name
        if name not in top.subprocess_specs or top.subprocess_specs[name] is None:
            known = ", ".join(sorted(k for k, v in top.subprocess_specs.items() if v is not None)) or "none"
            called = self.spec  # type: ignore[attr-defined]
            raise WorkflowTaskException(f"calledElement {called} is '{name}', which is not a process deployed "
                                        f"with this one (known: {known})", task=my_task)
        subworkflow = top.create_subprocess(my_task, name)
        subworkflow.completed_event.connect(self._on_subworkflow_completed, my_task)  # type: ignore[attr-defined]
        self.copy_data(my_task, subworkflow)  # type: ignore[attr-defined]
        subworkflow.get_next_task(spec_name="Start").run()


_DYNAMIC: dict[type, type] = {}


def dynamic_calls(specs: list[Any]) -> None:
    """Give every call activity whose calledElement is an expression the run-time resolution."""
    for spec in specs:
        for ts in spec.task_specs.values():
            if isinstance(ts, CallActivity) and is_dynamic_call(ts.spec):
                cls = type(ts)
                sub = _DYNAMIC.get(cls)
                if sub is None:
                    sub = _DYNAMIC[cls] = type(f"Dynamic{cls.__name__}", (DynamicCallActivityMixin, cls), {})
                ts.__class__ = sub


def subprocess_specs(parser: Any, key: str) -> dict[str, Any]:
    """The called processes of `key`; with a run-time calledElement, every process of the files."""
    used = parser.get_subprocess_specs(key, require_call_activity_specs=False)
    dynamic = [k for k in used if is_dynamic_call(k)]
    if not dynamic:
        return dict(used)
    for k in dynamic:
        used.pop(k)
    for pid in parser.get_process_ids():
        if pid != key and pid not in used:
            used[pid] = parser.get_spec(pid)
            parser.get_subprocess_specs(pid, used, require_call_activity_specs=False)
    return {k: v for k, v in used.items() if not is_dynamic_call(k)}


def schema_view(root: etree._Element) -> etree._Element:
    """The tree the BPMN schema checks: the XSD types calledElement as a QName, which an expression
    is not, so a copy with a placeholder stands in for diagrams that call by expression."""
    calls = [c for c in root.iter(f"{{{BPMN_NS}}}callActivity") if is_dynamic_call(c.get("calledElement"))]
    if not calls:
        return root
    from copy import deepcopy

    view = deepcopy(root)
    for c in view.iter(f"{{{BPMN_NS}}}callActivity"):
        if is_dynamic_call(c.get("calledElement")):
            c.set("calledElement", "calledByExpression")
    return view
