"""Where the engine plugs into SpiffWorkflow: parser, task specs and serializer.

* Timers ask the engine's clock (through the workflow's script engine), never the wall clock,
  and accept timer values as Camunda Modeler writes them (a literal `P3D`), as `${expr}`, or as a
  quoted Python string (spiff-arena style).
* Parallel and inclusive joins merge branch data by write time: each branch keeps its own changes
  and when two branches wrote the same variable the later write wins (Camunda's process-variable
  semantics). SpiffWorkflow's default join merges whole branch copies, so a branch's stale copy of
  a variable could overwrite a value another branch had just submitted.
* The serializer leaves the process specs out of the stored state: they are rebuilt from the
  definition version's files (cached per process), so a save writes only the instance's own state.
"""

from __future__ import annotations

import contextvars
from copy import deepcopy
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, full_tag
from SpiffWorkflow.bpmn.parser.ProcessParser import ProcessParser
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    TaskConverter,
    WorkflowConverter,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.util.task import TaskIterator
from SpiffWorkflow.bpmn.specs.defaults import (
    BoundaryEvent,
    InclusiveGateway,
    IntermediateCatchEvent,
    ParallelGateway,
    StartEvent,
)
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent, PendingBpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.bpmn.parser.event_parsers import ReceiveTaskParser, SendTaskParser
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent, ReceiveTask, SendTask
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessageEventDefinition
from SpiffWorkflow.camunda.specs.multiinstance_task import ParallelMultiInstanceTask as CamundaParallelMI
from SpiffWorkflow.camunda.specs.multiinstance_task import SequentialMultiInstanceTask as CamundaSequentialMI
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import ParallelMultiInstanceTask as BpmnParallelMITask
from SpiffWorkflow.bpmn.specs.defaults import SequentialMultiInstanceTask as BpmnSequentialMITask
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.parser.util import first
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.util.task import TaskState
from SpiffWorkflow.specs.base import TaskSpec

from . import cron, eventsub, links, services
from .camunda import InclusiveGatewayParser, catch_or_drop
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


# ---------------------------------------------------------------------------------------------
# Joins that keep every branch's writes


class _MergingJoin:
    def _merge_branches(self, my_task: Any) -> None:
        others = [
            t for t in my_task.workflow.tasks.values()
            if t.task_spec == self and t.has_state(TaskState.FINISHED_MASK) and not my_task.is_descendant_of(t)
        ]
        branches = others + [my_task]
        chains = [_ancestors(t.parent) for t in branches]
        common = set(id(t) for t in chains[0])
        for chain in chains[1:]:
            common &= set(id(t) for t in chain)
        split = next((t for t in chains[0] if id(t) in common), None)
        # Latest write per variable across all branches: (time, order, present, value).
        writes: dict[str, tuple[float, int, bool, Any]] = {}
        order = 0
        for chain in chains:
            for task in chain:
                if id(task) in common:
                    break
                if task.parent is None:
                    continue
                before, after = task.parent.data, task.data
                stamp = task.last_state_change
                for key, value in after.items():
                    if key not in before or before[key] != value:
                        order += 1
                        if key not in writes or writes[key][:2] < (stamp, order):
                            writes[key] = (stamp, order, True, value)
                for key in before:
                    if key not in after:
                        order += 1
                        if key not in writes or writes[key][:2] < (stamp, order):
                            writes[key] = (stamp, order, False, None)
        for task in others:
            if task.has_state(TaskState.COMPLETED):
                task._drop_children(force=True)
        base = deepcopy(split.data) if split is not None else deepcopy(my_task.parent.data)
        for key, (_stamp, _order, present, value) in writes.items():
            if present:
                base[key] = deepcopy(value)
            else:
                base.pop(key, None)
        my_task.data = base


def _ancestors(task: Any) -> list[Any]:
    chain = []
    while task is not None:
        chain.append(task)
        task = task.parent
    return chain


class TigaoParallelGateway(_MergingJoin, ParallelGateway):
    def _run_hook(self, my_task: Any) -> bool:
        self._merge_branches(my_task)
        return True


