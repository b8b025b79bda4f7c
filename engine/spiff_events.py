"""SpiffWorkflow's events on the engine's terms: timers on the engine's clock (Camunda Modeler's
literal `P3D`, `${expr}` or a quoted Python string), messages and signals, and the event parsers
that build them. (Part of the engine's plug into SpiffWorkflow; see engine/spiff.py.)

Timers ask the engine's clock (through the workflow's script engine), never the wall clock.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent, PendingBpmnEvent
from SpiffWorkflow.bpmn.parser.event_parsers import ReceiveTaskParser, SendTaskParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessageEventDefinition
from SpiffWorkflow.bpmn.parser.util import first
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from . import cron, eventsub
from .camunda import catch_or_drop
from . import limits
from .scripting import is_expression
from .timeutil import add_iso_duration, parse_cycle, parse_datetime, skip_past

# ---------------------------------------------------------------------------------------------
# Timers on the engine's clock


def _now(my_task: Any) -> datetime:
    return my_task.workflow.top_workflow.script_engine.clock.now()


def timer_text(my_task: Any, expression: str) -> str:
    """The timer value of a task: a literal, or the value of `${expr}` / a quoted Python string."""
    text = (expression or "").strip()
    if is_expression(text) or text[:1] in ("'", '"'):
        value = my_task.workflow.script_engine.evaluate(my_task, text)
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return text


FIRED_KEY = "fired_occurrences"


def _record_fired(my_task: Any, due: str) -> None:
    """Note an occurrence that fired in this step; the engine turns it into a history event."""
    my_task.internal_data.setdefault(FIRED_KEY, []).append(due)


def pop_fired(my_task: Any) -> list[str]:
    return list(my_task.internal_data.pop(FIRED_KEY, []) or [])


SKIPPED_KEY = "skipped_occurrences"


def pop_skipped(my_task: Any) -> int:
    """Occurrences of a cycle that the bounded catch-up skipped in this step."""
    return int(my_task.internal_data.pop(SKIPPED_KEY, 0) or 0)


class _OneShot:
    def _due(self, my_task: Any) -> str:
        raise NotImplementedError

    def has_fired(self, my_task: Any) -> bool:
        value = my_task._get_internal_data("event_value")
        if value is None:
            value = self._due(my_task)
            my_task._set_internal_data(event_value=value)
        if not my_task._get_internal_data("event_fired", False) and datetime.fromisoformat(value) <= _now(my_task):
            my_task._set_internal_data(event_fired=True)
            _record_fired(my_task, value)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockTimeDate(_OneShot, TimeDateEventDefinition):
    def _due(self, my_task: Any) -> str:
        return parse_datetime(timer_text(my_task, self.expression)).isoformat()


class ClockDuration(_OneShot, DurationTimerEventDefinition):
    def _due(self, my_task: Any) -> str:
        return add_iso_duration(_now(my_task), timer_text(my_task, self.expression)).isoformat()


class ClockCycle(CycleTimerEventDefinition):
    """A repeating timer. Each update fires at most one occurrence, so a worker catching up after
    downtime fires missed occurrences once each, in order; a bounded catch-up: after
    `TIGAO_TIMER_CATCHUP` late occurrences in a row, the rest up to now are skipped (counted in the
    history) and the cycle goes on from its first occurrence after now."""

    def cycle_complete(self, my_task: Any) -> bool:
        value = my_task._get_internal_data("event_value")
        if value is None:
            text = timer_text(my_task, self.expression)
            if cron.is_quartz(text):  # Quartz cron: runs until the event is left (engine/cron.py)
                value = {"cycles": -1, "next": cron.next_after(text, _now(my_task)).isoformat(), "cron": text,
                         "fired": 0}
            else:
                cycle = parse_cycle(text, _now(my_task))
                value = {"cycles": cycle.repetitions, "next": cycle.start.isoformat(),
                         "interval": cycle.interval_text, "fired": 0}
        ready = False
        if value["cycles"] != 0:
            nxt = datetime.fromisoformat(value["next"])
            now = _now(my_task)
            if nxt <= now:
                _record_fired(my_task, value["next"])
                nxt = (cron.next_after(value["cron"], nxt) if "cron" in value
                       else add_iso_duration(nxt, value["interval"]))
                value["cycles"] -= 1
                value["fired"] = value.get("fired", 0) + 1
                value["behind"] = value.get("behind", 0) + 1 if nxt <= now else 0
                if value["behind"] >= limits.current().timer_catchup and value["cycles"] != 0:
                    if "cron" in value:  # a cron cycle jumps to its next time after now
                        skipped, nxt = 0, cron.next_after(value["cron"], now)
                    else:
                        skipped, nxt = skip_past(nxt, value["interval"], now)
                    if 0 < value["cycles"] <= skipped:
                        skipped, value["cycles"] = value["cycles"], 0
                    elif value["cycles"] > 0:
                        value["cycles"] -= skipped
                    value["behind"] = 0
                    my_task.internal_data[SKIPPED_KEY] = my_task.internal_data.get(SKIPPED_KEY, 0) + skipped
                value["next"] = nxt.isoformat()
                ready = True
        else:
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=value)
        return ready

    def details(self, my_task: Any) -> PendingBpmnEvent:
        value = my_task._get_internal_data("event_value")
        nxt = value["next"] if value is not None and value["cycles"] != 0 else None
        return PendingBpmnEvent(self.name, self.__class__.__name__, nxt)


def next_timer_due(my_task: Any) -> datetime | None:
    """When a waiting timer task next needs the worker, or None if it is not a timer."""
    ev = getattr(my_task.task_spec, "event_definition", None)
    if isinstance(ev, MultipleEventDefinition):  # an event-based gateway: its timer branch
        ev = next((e for e in ev.event_definitions if isinstance(e, (ClockTimeDate, ClockDuration, ClockCycle))),
                  None)
    if not isinstance(ev, (ClockTimeDate, ClockDuration, ClockCycle)):
        return None
    value = my_task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(ev, ClockCycle):
        if value["cycles"] == 0:
            return _now(my_task)
        return datetime.fromisoformat(value["next"])
    return datetime.fromisoformat(value)


class _TimerParsing:
    """Creates the clock-aware timer definitions; refuses values that cannot be parsed."""

    def parse_timer_event(self, event: Any) -> Any:
        description = self.get_event_description(event)  # type: ignore[attr-defined]
        name = self.node.get("name", self.node.get("id"))  # type: ignore[attr-defined]
        for tag, cls, kind in (("timeDate", ClockTimeDate, "date"), ("timeDuration", ClockDuration, "duration"),
                               ("timeCycle", ClockCycle, "cycle")):
            node = first(self.xpath(f".//bpmn:{tag}"))  # type: ignore[attr-defined]
            if node is not None:
                return cls(name, (node.text or "").strip(), description=description)
        raise ValidationException("a timer event needs a timeDate, timeDuration or timeCycle",
                                  node=self.node, file_name=self.filename)  # type: ignore[attr-defined]


class TigaoMessageEventDefinition(CamundaMessageEventDefinition):
    """A message whose payload (a JSON object) becomes process variables of the receiving task,
    unless the diagram names a `camunda:resultVariable` to hold it."""

    def throw(self, my_task: Any) -> None:
        payload = my_task.workflow.script_engine.evaluate(my_task, self.expression) if self.expression else None
        catch_or_drop(my_task.workflow.top_workflow, BpmnEvent(self, payload={"payload": payload,
                                                                             "result_var": self.result_var}))

    def update_internal_data(self, my_task: Any, event: Any) -> None:
        my_task.internal_data[self.name] = event.payload

    def update_task_data(self, my_task: Any) -> None:
        event_data = my_task.internal_data.get(self.name)
        if event_data is None:
            return
        payload = event_data.get("payload")
        if self.result_var:
            my_task.data[self.result_var] = payload
        elif isinstance(payload, dict):
            my_task.data.update(deepcopy(payload))
        elif payload is not None:
            my_task.data[f"{my_task.task_spec.bpmn_id}_payload"] = payload


def message_catchers(tasks: list[Any], name: str | None = None) -> list[tuple[Any, Any]]:
    """(waiting task, message definition) of the tasks that catch message `name` (any, if None):
    message catches, boundaries, receive tasks and the message branches of event-based gateways."""
    found = []
    for t in tasks:
        ev = getattr(t.task_spec, "event_definition", None)
        options = ev.event_definitions if isinstance(ev, MultipleEventDefinition) else [ev]
        found.extend((t, e) for e in options
                     if isinstance(e, TigaoMessageEventDefinition) and (name is None or e.name == name))
    return found


def send_message(workflow: Any, task: Any, ev: Any, data: Any) -> None:
    """Deliver a message to a waiting task (live and in replay: one code path)."""
    workflow.send_event(BpmnEvent(ev, payload={"payload": data, "result_var": None}))
    if isinstance(task.task_spec.event_definition, MultipleEventDefinition) and isinstance(data, dict):
        # An event-based gateway keeps no payload of its own: its branch gets it as variables.
        task.data.update(deepcopy(data))


class TigaoSignalEventDefinition(SignalEventDefinition):
    """A signal: caught inside the instance that throws it, and broadcast by the engine to every
    other instance waiting for it (engine/signals.py). As in Camunda, a thrown signal carries no
    process variables; a signal sent from outside (`tigao signal --data`) carries its payload."""

    def throw(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        top.catch(BpmnEvent(self, payload={}))
        # Read (and cleared) by the command that ran this step, which broadcasts after commit.
        top.__dict__.setdefault("tigao_thrown_signals", []).append(self.name)

    def update_task_data(self, my_task: Any) -> None:
        payload = my_task.internal_data.get(self.name)
        if isinstance(payload, dict):
            my_task.data.update(deepcopy(payload))


def pop_thrown_signals(workflow: Any) -> list[str]:
    """The names of the signals thrown since the last call; unmatched ones leave the state too."""
    names = workflow.__dict__.pop("tigao_thrown_signals", [])
    if names:
        workflow.bpmn_events = [e for e in workflow.bpmn_events
                                if not isinstance(e.event_definition, TigaoSignalEventDefinition)]
    return list(names)


class _EventParsing(_TimerParsing):
    def parse_message_event(self, message_event: Any) -> Any:
        parsed = super().parse_message_event(message_event)  # type: ignore[misc]
        return TigaoMessageEventDefinition(parsed.name, parsed.correlation_properties, parsed.expression,
                                           parsed.result_var, description=parsed.description)

    def parse_signal_event(self, signal_event: Any) -> Any:
        parsed = super().parse_signal_event(signal_event)  # type: ignore[misc]
        return TigaoSignalEventDefinition(parsed.name, description=parsed.description)


class TigaoStartEventParser(_EventParsing, CamundaStartEventParser):
    def create_task(self) -> Any:
        node = self.node  # type: ignore[attr-defined]
        if not eventsub.in_event_subprocess(node):
            return super().create_task()
        # SpiffWorkflow reads no error or escalation trigger on a start event (it would start at once).
        from SpiffWorkflow.bpmn.parser import event_parsers as ep

        definition = self.get_event_definition([ep.MESSAGE_EVENT_XPATH, ep.SIGNAL_EVENT_XPATH, ep.TIMER_EVENT_XPATH,
                                                ep.ERROR_EVENT_XPATH, ep.ESCALATION_EVENT_XPATH])
        task = self._create_task(definition)
        self.spec.start.connect(task)  # type: ignore[attr-defined]
        return eventsub.mark_start(task, node)


class TigaoIntermediateCatchEventParser(_EventParsing, CamundaIntermediateCatchEventParser):
    pass


class TigaoBoundaryEventParser(_EventParsing, CamundaBoundaryEventParser):
    pass


class TigaoIntermediateThrowEventParser(_EventParsing, CamundaIntermediateThrowEventParser):
    pass


class TigaoEndEventParser(_EventParsing, CamundaEndEventParser):
    pass


class TigaoReceiveTaskParser(_EventParsing, CamundaEventDefinitionParser, ReceiveTaskParser):
    """A receive task with a message waits for it; `tigao message` delivers to it."""


class TigaoSendTaskParser(_EventParsing, CamundaEventDefinitionParser, SendTaskParser):
    """A send task throws its message like a throw event (and the state stays serialisable)."""
