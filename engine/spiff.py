"""Where the engine plugs into SpiffWorkflow: its task specs and workflows.

The plug is four modules: `spiff_events` (timers on the engine's clock, messages, signals, their
parsers), `spiff_parser` (the BPMN parser), `spiff_state` (the stored state and replay's
comparison) and this one:

* Parallel and inclusive joins merge branch data by write time: each branch keeps its own changes
  and when two branches wrote the same variable the later write wins (Camunda's process-variable
  semantics). SpiffWorkflow's default join merges whole branch copies, so a branch's stale copy of
  a variable could overwrite a value another branch had just submitted.
* What an instance of a multi-instance activity writes becomes a process variable.
* Workflows see their whole task tree (SpiffWorkflow's iterator stops at a depth of 1,000).
* A start timer's instance fires its start event once, now (`force_start_timers`).
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.util.task import TaskIterator
from SpiffWorkflow.bpmn.specs.defaults import InclusiveGateway, ParallelGateway, StartEvent
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.specs.multiinstance_task import ParallelMultiInstanceTask as CamundaParallelMI
from SpiffWorkflow.camunda.specs.multiinstance_task import SequentialMultiInstanceTask as CamundaSequentialMI
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import ParallelMultiInstanceTask as BpmnParallelMITask
from SpiffWorkflow.bpmn.specs.defaults import SequentialMultiInstanceTask as BpmnSequentialMITask
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.util.task import TaskState

from . import eventsub
from . import limits
from .spiff_events import ClockCycle, ClockDuration, ClockTimeDate

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


DIGEST_CHARS = 16  # of sha1's hex: 64 bits tell a changed value apart; a child keeps one per variable


def _digest(value: Any) -> str:
    """sha1 of the value's canonical JSON, hex. A child stores its first DIGEST_CHARS characters;
    states saved before kept all 40, so a stored digest is compared as a prefix."""
    import hashlib
    import json

    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class _MergingMultiInstance:
    """Camunda semantics for a multi-instance activity over a collection: besides the element
    variable written back into the collection, every variable an instance wrote (a submitted form
    field, a script result) becomes a variable of the activity, the later write winning.
    SpiffWorkflow keeps only the element variable. Each child remembers digests of the data it
    started from, so a child's stale copy of a variable never overwrites a sibling's write; the
    digests go once the child is merged (they are needed once, and are most of a child's size)."""

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        limit = limits.current().max_multi_instance
        if sum(1 for c in my_task.children if c.task_spec.name == self.task_spec) >= limit:  # type: ignore[attr-defined]
            err = limits.limit_error(f"multi-instance {my_task.task_spec.bpmn_id} has more than {limit:,} "
                                     "instances", "max_multi_instance", "split its collection")
            err.element = my_task.task_spec.bpmn_id  # type: ignore[attr-defined]
            raise err
        super().create_child(my_task, item, key_or_index)  # type: ignore[misc]
        child = my_task.children[-1]
        child.internal_data["seen"] = {k: _digest(v)[:DIGEST_CHARS] for k, v in my_task.data.items()}

    def merge_child(self, workflow: Any, child: Any) -> None:
        my_task = child.parent
        super().merge_child(workflow, child)  # type: ignore[misc]
        seen = child.internal_data.pop("seen", None)
        if seen is None:
            return
        skip = {ref.bpmn_id for ref in (getattr(self, "data_output", None), getattr(self, "output_item", None),
                                        getattr(self, "data_input", None), getattr(self, "input_item", None))
                if ref is not None}
        my_task.data.update(written(child.data, seen, skip))


def written(data: dict[str, Any], seen: dict[str, str], skip: set[str]) -> dict[str, Any]:
    """The variables of a multi-instance child's data that it wrote (copies): those not in
    `skip` whose value differs from the one it started with, as `seen` holds its digests."""
    return {key: deepcopy(value) for key, value in data.items()
            if key not in skip and not _digest(value).startswith(seen.get(key) or "-")}


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
