"""BPMN constructs that deploy cleanly but that the engine cannot run: refused at deployment, by
name, with what to use instead, rather than accepted and left waiting forever (or, worse, skipped).
"""

from __future__ import annotations

from typing import Any

from .errors import Problem

# SpiffWorkflow 3.2 parses a link event as a plain event (the flow after a link throw ends there and
# the link catch is never reached); it has no compensation; it evaluates a conditional event only
# when something refreshes the waiting task, which nothing in the engine does on a data change.
_REFUSED = {
    "linkEventDefinition": "link events are not supported; connect the two parts with a sequence flow",
    "compensateEventDefinition": "compensation events are not supported; model the undo step explicitly "
                                 "(an error boundary leading to it, for example)",
    "conditionalEventDefinition": "conditional events are not supported; wait for a message or a signal, "
                                  "or decide with an exclusive gateway",
}


def check(name: str, proc: Any, ns: dict[str, str], problems: list[Problem]) -> None:
    """Append a problem for every event definition in `proc` that the engine cannot run."""
    for tag, why in _REFUSED.items():
        for node in proc.iterfind(f".//bpmn:{tag}", ns):
            event = node.getparent()
            problems.append(Problem(name, why, element=event.get("id"), line=node.sourceline))
    for sub in proc.iterfind(".//bpmn:subProcess[@triggeredByEvent='true']", ns):
        for start in sub.iterfind("bpmn:startEvent", ns):
            # A timer start runs; an error start fired as soon as the instance started, and the
            # message and signal starts are not projected as subscriptions, so none is accepted.
            for tag in ("messageEventDefinition", "signalEventDefinition", "errorEventDefinition",
                        "escalationEventDefinition"):
                if start.find(f"bpmn:{tag}", ns) is not None:
                    kind = tag[:-len("EventDefinition")]
                    problems.append(Problem(
                        name, f"an event subprocess started by {'an' if kind[0] in 'e' else 'a'} {kind} is not supported yet; "
                              f"put {'an' if kind[0] in 'e' else 'a'} {kind} boundary event on a subprocess "
                              "around the work instead",
                        element=start.get("id"), line=start.sourceline))
