"""The stored state of a workflow: SpiffWorkflow's serializer without the process specs, task data
stored as changes compared by JSON type, and the comparisons replay makes (`fingerprint`). (Part
of the engine's plug into SpiffWorkflow; see engine/spiff.py.)

The specs are rebuilt from the definition version's files (cached per process), so a save writes
only the instance's own state. The serializer stores class names, not module paths, so states
saved before this module was split out of engine/spiff.py load as they did.
"""

from __future__ import annotations

import contextvars
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    TaskConverter,
    WorkflowConverter,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.specs.defaults import InclusiveGateway, ParallelGateway
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessageEventDefinition
from SpiffWorkflow.camunda.specs.multiinstance_task import ParallelMultiInstanceTask as CamundaParallelMI
from SpiffWorkflow.camunda.specs.multiinstance_task import SequentialMultiInstanceTask as CamundaSequentialMI
from SpiffWorkflow.util.task import TaskState

from .spiff import TigaoInclusiveGateway, TigaoParallelGateway, TigaoParallelMultiInstance, TigaoSequentialMultiInstance, TigaoSubWorkflow, TigaoWorkflow
from .spiff_events import ClockCycle, ClockDuration, ClockTimeDate, FIRED_KEY, TigaoMessageEventDefinition, TigaoSignalEventDefinition

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


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: `True`, `1` and `1.0` are three different values.

    Called for every value of every task's data at every save (a task's data is stored as its
    changes from its parent's), so the common cases come first: the same object (a deep copy keeps
    strings and numbers as they are), then atoms, then containers that `==` (in C) already tells
    apart; only equal containers are walked for their types.
    """
    if a is b:
        return True
    t = type(a)
    if t is not type(b):
        return False
    if t in _ATOMS:
        return bool(a == b)
    if isinstance(a, dict):
        if len(a) != len(b) or a != b:
            return False
        for k, v in a.items():
            w = b[k]
            if v is not w and not _same(v, w):
                return False
        return True
    if isinstance(a, list):
        if len(a) != len(b) or a != b:
            return False
        for v, w in zip(a, b):
            if v is not w and not _same(v, w):
                return False
        return True
    return bool(a == b)


# Set (tests/conftest.py) to check every reuse of a saved task against a fresh conversion.
CHECK_REUSE = False
_FINISHED = TaskState.FINISHED_MASK


class TigaoTaskConverter(TaskConverter):
    """Stores a task's data as its changes from its parent's, as SpiffWorkflow does, but compares
    values by JSON type: SpiffWorkflow's `!=` takes `True` for `1`, so a task that turned a 1 into
    true would restore as 1.

    A finished task under a finished parent (or none) no longer changes its data, and its parent's
    data does not change either (SpiffWorkflow writes data into a task while it is ready or running;
    a child inherits a deep copy): its dict is kept on the task and given again while the same
    data objects are there and nothing else it holds has moved (its parent and children, which
    pruning changes, its state and stamp, which a reset changes, its internal data). A task with
    no data yet (a predicted one: it inherits when it becomes ready) is stored as its parent's keys
    deleted, so it is given again while those keys are the same. A save then converts the ready
    and running tasks, not every task of the tree; `dumps_parts` reuses the JSON text of a dict
    given again.
    """

    def to_dict(self, task: Any) -> dict[str, Any]:
        parent = task.parent
        if task._state & _FINISHED and (parent is None or parent._state & _FINISHED):
            pdata, keys = (parent.data if parent is not None else None), None
        elif not task.data and parent is not None:
            # A task with no data yet (a predicted one): its dict is its parent's keys as deletions.
            pdata, keys = None, tuple(parent.data)
        else:
            return self._convert(task, parent)
        meta = (task._parent, tuple(task._children), task.last_state_change, task._state, task.triggered,
                task.task_spec, repr(task.internal_data), self.registry._encoder_mode, keys)
        saved = task.__dict__.get("_tigao_saved")
        if saved is not None and saved[1] is task.data and saved[2] is pdata and saved[0] == meta:
            if CHECK_REUSE:
                fresh = self._convert(task, parent)  # (the registry adds the typename after)
                kept = {k: v for k, v in saved[3].items() if k != "typename"}
                assert kept == fresh, f"stale saved task {task.id}: {kept} != {fresh}"
            return saved[3]
        dct = self._convert(task, parent)
        task._tigao_saved = (meta, task.data, pdata, dct)  # holds the data objects: their ids stay theirs
        return dct

    def _convert(self, task: Any, parent: Any) -> dict[str, Any]:
        if parent is None:
            data, delta = task.data, {}
        else:
            before, after = parent.data, task.data
            data = {}
            missing = object()
            delta = {"updates": {k: v for k, v in after.items()
                                 if (w := before.get(k, missing)) is not v and (w is missing or not _same(w, v))},
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


def forget_saved(wf: Any) -> None:
    """Drop every task's kept dict (TigaoTaskConverter): for the changes made to a tree from
    outside SpiffWorkflow's steps (a migration, a modification, a variable set by an operator),
    which may write into a finished task's data in place."""
    for w in [wf, *getattr(wf, "subprocesses", {}).values()]:
        for t in w.tasks.values():
            t.__dict__.pop("_tigao_saved", None)


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

    from storage.state_parts import bare

    dct = bare(json.loads(state_json))  # (without the layout a state read from parts carries)
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
            # (a multi-instance child's "seen" digests are a function of the data it started
            # from, and their length and lifetime changed: a state stored before compares alike)
            "internal": scrub({k: v for k, v in t.internal_data.items() if k not in (FIRED_KEY, "seen")}),
        })
    return out
