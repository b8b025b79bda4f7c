"""Service tasks as Camunda 7 writes them: what each one's implementation is, checked at deployment.

A service task (and a send task or an intermediate/end message throw event written the same way)
is one of:

* ``camunda:type="external" camunda:topic="T"``: an external task, fetched and locked by a worker
  (engine/external.py, `/engine-rest/external-task/...`);
* ``camunda:delegateExpression="${name}"``, ``camunda:class="a.b.Name"`` or
  ``camunda:expression="${name.method(...)}"``: an in-process handler, a Python callable registered
  under the entry point group ``tigao.handlers`` as ``name`` (engine/handlers.py), run by the worker.

Anything else (no implementation, a connector, a name no handler is registered under) would wait
forever, so it is refused at deployment, naming the element and the fix. A business rule task
written this way (and without a `camunda:decisionRef`) is parsed as a service task and runs the
same way; one naming both a decision and an implementation is refused. SpiffWorkflow leaves a
service task STARTED when it runs it; the engine keeps every such task STARTED (the wait state) and
projects it into `external_tasks` until its result arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import Problem

if TYPE_CHECKING:
    from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
ALWAYS = ("serviceTask",)  # must name an implementation
WHEN_MARKED = ("sendTask", "businessRuleTask", "intermediateThrowEvent", "endEvent")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ServiceMeta:
    """How one element is implemented: an external topic, or a handler name."""

    element_id: str
    topic: str | None = None
    handler: str | None = None
    priority: str | None = None
    retries: str | None = None
    retry_cycle: str | None = None  # camunda:failedJobRetryTimeCycle as written (engine/retry_cycle.py)

    @property
    def external(self) -> bool:
        return self.topic is not None


def _attr(el: etree._Element, name: str) -> str | None:
    value = el.get(f"{{{CAMUNDA_NS}}}{name}")
    return value.strip() if value and value.strip() else None


def handler_name(el: etree._Element) -> str | None:
    """The handler an element names: `${name}`, a class's last name part, or `${name.method()}`."""
    delegate = _attr(el, "delegateExpression")
    if delegate:
        m = _IDENT.search(delegate.strip("${}# "))
        return m.group(0) if m else delegate
    cls = _attr(el, "class")
    if cls:
        return cls
    expr = _attr(el, "expression")
    if expr:
        m = _IDENT.search(expr.strip("${}# "))
        return m.group(0) if m else expr
    return None


def _implementation_node(el: etree._Element) -> etree._Element:
    # An intermediate/end message throw carries the attributes on its messageEventDefinition.
    med = el.find("bpmn:messageEventDefinition", NS)
    if med is not None and (_attr(med, "type") or handler_name(med)):
        return med
    return el


def meta_of(el: etree._Element) -> ServiceMeta | None:
    """The implementation of one element, or None when it has none of its own."""
    node = _implementation_node(el)
    eid = str(el.get("id"))
    if _attr(node, "type") == "external":
        return ServiceMeta(eid, topic=_attr(node, "topic") or "", priority=_attr(node, "taskPriority"),
                           retries=_retries(el), retry_cycle=_cycle_text(el))
    name = handler_name(node)
    if name:
        return ServiceMeta(eid, handler=name, retries=_retries(el), retry_cycle=_cycle_text(el))
    return None


def _cycle_text(el: etree._Element) -> str | None:
    node = el.find("bpmn:extensionElements/camunda:failedJobRetryTimeCycle", NS)
    if node is None:
        return None
    return " ".join((node.text or "").split()) or ""


def _retries(el: etree._Element) -> str | None:
    # camunda:failedJobRetryTimeCycle R3/PT5M: the handler's retries (the count only).
    node = el.find("bpmn:extensionElements/camunda:failedJobRetryTimeCycle", NS)
    if node is not None and node.text:
        m = re.match(r"R(\d+)", node.text.strip())
        if m:
            return m.group(1)
    return None


def collect(tree: etree._Element) -> dict[str, ServiceMeta]:
    """Every element of a BPMN tree that has an implementation, by element id."""
    found: dict[str, ServiceMeta] = {}
    for tag in ALWAYS + WHEN_MARKED:
        for el in tree.iter(f"{{{BPMN_NS}}}{tag}"):
            meta = meta_of(el)
            if meta is not None:
                found[meta.element_id] = meta
    return found


