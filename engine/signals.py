"""Signals: a broadcast to every instance waiting for one, and a start of every process that starts
with one.

A signal differs from a message in who receives it: a message goes to exactly one instance, a
signal to all of them (Camunda 7 semantics). Each receiving instance gets its own transaction and
its own `signal_received` history event (an input that replay applies), so one failing receiver
neither blocks nor undoes the others.

A signal thrown inside a process (an intermediate or end signal throw) is caught inside that
instance by SpiffWorkflow during the step, and broadcast to the other instances after the step's
transaction commits. Broadcasts that cause further throws are queued, never nested, and one chain
delivers at most MAX_DELIVERIES times, so two processes that signal each other cannot loop forever.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage.models import MessageSubscription

from .errors import EngineError, NotFound

if TYPE_CHECKING:
    from .core import Engine
    from .run import Run

MAX_DELIVERIES = 1000  # deliveries and starts in one chain of broadcasts


@dataclass
class Broadcast:
    """What one signal (and the signals it caused) reached."""

    delivered_to: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"delivered_to": self.delivered_to, "started": self.started, "failed": self.failed,
                "truncated": self.truncated}


def _is_signal(spec: Any, name: str | None = None) -> bool:
    from .spiff_events import TigaoSignalEventDefinition

    ev = getattr(spec, "event_definition", None)
    return isinstance(ev, TigaoSignalEventDefinition) and (name is None or ev.name == name)


def starts_with(built: Any, name: str) -> bool:
    """Whether the process has a top-level start event that catches signal `name`."""
    from SpiffWorkflow.bpmn.specs.defaults import StartEvent

    return any(isinstance(ts, StartEvent) and _is_signal(ts, name) for ts in built.spec.task_specs.values())


def waiting_signals(waiting: list[Any]) -> dict[str, tuple[str, str]]:
    """spiff id -> (signal name, element id) of the waiting tasks that catch a signal."""
    return {str(t.id): (t.task_spec.event_definition.name, t.task_spec.bpmn_id)
            for t in waiting if _is_signal(t.task_spec)}


def deliver(run: Run, name: str, data: dict[str, Any], actor: str | None, origin: int | None) -> None:
    """Apply signal `name` to one loaded instance (every waiting catch of it in the instance fires);
    NotFound when nothing in it waits for the signal."""
    applied = run.apply("signal_received", {"name": name, "data": data})
    run.event("signal_received", actor, {"name": name, "data": data, "from_instance": origin},
              element_id=applied.element_id)


def sync(run: Run, waiting: list[Any]) -> None:
    """Project the instance's waiting signal catches into message_subscriptions (kind "signal")."""
    from .subscriptions import project

    project(run.s, run.inst.id, "signal",
            [(sid, name, element) for sid, (name, element) in waiting_signals(waiting).items()])


def broadcast(engine: Engine, name: str, data: dict[str, Any], actor: str | None,
              origin: int | None = None, result: Broadcast | None = None) -> Broadcast:
    """Send signal `name` to every waiting instance (but `origin`, which caught it already) and start
    every deployed process that starts with it; then the same for each signal those steps threw."""
    result = result if result is not None else Broadcast()
    if engine._signal_queue is not None:  # inside a broadcast: queued, delivered by the outer loop
        engine._signal_queue.append((name, data, origin))
        return result
    engine._signal_queue = deque([(name, data, origin)])
    budget = MAX_DELIVERIES
    try:
        while engine._signal_queue:
            sig, payload, source = engine._signal_queue.popleft()
            with engine._tx(read=True) as s:
                waiting = sorted(set(s.scalars(select(MessageSubscription.instance_id).where(
                    MessageSubscription.message_name == sig, MessageSubscription.kind == "signal"))))
                starters = [d for d in engine._latest_definitions(s).values()
                            if starts_with(engine._built(d), sig)]
            for iid in waiting:
                if iid == source:
                    continue
                if budget <= 0:
                    result.truncated = True
                    break
                budget -= 1
                try:
                    engine._run_on(iid, actor, lambda run, sig=sig, payload=payload, source=source:
                                   deliver(run, sig, payload, actor, source))
                    result.delivered_to.append(iid)
                except NotFound:
                    continue  # it stopped waiting since the subscriptions were read
                except EngineError as exc:
                    result.failed.append({"instance": iid, "error": str(exc)})
            for d in starters:
                if budget <= 0:
                    result.truncated = True
                    break
                budget -= 1
                try:
                    result.started.append(_start(engine, d, sig, payload, actor, source))
                except EngineError as exc:
                    result.failed.append({"process": d.key, "error": str(exc)})
            if result.truncated:
                break
    finally:
        engine._signal_queue = None
    return result


def _start(engine: Engine, d: Any, name: str, data: dict[str, Any], actor: str | None, origin: int | None) -> int:
    with engine._tx() as s:
        built = engine._built(d)
        run = engine._new_run(s, d, built, {}, None, actor, {"via": "signal", "signal": name})
        deliver(run, name, data, actor, origin)
        run.finish(actor)
        return run.inst.id


def deliver_to(engine: Engine, instance_id: int, name: str, data: dict[str, Any] | None,
               actor: str | None) -> None:
    """Deliver signal `name` to one instance only (Camunda's `executionId`); NotFound if it does not
    wait for it. Signals the instance throws in turn are broadcast as usual."""
    from .values import check_data

    payload = check_data(data)
    if not isinstance(name, str) or not name.strip():
        from .errors import InputError

        raise InputError("a signal needs a name")
    engine._run_on(instance_id, actor, lambda run: deliver(run, name, payload, actor, None))