class TigaoInclusiveGateway(_MergingJoin, InclusiveGateway):
    def _run_hook(self, my_task: Any) -> bool:
        # As InclusiveGateway._run_hook, with the merge replaced.
        self._merge_branches(my_task)
        matches, defaults = self._get_matching_outputs(my_task)
        if len(matches + defaults) == 0:
            raise WorkflowTaskException("No conditions satisfied on gateway", task=my_task)
        my_task._sync_children(matches or defaults, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.FUTURE | TaskState.PREDICTED_MASK)
        return True


# ---------------------------------------------------------------------------------------------
# Multi-instance: what an instance writes becomes a process variable


def _digest(value: Any) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class _MergingMultiInstance:
    """Camunda semantics for a multi-instance activity over a collection: besides the element
    variable written back into the collection, every variable an instance wrote (a submitted form
    field, a script result) becomes a variable of the activity, the later write winning.
    SpiffWorkflow keeps only the element variable. Each child remembers digests of the data it
    started from, so a child's stale copy of a variable never overwrites a sibling's write."""

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        limit = limits.current().max_multi_instance
        if sum(1 for c in my_task.children if c.task_spec.name == self.task_spec) >= limit:  # type: ignore[attr-defined]
            err = limits.limit_error(f"multi-instance {my_task.task_spec.bpmn_id} has more than {limit:,} "
                                     "instances", "max_multi_instance", "split its collection")
            err.element = my_task.task_spec.bpmn_id  # type: ignore[attr-defined]
            raise err
        super().create_child(my_task, item, key_or_index)  # type: ignore[misc]
        child = my_task.children[-1]
        child.internal_data["seen"] = {k: _digest(v) for k, v in my_task.data.items()}

    def merge_child(self, workflow: Any, child: Any) -> None:
        my_task = child.parent
        super().merge_child(workflow, child)  # type: ignore[misc]
        seen = child.internal_data.get("seen")
        if seen is None:
            return
        skip = {ref.bpmn_id for ref in (getattr(self, "data_output", None), getattr(self, "output_item", None),
                                        getattr(self, "data_input", None), getattr(self, "input_item", None))
                if ref is not None}
        for key, value in child.data.items():
            if key not in skip and seen.get(key) != _digest(value):
                my_task.data[key] = deepcopy(value)


def _check_collection(spec: Any, my_task: Any) -> None:
    """A multi-instance over a collection needs a list (or an object) in that variable when it is
    entered; say which variable, rather than Python's "'NoneType' object is not iterable"."""
    ref = getattr(spec, "data_input", None)
    if ref is None or getattr(spec, "cardinality", None) is not None:
        return
    value = ref.get(my_task)
    if not isinstance(value, (list, dict)):
        what = "is not set" if value is None else f"holds a value of type {type(value).__name__}, not a list"
        raise WorkflowTaskException(f"the collection '{ref.bpmn_id}' of multi-instance {spec.bpmn_id} {what}; "
                                    "set it to a list before the activity (a script, a form field or the "
                                    "start data)", task=my_task)


def _enter_waiting(spec: Any, my_task: Any) -> None:
    # What Camunda's multi-instance update does to the task before the BPMN one runs, without its
    # rewriting of the (shared) spec: the data references are fixed once, when the spec is built.
    if my_task.state != TaskState.WAITING:
        BpmnSpecMixin._update_hook(spec, my_task)  # (the task inherits its data here)
        _check_collection(spec, my_task)
        my_task._set_state(TaskState.WAITING)


class TigaoParallelMultiInstance(_MergingMultiInstance, CamundaParallelMI):
    def _update_hook(self, my_task: Any) -> Any:
        _enter_waiting(self, my_task)
        return BpmnParallelMITask._update_hook(self, my_task)


class TigaoSequentialMultiInstance(_MergingMultiInstance, CamundaSequentialMI):
    def _update_hook(self, my_task: Any) -> Any:
        _enter_waiting(self, my_task)
        return BpmnSequentialMITask._update_hook(self, my_task)


def _resolve_multi_instance(ts: Any) -> None:
    """Fix a Camunda multi-instance spec's data references when it is built.

    SpiffWorkflow's Camunda tasks set them on the shared spec the first time an instance enters
    the activity, so a process that restores a stored state without having entered it (a new
    process, or a fresh Engine) would merge children without knowing their collection.
    `camunda:collection` is both input and output; `loopCardinality` is a count (as in Camunda).
    """
    if ts.cardinality is None and ts.data_output is not None:
        ts.data_input = TaskDataReference(ts.data_output.bpmn_id)
    if ts.output_item is not None:
        ts.input_item = TaskDataReference(ts.output_item.bpmn_id)