def check(file: str, proc: etree._Element, problems: list[Problem], registered: set[str] | None) -> None:
    """Refuse what could never proceed: a service task with no implementation the engine runs.

    `registered` is the handler names installed here; None skips that check (a stored version is
    rebuilt whatever is installed: a missing handler is then an incident, not a lost instance).
    """
    for tag in ALWAYS + WHEN_MARKED:
        for el in proc.iter(f"{{{BPMN_NS}}}{tag}"):
            if el.get("isForCompensation") == "true":
                continue  # compensation handlers are refused (or not) by the event rules
            eid = el.get("id")
            node = _implementation_node(el)
            kind = _attr(node, "type")
            meta = meta_of(el)
            if meta is not None and meta.retry_cycle is not None:
                from .retry_cycle import parse

                try:
                    parse(meta.retry_cycle)
                except ValueError as exc:
                    problems.append(Problem(file, f"{exc}; write Rn/DURATION (R3/PT5M: three attempts, five "
                                                  "minutes apart) or a list of durations (PT1M,PT10M)",
                                            element=eid, line=el.sourceline))
            if tag == "businessRuleTask" and meta is not None and el.get(f"{{{CAMUNDA_NS}}}decisionRef"):
                problems.append(Problem(file, "business rule task names both a decision (camunda:decisionRef) and "
                                              "an implementation (camunda:type or a handler); keep one of them",
                                        element=eid, line=el.sourceline))
            elif kind is not None and kind != "external":
                problems.append(Problem(file, f"camunda:type='{kind}' is not supported; use "
                                              "camunda:type=\"external\" with a camunda:topic", element=eid,
                                        line=el.sourceline))
            elif meta is not None and meta.external and not meta.topic:
                problems.append(Problem(file, "an external task needs a camunda:topic that workers fetch",
                                        element=eid, line=el.sourceline))
            elif meta is not None and meta.handler is not None and registered is not None \
                    and meta.handler not in registered:
                known = ", ".join(sorted(registered)) or "none"
                problems.append(Problem(file, f"no handler '{meta.handler}' is registered (entry point group "
                                              f"'tigao.handlers'; registered: {known}); register one, or make it "
                                              "an external task with camunda:type=\"external\" camunda:topic=\"...\"",
                                        element=eid, line=el.sourceline))
            elif meta is None and tag in ALWAYS:
                connector = el.find("bpmn:extensionElements/camunda:connector", NS) is not None
                why = "a connector is not supported" if connector else "it names no implementation"
                problems.append(Problem(file, f"service task would wait forever: {why}; make it an external "
                                              "task (camunda:type=\"external\" camunda:topic=\"...\") or name a "
                                              "registered handler (camunda:delegateExpression=\"${name}\")",
                                        element=eid, line=el.sourceline))


def _business_rule_parser() -> type:
    """The parser of `bpmn:businessRuleTask`: one written as a service (`camunda:type="external"` or a
    handler, no `camunda:decisionRef`) becomes a service task, as Camunda runs it; any other is a
    DMN decision as before."""
    from SpiffWorkflow.bpmn.specs.defaults import ServiceTask
    from SpiffWorkflow.camunda.parser.task_spec import BusinessRuleTaskParser

    class ServiceAwareBusinessRuleTaskParser(BusinessRuleTaskParser):  # type: ignore[misc]
        def create_task(self) -> Any:
            if not self.node.get(f"{{{CAMUNDA_NS}}}decisionRef") and meta_of(self.node) is not None:
                return ServiceTask(self.spec, self.bpmn_id, **self.bpmn_attributes)
            return super().create_task()

        @staticmethod
        def get_decision_ref(node: Any) -> Any:
            # Read by the parser for every business rule task, including the ones run as services.
            return node.attrib.get(f"{{{CAMUNDA_NS}}}decisionRef")

    return ServiceAwareBusinessRuleTaskParser


def _business_rule() -> tuple[type, type]:
    from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask

    return _business_rule_parser(), BusinessRuleTask


BUSINESS_RULE = _business_rule()  # (parser, spec class) of bpmn:businessRuleTask, for engine/spiff.py


class _Waits:
    """Mixed into a spec whose work is done outside the engine: running it leaves it STARTED."""

    def _run_hook(self, my_task: Any) -> None:
        return None


_WAITING_CLASSES: dict[type, type] = {}


def apply(specs: list[Any], metas: dict[str, ServiceMeta]) -> None:
    """Attach each element's implementation to its spec; make the ones that would not wait, wait.

    Specs are rebuilt from the definition files and never serialised, so a subclass and an
    attribute on them change nothing in the stored state.
    """
    for spec in specs:
        for ts in spec.task_specs.values():
            meta = metas.get(getattr(ts, "bpmn_id", None) or "")
            if meta is None:
                continue
            ts.tigao_service = meta
            cls = type(ts)
            if cls.__name__ == "ServiceTask":
                continue  # SpiffWorkflow's service task already waits (STARTED)
            waiting = _WAITING_CLASSES.get(cls)
            if waiting is None:
                waiting = type(f"Waiting{cls.__name__}", (_Waits, cls), {})
                _WAITING_CLASSES[cls] = waiting
            ts.__class__ = waiting


def service_of(task_spec: Any) -> ServiceMeta | None:
    return getattr(task_spec, "tigao_service", None)
