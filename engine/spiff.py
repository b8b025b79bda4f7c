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
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
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
from SpiffWorkflow.bpmn.util import BpmnEvent, PendingBpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.bpmn.parser.event_parsers import ReceiveTaskParser
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent, ReceiveTask
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

from . import cron
from .camunda import InclusiveGatewayParser
from .scripting import is_expression
from .timeutil import add_iso_duration, parse_cycle, parse_datetime

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
    downtime fires every missed occurrence once, in order (never silently drops one)."""

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
            if nxt <= _now(my_task):
                _record_fired(my_task, value["next"])
                value["next"] = (cron.next_after(value["cron"], nxt) if "cron" in value
                                 else add_iso_duration(nxt, value["interval"])).isoformat()
                value["cycles"] -= 1
                value["fired"] = value.get("fired", 0) + 1
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
        # Camunda: a message thrown without a payload expression carries no payload.
        payload = my_task.workflow.script_engine.evaluate(my_task, self.expression) if self.expression else None
        my_task.workflow.top_workflow.catch(BpmnEvent(self, payload={"payload": payload,
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


class _EventParsing(_TimerParsing):
    def parse_message_event(self, message_event: Any) -> Any:
        parsed = super().parse_message_event(message_event)  # type: ignore[misc]
        return TigaoMessageEventDefinition(parsed.name, parsed.correlation_properties, parsed.expression,
                                           parsed.result_var, description=parsed.description)


class TigaoStartEventParser(_EventParsing, CamundaStartEventParser):
    pass


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


def _enter_waiting(spec: Any, my_task: Any) -> None:
    # What Camunda's multi-instance update does to the task before the BPMN one runs, without its
    # rewriting of the (shared) spec: the data references are fixed once, when the spec is built.
    if my_task.state != TaskState.WAITING:
        BpmnSpecMixin._update_hook(spec, my_task)
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
    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        subprocess = TigaoSubWorkflow(self.subprocess_specs[spec_name], parent_task_id=my_task.id,
                                      top_workflow=self)
        self.subprocesses[my_task.id] = subprocess
        return subprocess


class TigaoEndJoin(_EndJoin):
    """The end of a process waits for every unfinished task, however deep in the tree."""

    def _check_threshold_unstructured(self, my_task: Any) -> bool:
        for task in TaskIterator(my_task.workflow.task_tree, state=TaskState.NOT_FINISHED_MASK,
                                 end_at_spec=self.name, max_depth=UNBOUNDED_DEPTH):
            if task != my_task:
                return False
        return True


# ---------------------------------------------------------------------------------------------
# Parser


class TigaoParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES = dict(CamundaParser.OVERRIDE_PARSER_CLASSES)
    OVERRIDE_PARSER_CLASSES.update({
        full_tag("startEvent"): (TigaoStartEventParser, StartEvent),
        full_tag("intermediateCatchEvent"): (TigaoIntermediateCatchEventParser, IntermediateCatchEvent),
        full_tag("boundaryEvent"): (TigaoBoundaryEventParser, BoundaryEvent),
        full_tag("intermediateThrowEvent"): (TigaoIntermediateThrowEventParser, IntermediateThrowEvent),
        full_tag("endEvent"): (TigaoEndEventParser, EndEvent),
        full_tag("receiveTask"): (TigaoReceiveTaskParser, ReceiveTask),
        full_tag("parallelGateway"): (BpmnParser.PARSER_CLASSES[full_tag("parallelGateway")][0],
                                      TigaoParallelGateway),
        full_tag("inclusiveGateway"): (InclusiveGatewayParser, TigaoInclusiveGateway),
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
    config[TigaoParallelGateway] = config[ParallelGateway]
    config[TigaoParallelMultiInstance] = config[CamundaParallelMI]
    config[TigaoSequentialMultiInstance] = config[CamundaSequentialMI]
    config[TigaoInclusiveGateway] = config[InclusiveGateway]
    return config


class StateSerializer:
    """JSON state of a workflow, without its specs. FORMAT is stamped on every stored state."""

    FORMAT = 1

    def __init__(self) -> None:
        self._inner = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_config()))

    def dumps(self, workflow: BpmnWorkflow) -> str:
        return self._inner.serialize_json(workflow)

    def loads(self, text: str, spec: Any, subprocess_specs: dict[str, Any], script_engine: Any) -> BpmnWorkflow:
        token = _SPECS.set((spec, subprocess_specs))
        try:
            workflow = self._inner.deserialize_json(text)
        finally:
            _SPECS.reset(token)
        workflow.script_engine = script_engine
        return workflow

    def task_data(self, text: str, task_id: str) -> dict[str, Any] | None:
        """The data of one task of a stored state, without restoring the workflow: its branch of
        the tree is read from the JSON and the data deltas applied from the root down, as the
        full restore does. None if the state has no such task."""
        import json

        dct = json.loads(text, cls=self._inner.json_decoder_cls)
        self._inner.migrate(dct)
        registry = self._inner.registry
        for tasks in [dct["tasks"], *(sp["tasks"] for sp in dct.get("subprocesses", {}).values())]:
            if task_id not in tasks:
                continue
            chain = []
            node = tasks.get(task_id)
            while node is not None:
                chain.append(node)
                node = tasks.get(node["parent"]) if node.get("parent") else None
            data: dict[str, Any] = {}
            for node in reversed(chain):
                delta = node.get("delta")
                if delta and node.get("parent") is not None:
                    data = dict(data)
                    data.update(registry.restore(delta.get("updates", {})))
                    for key in delta.get("deletions", []):
                        data.pop(key, None)
                else:
                    data = registry.restore(node["data"])
            return data
        return None



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

    return norm(json.loads(state_json))


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
