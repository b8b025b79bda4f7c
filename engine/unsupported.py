"""BPMN constructs that deploy cleanly but that the engine cannot run: refused at deployment, by
name, with what to use instead, rather than accepted and left waiting forever (or, worse, skipped).
"""

from __future__ import annotations

from typing import Any

from . import links
from .errors import Problem

# SpiffWorkflow 3.2 has no compensation; it evaluates a conditional event only when something
# refreshes the waiting task, which nothing in the engine does on a data change.
_REFUSED = {
    "compensateEventDefinition": "compensation events are not supported; model the undo step explicitly "
                                 "(an error boundary leading to it, for example)",
    "conditionalEventDefinition": "conditional events are not supported; wait for a message or a signal, "
                                  "or decide with an exclusive gateway",
}

_TRIGGERS = ("message", "signal", "timer", "error", "escalation")


def check(name: str, proc: Any, ns: dict[str, str], problems: list[Problem]) -> None:
    """Append a problem for every event definition in `proc` that the engine cannot run."""
    for tag, why in _REFUSED.items():
        for node in proc.iterfind(f".//bpmn:{tag}", ns):
            event = node.getparent()
            problems.append(Problem(name, why, element=event.get("id"), line=node.sourceline))
    links.check(name, proc, ns, problems)
    for sub in proc.iterfind(".//bpmn:subProcess[@triggeredByEvent='true']", ns):
        starts = sub.findall("bpmn:startEvent", ns)
        if len(starts) != 1:
            problems.append(Problem(name, f"an event subprocess needs exactly one start event, not {len(starts)}",
                                    element=sub.get("id"), line=sub.sourceline))
        for start in starts:
            kinds = [tag for tag in _TRIGGERS if start.find(f"bpmn:{tag}EventDefinition", ns) is not None]
            refused = any(start.find(f"bpmn:{tag}", ns) is not None for tag in _REFUSED)
            if not kinds and not refused:
                problems.append(Problem(name, "the start event of an event subprocess needs a trigger: a message, "
                                              "signal, timer, error or escalation", element=start.get("id"),
                                        line=start.sourceline))
            elif len(kinds) > 1:
                problems.append(Problem(name, "an event subprocess start event with several triggers is not "
                                              "supported; use one event subprocess per trigger",
                                        element=start.get("id"), line=start.sourceline))
            if start.find("bpmn:errorEventDefinition", ns) is not None and start.get("isInterrupting") == "false":
                problems.append(Problem(name, "an error start event always interrupts (BPMN); remove "
                                              "isInterrupting=\"false\"", element=start.get("id"),
                                        line=start.sourceline))
    # An embedded subprocess (or a transaction) starts when the flow reaches it: its start event
    # must be a plain one; a trigger there would never be waited for (BPMN, and Camunda's parser).
    for sub in proc.iter(f"{{{ns['bpmn']}}}subProcess", f"{{{ns['bpmn']}}}transaction"):
        if sub.get("triggeredByEvent") == "true":
            continue
        for start in sub.findall("bpmn:startEvent", ns):
            kinds = [tag for tag in _TRIGGERS if start.find(f"bpmn:{tag}EventDefinition", ns) is not None]
            if kinds:
                problems.append(Problem(name, f"the start event of embedded subprocess '{sub.get('id')}' has a "
                                              f"{kinds[0]} trigger; an embedded subprocess starts when the flow "
                                              "reaches it: use a plain start event, or make it an event "
                                              "subprocess (triggeredByEvent) or catch the event before it",
                                        element=start.get("id"), line=start.sourceline))
