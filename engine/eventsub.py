"""Event subprocesses, as BPMN and Camunda 7 run them, on SpiffWorkflow 3.2.

SpiffWorkflow starts an event subprocess with a timer or plain start beside the main flow of its
scope, and knows nothing else of them: a message, signal, error or escalation start becomes a
"trigger" that only the top workflow consults, an interrupting start interrupts nothing, and the
end of the scope waits for an event subprocess whose event never came. Here:

* Every event subprocess starts with its scope (the process or an embedded subprocess) and waits
  at its start event: a waiting task like any other catch, so messages, signals and timers reach
  it the usual way and the engine projects it (subscriptions, timer rows).
* Errors and escalations are routed by scope: one thrown inside scope W is caught by an event
  subprocess of W before anything outside W (a boundary event on W, an event subprocess of W's
  parent scope, ...). An event subprocess does not catch what its own siblings throw upwards from
  inside an event subprocess (no loops).
* When the start event fires, the event subprocess takes the scope's current variables. An
  interrupting one cancels everything else in its scope (the main flow with its open tasks and
  timers, the other event subprocesses); a non-interrupting message, signal or escalation start
  is armed again at once, so the next occurrence starts another instance (as in Camunda). A
  timer start fires as its timer says: once, or at each time of its cycle.
* The scope ends when its main flow and every event subprocess that started have ended; event
  subprocesses still waiting for their event (a cycle's next time, too) are cancelled then.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    CodeEventDefinition,
    EscalationEventDefinition,
    SignalEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.bpmn.util.event import EventManager
from SpiffWorkflow.util.task import TaskIterator, TaskState

_DEEP = 10**9  # walk the whole tree (a loop taken many times makes it deep)


class EventSubprocessStart(StartEvent):
    """The start event of an event subprocess (`interrupting` from `isInterrupting`)."""

    interrupting: bool = True

    def catch(self, my_task: Any, event: Any) -> None:
        # SpiffWorkflow's start event re-opens itself when it has already fired; this one is armed
        # again as a new instance instead (see _on_ready_hook), so a late event is not caught twice.
        if my_task.state == TaskState.WAITING:
            CatchingEvent.catch(self, my_task, event)

    def _on_ready_hook(self, my_task: Any) -> None:
        # Caught (a message, signal, error, escalation) or due (a timer): the event has happened.
        super()._on_ready_hook(my_task)
        es_task = event_subprocess_task(my_task.workflow)
        if es_task is None:
            return
        if self.interrupting:
            interrupt(es_task.workflow, es_task)
        elif isinstance(self.event_definition, (MessageEventDefinition, SignalEventDefinition,
                                                EscalationEventDefinition)):
            rearm(es_task)

    def _run_hook(self, my_task: Any) -> Any:
        es_task = event_subprocess_task(my_task.workflow)
        if es_task is not None:
            scope = es_task.workflow
            last = scope.last_task if scope.last_task is not None else es_task
            my_task.data = deepcopy(last.data)  # the scope's variables now, not when it was armed
        return super()._run_hook(my_task)  # adds the event's payload


def in_event_subprocess(node: Any) -> bool:
    """Whether the XML start event `node` starts an event subprocess."""
    parent = node.getparent()
    return parent is not None and parent.tag.endswith("}subProcess") and parent.get("triggeredByEvent") == "true"


def mark_start(task: Any, node: Any) -> Any:
    """Make the parsed start event `task` (XML `node`) an event subprocess start."""
    task.__class__ = EventSubprocessStart
    task.interrupting = node.get("isInterrupting", "true") != "false"
    return task


def wire(parser: Any) -> None:
    """After a scope is parsed (`parser`, a process parser): its event subprocesses are event
    subprocesses (Camunda's parser makes them call activities), and every one starts with the
    scope, whatever its start event (SpiffWorkflow does so only for timer and plain starts, and keeps
    the others as triggers that only the top workflow consults)."""
    from SpiffWorkflow.bpmn.specs.defaults import CallActivity
    from SpiffWorkflow.bpmn.specs.defaults import EventSubprocess as DefaultEventSubprocess

    spec = parser.spec
    for node in parser.xpath("./bpmn:subProcess[@triggeredByEvent='true']"):
        ts = spec.task_specs.get(node.get("id"))
        if type(ts) is CallActivity:
            ts.__class__ = DefaultEventSubprocess
        spec.has_event_subprocesses = True
    start = spec.start
    for name in start.trigger_specs:
        ts = spec.task_specs[name]
        start.connect(ts)
        ts.connect(spec.end)
    start.trigger_specs = []


# ---------------------------------------------------------------------------------------------
# The scope of an event subprocess


def event_subprocess_task(workflow: Any) -> Any | None:
    """The task of the event subprocess that `workflow` runs, or None if it runs something else."""
    parent_id = getattr(workflow, "parent_task_id", None)
    if parent_id is None:
        return None
    task = workflow.top_workflow.get_task_from_id(parent_id)
    return task if task is not None and isinstance(task.task_spec, EventSubprocess) else None


def _start_event(sub: Any) -> Any | None:
    return next((t for t in sub.tasks.values() if isinstance(t.task_spec, EventSubprocessStart)), None)


def _waiting_only(sub: Any, start: Any) -> bool:
    """Whether event subprocess `sub` waits at its start event `start` with nothing under way (a
    cycle timer start waits for its next time, maybe while or after an earlier occurrence ran)."""
    from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin

    if start.state != TaskState.WAITING:
        return False
    for t in sub.tasks.values():
        if t is start or not t.has_state(TaskState.READY | TaskState.STARTED | TaskState.WAITING):
            continue
        if t.state == TaskState.WAITING and isinstance(t.task_spec, UnstructuredJoin):
            continue  # a join waits for a branch, which is under way itself if anything is
        return False
    return True


def dormant(workflow: Any) -> list[Any]:
    """The event subprocesses of scope `workflow` still waiting for their event."""
    out: list[Any] = []
    if not getattr(workflow.spec, "has_event_subprocesses", False):
        return out
    subs = workflow.top_workflow.subprocesses
    for t in workflow.tasks.values():
        if isinstance(t.task_spec, EventSubprocess) and t.state == TaskState.STARTED:
            sub = subs.get(t.id)
            start = _start_event(sub) if sub is not None else None
            if start is not None and _waiting_only(sub, start):
                out.append(t)
    return out


def idle_tasks(top: Any) -> dict[Any, str | None]:
    """Task id -> what it waits for (None: nothing any more), for the event subprocess tasks of `top`
    (and their start events) whose event has not come: waiting for it, or cancelled with their scope."""
    out: dict[Any, str | None] = {}
    for sub in list(top.subprocesses.values()):
        start = _start_event(sub)
        es_task = event_subprocess_task(sub) if start is not None else None
        if es_task is None or not (_waiting_only(sub, start) or start.state == TaskState.CANCELLED):
            continue
        kind = _kind(start.task_spec.event_definition) if start.state == TaskState.WAITING else None
        out[es_task.id] = kind
        out[start.id] = kind
    return out


def _kind(definition: Any) -> str:
    name = type(definition).__name__.lower()
    for kind in ("message", "signal", "error", "escalation"):
        if kind in name:
            return kind
    return "timer"


def wake_scope_ends(top: Any) -> bool:
    """Look again at the ends of the scopes whose event subprocesses are all back to waiting (the
    end waited for one that was running); True when one of them may now go on."""
    from SpiffWorkflow.bpmn.specs.control import _EndJoin

    woke = False
    for w in [top, *top.subprocesses.values()]:
        if not dormant(w):
            continue
        for t in list(w.tasks.values()):
            if t.state == TaskState.WAITING and isinstance(t.task_spec, _EndJoin):
                t.task_spec._update(t)
                woke = woke or t.state == TaskState.READY
    return woke


def interrupt(scope: Any, es_task: Any) -> None:
    """Cancel everything in `scope` but the event subprocess `es_task` (and the path to it)."""
    victims = [t for t in TaskIterator(scope.task_tree, state=TaskState.NOT_FINISHED_MASK, max_depth=_DEEP)
               if t is not es_task and not t.is_descendant_of(es_task) and not es_task.is_descendant_of(t)]
    for t in victims:
        if not t.has_state(TaskState.FINISHED_MASK):
            t.cancel()


def rearm(es_task: Any) -> None:
    """Wait for the next occurrence: another instance of the event subprocess, waiting at its start."""
    child = es_task.parent._add_child(es_task.task_spec, TaskState.FUTURE)
    child.task_spec._update(child)


# ---------------------------------------------------------------------------------------------
# Errors and escalations, caught by scope


def _is_start(t: Any) -> bool:
    return isinstance(t.task_spec, EventSubprocessStart)


class ScopedEventManager(EventManager):
    """SpiffWorkflow's event manager, with errors and escalations caught by the innermost scope
    that handles them, and nothing delivered to a catch that an interruption has just cancelled."""

    def catch(self, event: Any, internal: bool = True) -> int:
        if event.target is None:
            self.update_collaboration(event)
            tasks = [t for t in self.tasks.values() if t.task_spec.catches(t, event)]
            if not tasks and internal:
                self.workflow.bpmn_events.append(event)
            return self._deliver(tasks, event)
        if not isinstance(event.event_definition, CodeEventDefinition):
            return int(super().catch(event, internal))  # cancel and terminate: SpiffWorkflow's way
        waiting = list(self.tasks.values())
        target, from_event_subprocess = event.target, False
        while target is not None:
            # At each level: what waits in that workflow (a boundary event of the activity the
            # error came out of), then the event subprocesses of that scope.
            tasks = [t for t in waiting if t.workflow is target and not _is_start(t)
                     and t.task_spec.event_definition.catches(t, event)]
            if tasks:
                return self._deliver(tasks, event)
            if not from_event_subprocess:
                starts = [t for t in waiting if _is_start(t) and t.state == TaskState.WAITING
                          and t.workflow.parent_workflow is target and t.task_spec.catches(t, event)]
                if starts:
                    # One handler: the one naming the code before a catch-all.
                    starts.sort(key=lambda t: getattr(t.task_spec.event_definition, "code", None) is None)
                    return self._deliver([starts[0]], event)
            from_event_subprocess = event_subprocess_task(target) is not None
            target = target.parent_workflow
        # No scope above the thrower handles it: SpiffWorkflow offers it to any waiting catch.
        tasks = [t for t in waiting if not _is_start(t) and t.task_spec.catches(t, event)]
        if not tasks and internal:
            self.workflow.bpmn_events.append(event)
        return self._deliver(tasks, event)

    @staticmethod
    def _deliver(tasks: list[Any], event: Any) -> int:
        delivered = 0
        for task in tasks:
            if task.has_state(TaskState.CANCELLED):
                continue  # an event subprocess caught the same event first and interrupted it
            task.task_spec.catch(task, event)
            task.task_spec._update(task)
            delivered += 1
        return delivered


def refresh_timers(workflow: Any) -> None:
    """SpiffWorkflow's `refresh_timers`, without waking a timer an interruption has just cancelled."""
    from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    for task in list(workflow.event_manager.tasks.values()):
        if task.has_state(TaskState.CANCELLED):
            continue
        if isinstance(task.task_spec.event_definition, (TimerEventDefinition, MultipleEventDefinition)):
            task.task_spec._update(task)


__all__ = ["EventSubprocessStart", "ScopedEventManager", "dormant", "event_subprocess_task", "idle_tasks",
           "in_event_subprocess", "interrupt", "mark_start", "rearm", "refresh_timers", "wake_scope_ends", "wire"]
