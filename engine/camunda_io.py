"""Camunda's variable mappings: `camunda:inputOutput` on activities, `camunda:in`/`camunda:out`
on call activities.

* **Input parameters** are evaluated when the activity is entered and are the activity's local
  variables: they are visible to its form, script or called process, and vanish when it ends
  (a variable of the same name outside is restored).
* **Output parameters** are evaluated when the activity ends, in its scope (so they see the input
  parameters and what the task produced), and are written to the process.
* A parameter is a text (a `${...}`/`#{...}` expression, a text with embedded expressions, or a
  literal), a `camunda:list` or a `camunda:map` of those; an empty parameter is null. Script
  parameters (`camunda:script`) are refused at deployment: scripts are written as script tasks.
* **Call activities:** `camunda:in source="a" target="b"`, `sourceExpression="${...}"`, and
  `variables="all"` choose what the called process starts with; `camunda:out` the same on the
  way back. A call activity without any `camunda:in` passes all variables, and one without
  `camunda:out` takes all of the called process's variables back (Tigao's behaviour before these
  mappings; Camunda would pass none).
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
_EMBEDDED = re.compile(r"[$#]\{([^}]*)\}")
LOCALS_KEY = "camunda_io_locals"

Value = tuple[str, Any]  # ("null", None) | ("text", str) | ("expr", str) | ("concat", [...]) | ("list", [...]) | ("map", [...])


def _c(tag: str) -> str:
    return f"{{{CAMUNDA_NS}}}{tag}"


@dataclass
class Mapping:
    source: str | None = None
    target: str | None = None
    expression: str | None = None
    all: bool = False


@dataclass
class IO:
    inputs: list[tuple[str, Value]] = field(default_factory=list)
    outputs: list[tuple[str, Value]] = field(default_factory=list)
    ins: list[Mapping] = field(default_factory=list)
    outs: list[Mapping] = field(default_factory=list)


def _value(node: etree._Element) -> Value:
    children = [c for c in node if isinstance(c.tag, str)]
    if children:
        child = children[0]
        tag = etree.QName(child).localname
        if tag == "list":
            return ("list", [_value(v) for v in child if isinstance(v.tag, str)])
        if tag == "map":
            return ("map", [(str(e.get("key")), _value(e)) for e in child if isinstance(e.tag, str)])
        if tag == "script":
            raise ValueError("script parameters are not supported; compute the value in a script task (Python)")
        raise ValueError(f"unknown parameter content camunda:{tag}")
    return _text_value(node.text)


def _text_value(text: str | None) -> Value:
    raw = (text or "").strip()
    if not raw:
        return ("null", None)
    if raw.startswith(("${", "#{")) and raw.endswith("}") and len(_EMBEDDED.findall(raw)) == 1:
        return ("expr", raw)
    if _EMBEDDED.search(raw):
        parts: list[Value] = []
        pos = 0
        for m in _EMBEDDED.finditer(raw):
            if m.start() > pos:
                parts.append(("text", raw[pos:m.start()]))
            parts.append(("expr", m.group(0)))
            pos = m.end()
        if pos < len(raw):
            parts.append(("text", raw[pos:]))
        return ("concat", parts)
    return ("text", text or "")


def parse(element: etree._Element) -> IO | None:
    """The mappings of one activity, or None; ValueError naming what is not supported."""
    io = IO()
    ext = element.find(f"{{{BPMN_NS}}}extensionElements")
    if ext is None:
        return None
    for block in ext.iterfind(_c("inputOutput")):
        for p in block.iterfind(_c("inputParameter")):
            io.inputs.append((str(p.get("name")), _value(p)))
        for p in block.iterfind(_c("outputParameter")):
            io.outputs.append((str(p.get("name")), _value(p)))
    for tag, target in (("in", io.ins), ("out", io.outs)):
        for m in ext.iterfind(_c(tag)):
            if m.get("businessKey") is not None and m.get("source") is None and m.get("variables") is None:
                continue  # the business key travels with the instance anyway
            mapping = Mapping(m.get("source"), m.get("target"), m.get("sourceExpression"), m.get("variables") == "all")
            if not mapping.all and not mapping.target:
                raise ValueError(f"camunda:{tag} needs a target (or variables=\"all\")")
            if not mapping.all and not (mapping.source or mapping.expression):
                raise ValueError(f"camunda:{tag} needs a source or a sourceExpression")
            target.append(mapping)
    if not (io.inputs or io.outputs or io.ins or io.outs):
        return None
    return io


def expressions(proc: etree._Element) -> list[tuple[etree._Element, str]]:
    """Every expression in the mappings of a process, for the deployment check."""
    out: list[tuple[etree._Element, str]] = []
    for p in proc.iter(_c("inputParameter"), _c("outputParameter"), _c("entry"), _c("value")):
        raw = (p.text or "").strip()
        for m in _EMBEDDED.finditer(raw):
            out.append((p, m.group(0)))
    for m in proc.iter(_c("in"), _c("out")):
        if m.get("sourceExpression"):
            out.append((m, str(m.get("sourceExpression"))))
    return out


def check(file: str, proc: etree._Element, problems: list[Problem]) -> None:
    """Refuse mappings Tigao cannot run (script parameters, incomplete in/out), by element."""
    for el in proc.iter():
        if not isinstance(el.tag, str) or el.find(f"{{{BPMN_NS}}}extensionElements") is None:
            continue
        try:
            parse(el)
        except ValueError as exc:
            problems.append(Problem(file, str(exc), element=el.get("id"), line=el.sourceline))


def collect(root: etree._Element) -> dict[tuple[str, str], IO]:
    """(owning process or subprocess id, element id) -> mappings, for every mapped activity."""
    found: dict[tuple[str, str], IO] = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or el.get("id") is None:
            continue
        io = parse(el) if el.find(f"{{{BPMN_NS}}}extensionElements") is not None else None
        if io is not None:
            owner = el.getparent()
            while owner is not None and etree.QName(owner).localname not in ("process", "subProcess", "transaction"):
                owner = owner.getparent()
            if owner is not None:
                found[(str(owner.get("id")), str(el.get("id")))] = io
    return found


def _eval(task: Any, value: Value) -> Any:
    kind, body = value
    if kind == "null":
        return None
    if kind == "text":
        return body
    if kind == "expr":
        return task.workflow.script_engine.evaluate(task, body)
    if kind == "concat":
        return "".join(p[1] if p[0] == "text" else str(_eval(task, p)) for p in body)
    if kind == "list":
        return [_eval(task, v) for v in body]
    return {k: _eval(task, v) for k, v in body}


class CamundaIOMixin:
    """Given to a task spec (by `apply`) whose element has mappings."""

    camunda_io: IO

    def _apply_inputs(self, my_task: Any) -> None:
        if self.camunda_io.inputs and LOCALS_KEY not in my_task.internal_data:
            values = [(name, _eval(my_task, v)) for name, v in self.camunda_io.inputs]
            shadowed = {n: my_task.data[n] for n, _ in values if n in my_task.data}
            my_task.internal_data[LOCALS_KEY] = {"names": [n for n, _ in values], "shadowed": deepcopy(shadowed)}
            for name, value in values:
                my_task.data[name] = value

    def _update_hook(self, my_task: Any) -> Any:
        # The inputs go on top of the data the task inherited (a call activity applies them
        # before it copies data into the called process, in copy_data).
        result = super()._update_hook(my_task)  # type: ignore[misc]
        self._apply_inputs(my_task)
        return result

    def _on_complete_hook(self, my_task: Any) -> None:
        outputs = [(name, _eval(my_task, v)) for name, v in self.camunda_io.outputs]
        local = my_task.internal_data.get(LOCALS_KEY)
        if local:
            for name in local["names"]:
                my_task.data.pop(name, None)
            my_task.data.update(deepcopy(local["shadowed"]))
        for name, value in outputs:
            my_task.data[name] = value
        super()._on_complete_hook(my_task)  # type: ignore[misc]

    def copy_data(self, my_task: Any, subworkflow: Any) -> None:
        self._apply_inputs(my_task)
        if not self.camunda_io.ins:
            super().copy_data(my_task, subworkflow)  # type: ignore[misc]
            return
        start = subworkflow.get_next_task(subworkflow.task_tree, skip_subprocesses=True, spec_name="Start")
        start.set_data(**_mapped(my_task, my_task, self.camunda_io.ins))

    def update_data(self, my_task: Any, subworkflow: Any) -> None:
        if not self.camunda_io.outs:
            super().update_data(my_task, subworkflow)  # type: ignore[misc]
            return
        last = subworkflow.last_task
        my_task.data.update(_mapped(last, my_task, self.camunda_io.outs))


def _mapped(source_task: Any, _target_task: Any, mappings: list[Mapping]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for m in mappings:
        if m.all:
            data.update(deepcopy(source_task.data))
        elif m.expression:
            data[str(m.target)] = source_task.workflow.script_engine.evaluate(source_task, m.expression)
        else:
            data[str(m.target)] = deepcopy(source_task.data.get(str(m.source)))
    return data


_CLASSES: dict[type, type] = {}


def apply(specs: list[Any], mappings: dict[tuple[str, str], IO]) -> None:
    """Give every mapped task spec the mapping behaviour (same state, a subclass)."""
    if not mappings:
        return
    for spec in specs:
        for ts in spec.task_specs.values():
            io = mappings.get((spec.name, getattr(ts, "bpmn_id", None) or ""))
            if io is None:
                continue
            cls = type(ts)
            sub = _CLASSES.get(cls)
            if sub is None:
                sub = _CLASSES[cls] = type(f"CamundaIO{cls.__name__}", (CamundaIOMixin, cls), {})
            ts.__class__ = sub
            ts.camunda_io = io
