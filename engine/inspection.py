"""What a picture of an instance needs: its diagram files and the state of each element.

The states come from the live workflow (SpiffWorkflow's task tree), with the history filling in
what the tree no longer holds (completed work pruned from it): an element is `completed` when
every token that reached it has finished, `active` while a token is at it (with how many),
`waiting` while it waits for a timer or a message, `cancelled` or `failed`. `view_states` gives
the same states from `Engine.instance()`'s view (tasks and waits), for the diagram's markers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage.models import Definition, Event

from . import eventsub

if TYPE_CHECKING:
    from .core import Engine


@dataclass
class ElementState:
    state: str  # completed, active, waiting, cancelled, failed
    count: int = 1
    waiting_for: str | None = None  # timer, message, signal ...
    due: Any = None  # when a waiting timer is due, where the source knows it


@dataclass
class InstancePicture:
    instance_id: int
    process_key: str
    version: int
    files: dict[str, str]
    main_file: str | None
    states: dict[str, ElementState] = field(default_factory=dict)
    # element ids of every subprocess / called process file, by process id
    process_files: dict[str, str] = field(default_factory=dict)


# SpiffWorkflow's event definition class names (lower case) -> what an element waits for.
_WAIT_KINDS = (("time", "timer"), ("duration", "timer"), ("cycle", "timer"), ("message", "message"),
               ("signal", "signal"), ("conditional", "conditional"), ("escalation", "escalation"),
               ("error", "error"))


def wait_kind(event_class: str | None) -> str | None:
    """`DurationTimerEventDefinition` -> `timer`, `MessageEventDefinition` -> `message`, else None."""
    name = (event_class or "").lower()
    return next((kind for needle, kind in _WAIT_KINDS if needle in name), None)


def _wait_kind(spec: Any) -> str | None:
    ev = getattr(spec, "event_definition", None)
    return None if ev is None else wait_kind(type(ev).__name__)


def _combine(active: Counter[str], waiting: dict[str, tuple[str | None, Any]], done: Counter[str],
             cancelled: set[str], failed: set[str]) -> dict[str, ElementState]:
    """One state per element; later rules win: completed, cancelled, waiting, active, failed."""
    out: dict[str, ElementState] = {}
    for bid, n in done.items():
        out[bid] = ElementState("completed", n)
    for bid in cancelled - set(done):
        out[bid] = ElementState("cancelled")
    for bid, (kind, due) in waiting.items():
        out[bid] = ElementState("waiting", 1, kind, due)
    for bid, n in active.items():
        out[bid] = ElementState("active", n)
    for bid in failed:
        out[bid] = ElementState("failed")
    return out


def cancel_open(states: dict[str, ElementState]) -> dict[str, ElementState]:
    """A cancelled instance: what was active or waiting is cancelled (in place; returned too)."""
    for st in states.values():
        if st.state in ("active", "waiting"):
            st.state, st.waiting_for = "cancelled", None
    return states


def element_states(wf: Any) -> dict[str, ElementState]:
    """Element id -> state, from a workflow's task tree (the top workflow and its subprocesses).

    An event subprocess waiting for its event is `waiting` (for a message, a timer, ...), not active;
    one whose event never came before its scope ended is not marked at all."""
    from SpiffWorkflow.util.task import TaskState

    active: Counter[str] = Counter()
    waiting: dict[str, tuple[str | None, Any]] = {}
    done: set[str] = set()
    cancelled: set[str] = set()
    failed: set[str] = set()
    workflows = [wf, *getattr(wf, "subprocesses", {}).values()]
    idle = eventsub.idle_tasks(wf)
    for w in workflows:
        tasks = w.get_tasks()
        # A multi-instance or loop task is a started parent of its instances (same element): the
        # instances are the tokens, as Engine.instance() counts them.
        containers = {t.parent.id for t in tasks if t.parent is not None
                      and getattr(t.parent.task_spec, "bpmn_id", None) == getattr(t.task_spec, "bpmn_id", None)}
        for t in tasks:
            bid = getattr(t.task_spec, "bpmn_id", None)
            if not bid or t.id in idle:
                if bid and idle.get(t.id):  # an event subprocess waiting for its event
                    waiting[bid] = idle[t.id]
                continue
            if t.state in (TaskState.READY, TaskState.STARTED):
                if t.id not in containers:
                    active[bid] += 1
            elif t.state == TaskState.WAITING:
                waiting[bid] = (_wait_kind(t.task_spec), None)
            elif t.state == TaskState.COMPLETED:
                done.add(bid)
            elif t.state == TaskState.CANCELLED:
                cancelled.add(bid)
            elif t.state == TaskState.ERROR:
                failed.add(bid)
    from .prune import pruned_elements

    for bid, state in pruned_elements(wf).items():  # what pruning cut from the tree
        (done if state == "completed" else cancelled).add(bid)
    return _combine(active, waiting, Counter(done), cancelled, failed)


def view_states(instance: Mapping[str, Any]) -> dict[str, ElementState]:
    """Element id -> state, from `Engine.instance()`: its human tasks and the events it waits on.

    Open tasks are `active` with their count (a multi-instance task waiting on three people has
    3); an element whose tasks are all done is `completed` (with how many), all cancelled
    `cancelled`; waiting events are `waiting` with their kind and due time. A cancelled instance
    has its open work `cancelled`.
    """
    tasks: dict[str, Counter[str]] = {}
    for task in instance.get("tasks") or []:
        element = _get(task, "element_id")
        if element:
            tasks.setdefault(str(element), Counter())[str(_get(task, "state"))] += 1
    active = Counter({e: c["open"] for e, c in tasks.items() if c.get("open")})
    done = Counter({e: c["completed"] for e, c in tasks.items() if c.get("completed") and e not in active})
    cancelled = {e for e, c in tasks.items() if c.get("cancelled")}
    waiting = {str(_get(w, "element")): (wait_kind(_get(w, "event")), _get(w, "due"))
               for w in instance.get("waiting") or [] if _get(w, "element")}
    states = _combine(active, waiting, done, cancelled, set())
    return cancel_open(states) if instance.get("status") == "cancelled" else states


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def instance_picture(engine: Engine, instance_id: int) -> InstancePicture:
    """The files and element states of one instance, read in one transaction."""
    with engine._tx() as s:
        inst, d, built = engine._instance_built(s, instance_id)
        wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
        states = element_states(wf)
        failed_at = s.scalars(select(Event.element_id).where(Event.instance_id == instance_id,
                                                             Event.type == "script_failed")).all()
        for element in failed_at:
            if element and states.get(element, ElementState("completed")).state != "active":
                states.setdefault(element, ElementState("failed"))
        if inst.status == "cancelled":
            cancel_open(states)
        process_files = {k: p.file for k, p in built.analysis.processes.items()}
        return InstancePicture(inst.id, inst.process_key, d.version, dict(d.files),
                               process_files.get(inst.process_key), states, process_files)


def definition_files(engine: Engine, key: str, version: int | None = None) -> tuple[Definition, dict[str, str]]:
    """A deployed version's files (the newest version when `version` is None)."""
    from .errors import NotFound

    with engine._tx() as s:
        q = select(Definition).where(Definition.key == key)
        q = q.where(Definition.version == version) if version is not None else q.order_by(Definition.version.desc())
        d = s.scalars(q.limit(1)).first()
        if d is None:
            raise NotFound(f"no process '{key}'" + (f" version {version}" if version is not None else "")
                           + " is deployed")
        s.expunge(d)
        return d, dict(d.files)