def _connect_loop(spec: Any, ts: Any) -> None:
    # A loop hears of its children's completion through the child spec's completed event.
    # SpiffWorkflow connects it when the first child is created (in this process), or when it
    # restores a serialized spec; the engine builds specs from their files, so it connects here,
    # or a stored instance restored by a new process would never merge its children.
    child = spec.task_specs.get(ts.task_spec)
    if child is not None and not child.completed_event.is_connected(ts.merge_child):
        child.completed_event.connect(ts.merge_child)


def upgrade_specs(specs: list[Any]) -> None:
    """Give parsed specs the engine's behaviour (same state, subclass): merging multi-instance,
    an end join that sees the whole tree; and wire what SpiffWorkflow would wire at run time."""
    for spec in specs:
        for ts in spec.task_specs.values():
            if type(ts) is _EndJoin:
                ts.__class__ = TigaoEndJoin
            if type(ts) is CamundaParallelMI:
                ts.__class__ = TigaoParallelMultiInstance
            elif type(ts) is CamundaSequentialMI:
                ts.__class__ = TigaoSequentialMultiInstance
            if isinstance(ts, (TigaoParallelMultiInstance, TigaoSequentialMultiInstance)):
                _resolve_multi_instance(ts)
        for ts in spec.task_specs.values():
            if isinstance(ts, LoopTask):
                _connect_loop(spec, ts)


# ---------------------------------------------------------------------------------------------
# Workflows that see their whole task tree

# SpiffWorkflow's task iterators stop 1,000 levels down by default. A loop taken a few hundred
# times makes the tree deeper than that, and then the engine stops seeing its ready tasks and
# decides the workflow is complete. The engine's workflows walk the whole tree.
UNBOUNDED_DEPTH = 10**9


