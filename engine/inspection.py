"""What a picture of an instance needs: its diagram files and the state of each element.

The states come from the live workflow (SpiffWorkflow's task tree), with the history filling in
what the tree no longer holds (completed work pruned from it): an element is `completed` when
every token that reached it has finished, `active` while a token is at it (with how many),
`waiting` while it waits for a timer or a message, `cancelled` or `failed`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from storage.models import Definition, Event

if TYPE_CHECKING:
    from .core import Engine


@dataclass
class ElementState:
    state: str  # completed, active, waiting, cancelled, failed
    count: int = 1
    waiting_for: str | None = None  # timer, message, signal ...


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


def _wait_kind(spec: Any) -> str | None:
    ev = getattr(spec, "event_definition", None)
    if ev is None:
        return None
    name = type(ev).__name__.lower()
    for kind in ("timer", "duration", "cycle", "timedate"):
        if kind in name:
            return "timer"
    for kind in ("message", "signal", "conditional", "escalation", "error"):
        if kind in name:
            return kind
    return None


def element_states(wf: Any) -> dict[str, ElementState]:
    """Element id -> state, from a workflow's task tree (the top workflow and its subprocesses)."""
    from SpiffWorkflow.util.task import TaskState

    active: Counter[str] = Counter()
    waiting: dict[str, str | None] = {}
    done: set[str] = set()
    cancelled: set[str] = set()
    failed: set[str] = set()
    workflows = [wf, *getattr(wf, "subprocesses", {}).values()]
    for w in workflows:
        for t in w.get_tasks():
            bid = getattr(t.task_spec, "bpmn_id", None)
            if not bid:
                continue
            if t.state in (TaskState.READY, TaskState.STARTED):
                active[bid] += 1
            elif t.state == TaskState.WAITING:
                waiting[bid] = _wait_kind(t.task_spec)
            elif t.state == TaskState.COMPLETED:
                done.add(bid)
            elif t.state == TaskState.CANCELLED:
                cancelled.add(bid)
            elif t.state == TaskState.ERROR:
                failed.add(bid)
    from .prune import pruned_elements

    for bid, state in pruned_elements(wf).items():  # what pruning cut from the tree
        (done if state == "completed" else cancelled).add(bid)
    out: dict[str, ElementState] = {}
    for bid in done:
        out[bid] = ElementState("completed")
    for bid in cancelled - done:
        out[bid] = ElementState("cancelled")
    for bid, kind in waiting.items():
        out[bid] = ElementState("waiting", 1, kind)
    for bid, n in active.items():
        out[bid] = ElementState("active", n)
    for bid in failed:
        out[bid] = ElementState("failed")
    return out


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
            for st in states.values():
                if st.state in ("active", "waiting"):
                    st.state = "cancelled"
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
