"""Markers for one process instance, from what ``Engine.instance()`` reports: its human tasks
(open, completed, cancelled) and the events it waits on (timers, messages, ...)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ._overlay import Marker

# SpiffWorkflow's event definition class names -> what the badge shows.
_WAIT_KINDS = (("Time", "timer"), ("Duration", "timer"), ("Cycle", "timer"), ("Message", "message"),
               ("Signal", "signal"), ("Conditional", "conditional"), ("Escalation", "escalation"),
               ("Error", "error"))


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def wait_kind(event_class: str | None) -> str | None:
    """``DurationTimerEventDefinition`` -> ``timer``, ``MessageEventDefinition`` -> ``message``."""
    for needle, kind in _WAIT_KINDS:
        if event_class and needle in event_class:
            return kind
    return None


def instance_markers(instance: Mapping[str, Any]) -> dict[str, Marker]:
    """Element id -> Marker for ``render_svg``, from ``Engine.instance(id)``.

    Open tasks are ``active`` with their count (a multi-instance task waiting on three people
    shows 3); an element whose tasks are all done is ``completed``, all cancelled ``cancelled``;
    waiting events are ``waiting`` for their timer or message, with the due time in the tooltip.
    A cancelled instance marks its open work ``cancelled``.
    """
    states: dict[str, Counter[str]] = {}
    for task in instance.get("tasks") or []:
        element = _get(task, "element_id")
        if element:
            states.setdefault(str(element), Counter())[str(_get(task, "state"))] += 1
    instance_cancelled = instance.get("status") == "cancelled"
    markers: dict[str, Marker] = {}
    for element, counts in states.items():
        if counts.get("open"):
            markers[element] = (Marker("cancelled", count=counts["open"]) if instance_cancelled
                                else Marker("active", count=counts["open"]))
        elif counts.get("completed"):
            markers[element] = Marker("completed", count=counts["completed"] if counts["completed"] > 1 else None)
        elif counts.get("cancelled"):
            markers[element] = Marker("cancelled")
    for wait in instance.get("waiting") or []:
        element = _get(wait, "element")
        if not element:
            continue
        due = _get(wait, "due")
        note = f"due {due.isoformat() if hasattr(due, 'isoformat') else due}" if due else None
        markers[str(element)] = Marker("cancelled" if instance_cancelled else "waiting",
                                       waiting_for=None if instance_cancelled else wait_kind(_get(wait, "event")),
                                       note=note)
    return markers