class _WholeTree:
    def get_tasks_iterator(self, first_task: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("max_depth", UNBOUNDED_DEPTH)
        return super().get_tasks_iterator(first_task, **kwargs)  # type: ignore[misc]

    def is_completed(self) -> bool:
        if not self.completed:  # type: ignore[has-type]
            try:
                next(iter(self.get_tasks_iterator(state=TaskState.NOT_FINISHED_MASK, skip_subprocesses=True)))
            except StopIteration:
                self.completed = True
        return bool(self.completed)


class TigaoSubWorkflow(_WholeTree, BpmnSubWorkflow):
    pass


class TigaoWorkflow(_WholeTree, BpmnWorkflow):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = eventsub.ScopedEventManager(self)  # errors and escalations caught by scope
        manager.tasks = self.event_manager.tasks
        self.event_manager = manager

    def refresh_timers(self) -> None:
        eventsub.refresh_timers(self)

    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        subprocess = TigaoSubWorkflow(self.subprocess_specs[spec_name], parent_task_id=my_task.id,
                                      top_workflow=self)
        limit = limits.current().max_call_depth
        if subprocess.depth > limit:  # a process that calls itself would nest without end
            err = limits.limit_error(f"{my_task.task_spec.bpmn_id}: call activities and subprocesses nested "
                                     f"{subprocess.depth} deep", "max_call_depth", "does a process call itself?")
            err.element = my_task.task_spec.bpmn_id  # type: ignore[attr-defined]
            raise err
        self.subprocesses[my_task.id] = subprocess
        return subprocess

    def do_engine_steps(self, will_complete_task: Any = None, did_complete_task: Any = None) -> None:
        """SpiffWorkflow's loop, bounded: a loop of automatic steps that never waits is stopped."""
        limit = limits.current().max_steps
        steps = 0

        def counted(task: Any) -> None:
            nonlocal steps
            steps += 1
            if steps > limit:
                element = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
                err = limits.limit_error(f"{element}: more than {limit:,} automatic steps in one command",
                                         "max_steps", "a loop without a task or timer to wait at?")
                err.element = element  # type: ignore[attr-defined]
                raise err
            if did_complete_task is not None:
                did_complete_task(task)

        super().do_engine_steps(will_complete_task, counted)
        while eventsub.wake_scope_ends(self):  # an event subprocess ended but its start waits again
            super().do_engine_steps(will_complete_task, counted)


class TigaoEndJoin(_EndJoin):
    """The end of a process waits for every unfinished task, however deep in the tree."""

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        # Event subprocesses still waiting for their event do not keep their scope open.
        idle = eventsub.dormant(my_task.workflow)
        for task in TaskIterator(my_task.workflow.task_tree, state=TaskState.NOT_FINISHED_MASK,
                                 end_at_spec=self.name, max_depth=UNBOUNDED_DEPTH):
            if task != my_task and not any(task is d or task.is_descendant_of(d) for d in idle):
                return False
        return True

    def _run_hook(self, my_task: Any) -> Any:
        for task in eventsub.dormant(my_task.workflow):
            task.cancel()
        return super()._run_hook(my_task)


# ---------------------------------------------------------------------------------------------
# Parser


def _predict_in_a_loop(self: TaskSpec, my_task: Any, seen: list[Any] | None = None, looked_ahead: int = 0,
                       mask: int = TaskState.PREDICTED_MASK) -> None:
    """SpiffWorkflow's `TaskSpec._predict`, the same steps in the same order, as a loop.

    SpiffWorkflow keeps every definite future task of an instance in its task tree, and predicts
    that tree by recursing once per level: a linear process of about 950 elements exceeded
    Python's recursion limit when it started. The method is defined once, on TaskSpec, and no
    spec class overrides it, so it is replaced here by this equivalent (a depth-first pre-order
    walk with an explicit stack; each child's condition is checked when its turn comes, as the
    recursive version checks it after the earlier siblings' branches are done). Raising the
    recursion limit instead would be one limit for every thread, and C code it guards (the JSON
    decoder, for one) would then overflow a normal thread's stack and crash the process.
    """
    todo: list[tuple[Any, Any, list[Any], int, bool]] = [(self, my_task, [] if seen is None else seen,
                                                          looked_ahead, False)]
    while todo:
        spec, task, seen_here, ahead, check = todo.pop()
        if check:  # a child: recurse into it only if the recursive version would have
            if not task.has_state(mask) or task in seen_here:
                continue
            seen_here = seen_here[:]
        if task.has_state(mask):
            spec._predict_hook(task)
        if task.has_state(TaskState.PREDICTED_MASK):
            seen_here.append(spec)
        if task.has_state(TaskState.DEFINITE_MASK) or ahead + 1 < spec.lookahead:
            for child in reversed(task.children):
                todo.append((child.task_spec, child, seen_here, ahead + 1, True))


TaskSpec._predict = _predict_in_a_loop  # type: ignore[method-assign]


class TigaoProcessParser(ProcessParser):
    """SpiffWorkflow's process parser, made to parse long diagrams without deep recursion.

    SpiffWorkflow parses an element by first parsing the targets of its outgoing flows, then
    connecting to them: a recursion two Python frames deep per element along the longest path,
    so a linear diagram of about 490 tasks exceeded Python's recursion limit (RecursionError at
    deploy, and at every command that builds the spec). Raising the limit is not safe: it is
    one limit for all threads, and C code guarded by it (the JSON decoder, for one) would then
    overflow a normal thread's stack and crash the process instead of failing cleanly.

    So a long process is parsed from the end backwards first: an explicit depth-first walk from
    its start events, in the order the recursion would take, lists the elements in post-order,
    and each is parsed when everything it leads to already is, so every call returns at once.
    Each element still connects its own outgoing flows, in the same order as before. Only a
    flow back to an element still being walked (a loop) recurses, as deep as that loop is long.
    Short processes (below LONG nodes, the usual case) are parsed exactly as before.
    """

    LONG = 300  # indexed nodes (elements and flows); the recursion stays far below the limit here

    def _index_process_nodes(self) -> None:
        super()._index_process_nodes()  # type: ignore[misc]
        for flow in links.flows(self.node):  # a link throw goes on at its catch
            self.outgoing_sequence_flows.setdefault(flow.get("sourceRef"), []).append(flow)

    def add_tasks(self) -> None:
        if len(self.nodes_by_id) > self.LONG:
            for node in self._post_order():
                self.parse_node(node)
        super().add_tasks()
        eventsub.wire(self)

    def _successors(self, node: Any) -> list[Any]:
        # The attached task parses its boundary events (and what follows them) before its flows.
        out = list(self.get_boundary_events(node.get("id")))
        for flow in self.get_outgoing_sequence_flows(node.get("id")):
            target = self.get_node_by_id(flow.get("targetRef"))
            if target is not None:
                out.append(target)
        return out

    def _post_order(self) -> list[Any]:
        order: list[Any] = []
        seen: set[str] = set()
        for start in self.xpath("./bpmn:startEvent"):
            if start.get("id") in seen:
                continue
            seen.add(start.get("id"))
            stack = [(start, iter(self._successors(start)))]
            while stack:
                node, successors = stack[-1]
                nxt = next(successors, None)
                if nxt is None:
                    stack.pop()
                    if not node.tag.endswith("boundaryEvent"):  # parsed by the task it is attached to
                        order.append(node)
                elif nxt.get("id") not in seen:
                    seen.add(nxt.get("id"))
                    stack.append((nxt, iter(self._successors(nxt))))
        return order


class TigaoParser(CamundaParser):
    PROCESS_PARSER_CLASS = TigaoProcessParser
    OVERRIDE_PARSER_CLASSES = dict(CamundaParser.OVERRIDE_PARSER_CLASSES)
    OVERRIDE_PARSER_CLASSES.update({
        full_tag("startEvent"): (TigaoStartEventParser, StartEvent),
        full_tag("intermediateCatchEvent"): (TigaoIntermediateCatchEventParser, IntermediateCatchEvent),
        full_tag("boundaryEvent"): (TigaoBoundaryEventParser, BoundaryEvent),
        full_tag("intermediateThrowEvent"): (TigaoIntermediateThrowEventParser, IntermediateThrowEvent),
        full_tag("endEvent"): (TigaoEndEventParser, EndEvent),
        full_tag("receiveTask"): (TigaoReceiveTaskParser, ReceiveTask),
        full_tag("sendTask"): (TigaoSendTaskParser, SendTask),
        full_tag("parallelGateway"): (BpmnParser.PARSER_CLASSES[full_tag("parallelGateway")][0],
                                      TigaoParallelGateway),
        full_tag("inclusiveGateway"): (InclusiveGatewayParser, TigaoInclusiveGateway),
        full_tag("businessRuleTask"): services.BUSINESS_RULE,  # as a service task too (engine/services.py)
        full_tag("exclusiveGateway"): (InclusiveGatewayParser,
                                       BpmnParser.PARSER_CLASSES[full_tag("exclusiveGateway")][1]),
    })


# ---------------------------------------------------------------------------------------------
# Serializer

_SPECS: contextvars.ContextVar[tuple[Any, dict[str, Any]]] = contextvars.ContextVar("tigao_specs")


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Stores a workflow without its specs; restores it with the specs given in context."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> Any:
        from uuid import UUID

        spec, subprocess_specs = _SPECS.get()
        workflow = TigaoWorkflow(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class TigaoSubWorkflowConverter(BpmnSubWorkflowConverter):
    def from_dict(self, dct: dict[str, Any], task: Any, top_workflow: Any) -> Any:
        from uuid import UUID

        # A calledElement="${...}" was resolved when the activity started (engine/camunda.py).
        spec = top_workflow.subprocess_specs.get(task.internal_data.get("called_element") or task.task_spec.spec)
        subprocess = TigaoSubWorkflow(spec, task.id, top_workflow, deserializing=True)
        subprocess.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=subprocess)
        subprocess.task_tree = subprocess.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(subprocess, dct)
        return subprocess


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: `True`, `1` and `1.0` are three different values."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


class TigaoTaskConverter(TaskConverter):
    """Stores a task's data as its changes from its parent's, as SpiffWorkflow does, but compares
    values by JSON type: SpiffWorkflow's `!=` takes `True` for `1`, so a task that turned a 1 into
    true would restore as 1."""

    def to_dict(self, task: Any) -> dict[str, Any]:
        parent = task.parent
        if parent is None:
            data, delta = task.data, {}
        else:
            before, after = parent.data, task.data
            data = {}
            delta = {"updates": {k: v for k, v in after.items() if k not in before or not _same(before[k], v)},
                     "deletions": [k for k in before if k not in after]}
        return {
            "id": str(task.id),
            "parent": str(task._parent) if parent is not None else None,
            "children": [str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task.state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": self.registry.convert(task.internal_data),
            "data": data,
            "delta": delta,
        }


def _config() -> dict[Any, Any]:
    config = dict(CAMUNDA_CONFIG)
    config[Task] = TigaoTaskConverter
    # Both names restore the engine's classes (states written before the subclasses existed
    # name SpiffWorkflow's own).
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    config[TigaoWorkflow] = SpeclessWorkflowConverter
    config[BpmnSubWorkflow] = TigaoSubWorkflowConverter
    config[TigaoSubWorkflow] = TigaoSubWorkflowConverter
    config[ClockTimeDate] = TimerConditionalEventDefinitionConverter
    config[ClockDuration] = TimerConditionalEventDefinitionConverter
    config[ClockCycle] = TimerConditionalEventDefinitionConverter
    config[TigaoMessageEventDefinition] = config[CamundaMessageEventDefinition]
    config[TigaoSignalEventDefinition] = config[SignalEventDefinition]
    config[TigaoParallelGateway] = config[ParallelGateway]
    config[TigaoParallelMultiInstance] = config[CamundaParallelMI]
    config[TigaoSequentialMultiInstance] = config[CamundaSequentialMI]
    config[TigaoInclusiveGateway] = config[InclusiveGateway]
    return config


def force_start_timers(workflow: BpmnWorkflow, now: datetime) -> None:
    """An instance started by a start timer: its timer start event fires once, now.

    The engine owns start timers (one new instance per occurrence, as in Camunda), so the start
    event of the instance it creates must not keep its own schedule. Call before the first step.
    """
    for task in workflow.get_tasks(skip_subprocesses=True):
        ev = getattr(task.task_spec, "event_definition", None)
        if task.workflow is not workflow or not isinstance(task.task_spec, StartEvent):
            continue
        if isinstance(ev, ClockCycle):
            # One occurrence left, due now; once fired the start event completes.
            task._set_internal_data(event_value={"cycles": 1, "next": now.isoformat(), "interval": "P1D",
                                                 "fired": 0})
        elif isinstance(ev, (ClockTimeDate, ClockDuration)):
            task._set_internal_data(event_value=now.isoformat())


def comparable_state(state_json: str) -> dict[str, Any]:
    """Stored state as a dict in which SpiffWorkflow's set-ordered lists (a task's data delta
    `deletions`) are sorted, so two equal states compare equal."""
    import json

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: norm(v) for k, v in value.items()}
            delta = out.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("deletions"), list):
                delta["deletions"] = sorted(delta["deletions"], key=str)
            return out
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    dct = json.loads(state_json)
    dct.pop("tigao_parts", None)  # the list of parts a state read from parts carries
    return norm(dct)


def fingerprint(workflow: BpmnWorkflow) -> list[dict[str, Any]]:
    """The workflow's state without its random task ids and wall-clock stamps, for comparing a
    replayed instance with the stored one: every task in tree order (subprocesses included) with
    its element, state, data and internal data, task ids replaced by their position."""
    tasks = workflow.get_tasks()
    index = {str(t.id): i for i, t in enumerate(tasks)}

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return f"#task{index[value]}" if value in index else value
        if isinstance(value, dict):
            return {scrub(k): scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [scrub(v) for v in value]
        if isinstance(value, BpmnEvent):  # an event-based gateway's seen events: compared by content
            ev = value.event_definition
            return {"event": type(ev).__name__, "name": getattr(ev, "name", None), "payload": scrub(value.payload)}
        return value

    out = []
    for t in tasks:
        out.append({
            "element": getattr(t.task_spec, "bpmn_id", None) or t.task_spec.name,
            "state": TaskState.get_name(t.state),
            "parent": index.get(str(t.parent.id)) if t.parent is not None else None,
            "data": scrub(t.data),
            "internal": scrub({k: v for k, v in t.internal_data.items() if k != FIRED_KEY}),
        })
    return out
