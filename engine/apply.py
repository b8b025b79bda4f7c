"""Inputs applied to a workflow: the one code path of live commands, the worker and replay.

An input is what the history records as one (`history.INPUT_TYPES`): an instance started, a task
completed, a message or signal received, a timer pass, a cancel, an external task's or handler's
result, and an administrator's migration or modification. `apply_input` does the SpiffWorkflow
work of one input on a workflow and then runs the engine steps that follow, at a given time with a
given directory, and raises `NoTarget` when the input has nothing to act on.

The live commands (engine/instances.py, tasks.py, messaging.py, signals.py, deadlines.py,
handlers.py, external.py, modify.py) call it through `Run.apply`, inside `Run._guard` (limits and
error wrapping), and project the result in `Run.finish`. Replay (engine/replay.py) calls it with
the recorded payload, at the recorded time, with the directory then in force; it only maps the
recorded task ids to the replayed ones. Both run the same code, so replay checks the history
against the engine itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.util.task import TaskState

from .errors import NotFound

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    from .assignment import Directory
    from .definitions import Built

# An administrator's changes to a running instance (engine/modify.py).
MODIFICATIONS = frozenset({"instance_migrated", "activity_cancelled", "started_before", "variable_set"})


class NoTarget(NotFound):
    """The input has nothing to act on: no waiting catch for a message or signal, the task is not open.

    The message reads after "instance N is" (e.g. "not waiting for message 'x'")."""


@dataclass
class Applied:
    """What an input reached: the element that took it; for a migration the version it moved to and
    how many tasks moved (`moved`, from engine/migration.py)."""

    kind: str
    element_id: str | None = None
    built: Built | None = None
    moved: dict[str, int] | None = None


def new_workflow(built: Built, script_engine: Any) -> BpmnWorkflow:
    """A fresh workflow of `built`, before its start (the `instance_started` input starts it)."""
    from .spiff import TigaoWorkflow

    return TigaoWorkflow(built.spec, built.subprocess_specs, script_engine=script_engine)


def apply_input(wf: BpmnWorkflow, kind: str, payload: dict[str, Any], *, at: datetime,
                directory: Directory | None = None,
                built_for: Callable[[int], Built] | None = None) -> Applied:
    """Apply input `kind` with its recorded `payload` to `wf` at time `at`, then run the engine steps.

    `at` is the time the workflow's clock reads (the command's time, or the recorded one in
    replay); `directory`, when given, is the organisation scripts see; `built_for(definition_id)`
    gives the version a migration moves to. The payload is the one the history records, with
    `spiff_id` naming a task of `wf`. Raises `NoTarget` before changing anything when the input has
    nothing to act on, ValueError for a kind that is not an input.
    """
    fn = _APPLY.get(kind)
    if fn is None:
        raise ValueError(f"'{kind}' is not an input a workflow applies")
    if directory is not None:
        wf.script_engine.directory = directory
    applied = fn(wf, kind, payload, at, built_for)
    wf.do_engine_steps()
    return applied


def _task(wf: BpmnWorkflow, payload: dict[str, Any], state: TaskState, what: str) -> Any:
    sid = payload.get("spiff_id")
    try:
        t = wf.get_task_from_id(UUID(str(sid))) if sid else None
    except (ValueError, TaskNotFoundException):  # not a task id, or no task of this workflow
        t = None
    if t is None or t.state != state:
        raise NoTarget(f"not waiting for {what} {sid}")
    return t


def _started(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    from .spiff import force_start_timers

    data = p.get("data") or {}
    wf.task_tree.data.update(data)
    for child in wf.task_tree.children:
        child.data.update(data)
    if p.get("via") == "timer":
        force_start_timers(wf, at)
        wf.do_engine_steps()
        wf.refresh_timers()  # a cycle start event completes once its one occurrence fired
    return Applied(kind)


def _completed(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    t = _task(wf, p, TaskState.READY, "input at task")
    t.data.update(p.get("data") or {})
    t.run()
    return Applied(kind, t.task_spec.bpmn_id)


def _message(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    from .spiff_events import message_catchers, send_message

    name = p.get("name")
    targets = message_catchers(wf.get_tasks(state=TaskState.WAITING), name)
    if not targets:
        raise NoTarget(f"not waiting for message '{name}'")
    task, ev = targets[0]
    send_message(wf, task, ev, p.get("data") or {})
    return Applied(kind, task.task_spec.bpmn_id)


def _signal(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    from SpiffWorkflow.bpmn.util import BpmnEvent

    from .spiff_events import TigaoSignalEventDefinition

    name = str(p.get("name"))
    targets = [t for t in wf.get_tasks(state=TaskState.WAITING)
               if isinstance(getattr(t.task_spec, "event_definition", None), TigaoSignalEventDefinition)
               and t.task_spec.event_definition.name == name]
    if not targets:
        raise NoTarget(f"not waiting for signal '{name}'")
    wf.send_event(BpmnEvent(TigaoSignalEventDefinition(name), payload=dict(p.get("data") or {})))
    return Applied(kind, targets[0].task_spec.bpmn_id)


def _timer_pass(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    wf.refresh_timers()
    return Applied(kind)


def _cancelled(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    wf.cancel()
    return Applied(kind)


def _modified(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    from . import migration
    from .spiff_state import forget_saved

    forget_saved(wf)  # these write into the tree from outside SpiffWorkflow's steps
    if kind == "instance_migrated":
        if built_for is None:
            raise ValueError("a migration needs the version it moves to")
        built = built_for(p["to"]["id"])
        moved = migration.migrate(wf, built.spec, built.subprocess_specs, p.get("mapping") or {})
        return Applied(kind, built=built, moved=moved)
    if kind == "activity_cancelled":
        migration.cancel_activity(wf, p["element"])
    elif kind == "started_before":
        migration.start_before(wf, p["element"])
    else:
        migration.set_variable(wf, p["name"], p["value"])
    return Applied(kind, p.get("element"))


def _external(wf: BpmnWorkflow, kind: str, p: dict[str, Any], at: datetime, built_for: Any) -> Applied:
    from .external import apply_error, apply_result

    t = _task(wf, p, TaskState.STARTED, "external task")
    if kind in ("external_task_bpmn_error", "handler_bpmn_error"):
        apply_error(t, str(p.get("code")), p.get("data") or {})
    else:  # external_task_completed, handler_completed
        apply_result(t, p.get("data") or {})
    return Applied(kind, t.task_spec.bpmn_id)


_APPLY: dict[str, Callable[[Any, str, dict[str, Any], datetime, Any], Applied]] = {
    "instance_started": _started,
    "task_completed": _completed,
    "message_received": _message,
    "signal_received": _signal,
    "timer_fired": _timer_pass,
    "instance_cancelled": _cancelled,
    **dict.fromkeys(MODIFICATIONS, _modified),
    **dict.fromkeys(("external_task_completed", "external_task_bpmn_error", "handler_completed",
                      "handler_bpmn_error"), _external),
}
