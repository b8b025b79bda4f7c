"""In-process handlers for service tasks, registered under the entry point group `tigao.handlers`.

A handler is a callable `handler(data, context) -> dict | None`: `data` is a copy of the task's
process variables; the returned object's fields become process variables. It runs in the deadline
worker (`tigao worker`, or the server's worker), in the worker's transaction: raising anything
rolls its step back and opens an incident that `tigao retry` runs again. Its result is recorded in
the history (`handler_completed`), so replay never calls the handler again.

Register one in a package's `pyproject.toml`::

    [project.entry-points."tigao.handlers"]
    notifyComplainant = "engine.handlers:notify_complainant"

and name it in the diagram: `camunda:delegateExpression="${notifyComplainant}"` (or
`camunda:class="notifyComplainant"`, or `camunda:expression="${notifyComplainant.send()}"`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

GROUP = "tigao.handlers"
Handler = Callable[[dict[str, Any], "HandlerContext"], "dict[str, Any] | None"]
_EXTRA: dict[str, Handler] = {}
_LOADED: dict[str, Handler] = {}
_LOCK = threading.Lock()


@dataclass
class HandlerContext:
    """What a handler may know and do besides its data: which step it is, and leave a notice.

    `notify` adds a row to the notifications table in the worker's transaction (kept only if the
    step commits); it is where a handler tells people something without a gateway of its own.
    """

    instance_id: int
    element_id: str
    business_key: str | None
    process_key: str
    now: datetime
    notices: list[tuple[str, str]] = field(default_factory=list)

    def notify(self, recipient: str, message: str) -> None:
        self.notices.append((recipient, message))


class BpmnError(Exception):
    """Raised by a handler for a business error the diagram handles: an error boundary event of the
    task (or of a subprocess around it), or an error event subprocess, whose errorCode is `code`,
    takes the flow, with `variables` set. When nothing catches it, the step opens an incident."""

    def __init__(self, code: str, message: str | None = None, variables: dict[str, Any] | None = None):
        super().__init__(message or code)
        self.code, self.message, self.variables = str(code), message, dict(variables or {})


def register(name: str, handler: Handler) -> None:
    """Register a handler in this process (tests, or an application embedding the engine)."""
    with _LOCK:
        _EXTRA[name] = handler


def unregister(name: str) -> None:
    with _LOCK:
        _EXTRA.pop(name, None)


def registered() -> set[str]:
    """Names of every handler available here: entry points, `register`ed ones and the built-in ones."""
    return {ep.name for ep in entry_points(group=GROUP)} | set(_EXTRA) | set(_builtin())


def _builtin() -> dict[str, Handler]:
    # The engine's own defaults, also registered as entry points in pyproject.toml; kept here too so
    # that a checkout whose installed metadata predates them (an old editable install) still runs
    # the campaign. An installed entry point of the same name takes precedence.
    return {"notifyComplainant": notify_complainant}


def get(name: str) -> Handler:
    """The handler registered as `name`; LookupError saying what to install when there is none."""
    with _LOCK:
        if name in _EXTRA:
            return _EXTRA[name]
        if name in _LOADED:
            return _LOADED[name]
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            fn = ep.load()
            with _LOCK:
                _LOADED[name] = fn
            return fn  # type: ignore[no-any-return]
    if name in _builtin():
        return _builtin()[name]
    raise LookupError(f"no handler '{name}' is registered in entry point group '{GROUP}' here; install the "
                      "package that provides it, then retry the incident")


def notify_complainant(data: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """The default `notifyComplainant`: leave the complainant a notification with the result.

    This is the hook where an SMS gateway (or e-mail) would go: register your own handler under
    the name `notifyComplainant` in the `tigao.handlers` group, sending `data["contact"]` the text
    below. The default keeps a notification row addressed `complainant:<contact>`.
    """
    contact = str(data.get("contact") or data.get("complainant") or "unknown")
    result = data.get("feedback") or data.get("result") or data.get("outcome") or "the complaint was handled"
    case = context.business_key or f"case {context.instance_id}"
    text = f"{case}: {result}"
    context.notify(f"complainant:{contact}"[:200], text)
    return {"complainant_notified_at": context.now.isoformat()}


def run_step(engine: Any, s: Any, timer: Any, inst: Any) -> None:
    """Run the handler of one waiting service task (a `handler` row of the worker), in its transaction.

    The handler's result is recorded as `handler_completed` before it is applied, so replay applies
    the recorded result and never calls the handler again.
    """
    from copy import deepcopy
    from uuid import UUID

    from SpiffWorkflow.util.task import TaskState

    from storage.models import ExternalTask, Notification

    from .errors import ScriptError
    from .scripting import ensure_json

    row = s.get(ExternalTask, int((timer.payload or {}).get("external_task", 0)))
    if inst is None or inst.status != "running" or row is None or row.state != "open":
        timer.state = "cancelled"
        return
    run = engine._load_run(s, inst.id)
    t = run.wf.get_task_from_id(UUID(row.spiff_id))
    if t is None or t.state != TaskState.STARTED:
        timer.state = "cancelled"
        return
    ctx = HandlerContext(inst.id, row.element_id, inst.business_key, inst.process_key, run.now)
    try:
        result = get(str(row.handler))(deepcopy(t.data), ctx)
        result = {} if result is None else result
        if not isinstance(result, dict):
            raise TypeError(f"it returned {type(result).__name__}, not an object of variables")
        ensure_json(result)
    except BpmnError as exc:
        _bpmn_error(run, row, t, exc, ctx)
        return
    except Exception as exc:  # noqa: BLE001 - a handler is someone else's code: any failure is an incident
        err = ScriptError(f"handler '{row.handler}' at {row.element_id} failed: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        err.element = row.element_id  # type: ignore[attr-defined]
        raise err from exc
    run.event("handler_completed", "system", {"external_task": row.id, "spiff_id": row.spiff_id,
                                              "handler": row.handler, "data": result}, element_id=row.element_id)
    for recipient, message in ctx.notices:
        s.add(Notification(recipient=recipient, at=run.now, kind="handler", instance_id=inst.id, message=message))
    row.state, row.ended_at = "completed", run.now
    run.apply("handler_completed", {"spiff_id": row.spiff_id, "data": result})
    run.finish("system")


def _bpmn_error(run: Any, row: Any, t: Any, exc: BpmnError, ctx: HandlerContext) -> None:
    """A handler's BPMN error: recorded (an input replay applies) and caught by the innermost error
    boundary event or error event subprocess around the task; uncaught, a ScriptError (an incident,
    never retried: trying again throws the same error)."""
    from storage.models import Notification

    from .errors import ScriptError
    from .external import catching_boundary, uncaught_message
    from .scripting import ensure_json

    if catching_boundary(t, exc.code) is None:
        err = ScriptError(f"handler '{row.handler}': {uncaught_message(row.element_id, exc.code)}")
        err.element = row.element_id  # type: ignore[attr-defined]
        err.uncaught_bpmn_error = True  # type: ignore[attr-defined]
        raise err
    try:
        ensure_json(exc.variables)
    except ValueError as bad:
        raise ScriptError(f"handler '{row.handler}' at {row.element_id}: the variables of BPMN error "
                          f"'{exc.code}' are not JSON ({bad})") from bad
    run.event("handler_bpmn_error", "system", {"external_task": row.id, "spiff_id": row.spiff_id,
                                               "handler": row.handler, "code": exc.code, "message": exc.message,
                                               "data": exc.variables}, element_id=row.element_id)
    for recipient, message in ctx.notices:
        run.s.add(Notification(recipient=recipient, at=run.now, kind="handler", instance_id=run.inst.id,
                               message=message))
    row.state, row.ended_at = "completed", run.now
    row.error_message = f"BPMN error {exc.code}" + (f": {exc.message}" if exc.message else "")
    run.apply("handler_bpmn_error", {"spiff_id": row.spiff_id, "code": exc.code, "data": exc.variables})
    run.finish("system")


def retry_later(engine: Any, s: Any, timer: Any, message: str, now: datetime) -> str | None:
    """After a handler step failed (and rolled back): with a retry cycle on its element and attempts
    left, record the failure and make the step due again after the cycle's interval ("retry").
    Otherwise None (no cycle), or the reason the incident gets (the cycle is used up)."""
    from storage.models import ExternalTask, Instance

    from . import history
    from .retry_cycle import of_element

    row = s.get(ExternalTask, int((timer.payload or {}).get("external_task", 0)))
    inst = s.get(Instance, timer.instance_id) if timer.instance_id is not None else None
    if row is None or inst is None:
        return None
    cycle = of_element(engine._instance_built(s, inst.id)[2], row.element_id)
    if cycle is None:
        return None
    left = cycle.left_after_failure(row.retries)
    row.retries, row.error_message = left, message[:4000]
    if left == 0:
        return f"no retries left after {cycle.attempts} attempt(s), retry cycle {cycle.text}"
    timer.due_at = cycle.next_due(now, left)
    history.append(s, inst, "handler_failed", now, "system",
                   {"external_task": row.id, "spiff_id": row.spiff_id, "handler": row.handler, "error": message,
                    "retries": left, "next_attempt_at": timer.due_at.isoformat()}, element_id=row.element_id)
    return "retry"
