"""Replay: rebuild an instance from its definition version and its recorded inputs, with the clock
set to the recorded times, step by step, and compare the result with what is stored.

Replay feeds the recorded inputs through `engine.apply.apply_input`, the function the live commands
and the worker run, so it checks the history against the engine itself, not against a second
implementation; what is replay's alone is here: the recorded clock and directory, the mapping of
recorded task ids to replayed ones, and the divergence messages.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.util.task import TaskState

from .assignment import Directory
from .chain import EventRecord, Failure
from .clock import SettableClock
from .definitions import Built
from .apply import MODIFICATIONS, NoTarget, apply_input, new_workflow
from .external import REPLAYED, replay_external
from .history import INPUT_TYPES
from .scripting import TigaoScriptEngine
from .spiff_events import pop_thrown_signals
from .spiff_state import fingerprint
from .state import StateSerializer

# Inputs replayed with their recorded payload as it is (no task id of the live run to map).
AS_RECORDED = frozenset({"message_received", "signal_received", "instance_cancelled"}) | MODIFICATIONS


@dataclass
class Step:
    """The instance after one event: open tasks by name, the process data, the data of every
    running subprocess and call activity (by its element id), and what changed (a subprocess's
    variables appear in `changed` as `element_id/variable`)."""

    seq: int
    at: datetime
    type: str
    actor: str | None
    element_id: str | None
    open_tasks: list[str]
    data: dict[str, Any]
    changed: dict[str, Any]
    subprocesses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ReplayResult:
    instance_id: int
    steps: list[Step] = field(default_factory=list)
    divergence: Failure | None = None
    matches_stored: bool | None = None
    workflow: BpmnWorkflow | None = None
    # Recorded spiff id -> the human task's data when it was completed (or created, if still
    # open): what a report reads of tasks that pruning has cut from the stored tree.
    task_data: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.divergence is None and self.matches_stored is not False


class _Replayer:
    """Feeds recorded inputs back into a fresh workflow at the recorded times."""

    def __init__(self, built: Built, directories: dict[int | None, Directory], serializer: StateSerializer,
                 built_for: Callable[[int], Built] | None = None):
        self.built = built
        # A migrated instance started on another version: each event names the one it ran on.
        self.built_for = built_for or (lambda definition_id: built)
        self.clock = SettableClock(datetime(1970, 1, 1, tzinfo=UTC))
        self.directories = directories
        self.se = TigaoScriptEngine(self.clock, next(iter(directories.values()), None))
        self.serializer = serializer
        self.wf: BpmnWorkflow | None = None
        self.mapping: dict[str, str] = {}  # recorded spiff id -> replayed spiff id
        self.external_mapping: dict[str, str] = {}  # the same for external tasks (engine/external.py)
        self.task_data: dict[str, dict[str, Any]] = {}  # recorded spiff id -> the task's data
        self.unclaimed: list[Any] = []

    def _new_ready(self) -> list[Any]:
        assert self.wf is not None
        mapped = set(self.mapping.values())
        return [t for t in self.wf.get_tasks(state=TaskState.READY) if t.task_spec.manual and str(t.id) not in mapped]

    def _apply(self, e: EventRecord, payload: dict[str, Any]) -> None:
        """The recorded input, through the function live commands run (engine/apply.py)."""
        assert self.wf is not None
        applied = apply_input(self.wf, e.type, payload, at=e.at, directory=self.se.directory,
                              built_for=self.built_for)
        if applied.built is not None:  # a migration: the instance runs on another version from here
            self.built = applied.built
        pop_thrown_signals(self.wf)  # the replay broadcasts nothing: the receivers recorded their own input

    def apply(self, e: EventRecord) -> str | None:
        """Apply one event; return a divergence message or None."""
        self.clock.force(e.at)
        p = e.payload
        if "dir" in p:
            self.se.directory = self.directories.get(p["dir"], self.se.directory)
        if e.type == "instance_started":
            if e.definition_id != self.built.definition_id:
                self.built = self.built_for(e.definition_id)
            self.wf = new_workflow(self.built, self.se)
            self._apply(e, p)
            self.serializer.prune(self.wf)  # as the live command does when it saves
            self.unclaimed = self._new_ready()
            return None
        if self.wf is None:
            return f"{e.type} before the instance started"
        try:
            if e.type == "task_completed":
                # The recorded task id names the live task: the replay has its own.
                rec = p.get("spiff_id", "")
                sid = self.mapping.get(rec)
                t = self._ready(sid)
                if t is not None:  # the data it completed with, kept before pruning may drop the task
                    self.task_data[rec] = deepcopy({**t.data, **(p.get("data") or {})})
                self._apply(e, {**p, "spiff_id": sid})
            elif e.type in AS_RECORDED:
                self._apply(e, p)
            elif e.type == "timer_fired":
                if not p.get("trigger"):
                    return None  # an occurrence the pass fired; only the pass's first is its input
                self._apply(e, p)
            elif e.type == "task_created":
                return self._created(e)
            elif e.type in REPLAYED:  # external tasks and handlers (engine/external.py)
                problem = replay_external(self, e)
                if problem is not None:
                    return problem
                if e.type not in INPUT_TYPES:
                    return None  # a lock, failure or unlock: the task was waiting, as recorded
                self._apply(e, {**p, "spiff_id": self.external_mapping.get(p.get("spiff_id", ""))})
            elif e.type == "instance_completed":
                if not self.wf.is_completed():
                    return "the instance completed, but the replay has not"
                return None
            else:
                return None
        except NoTarget as exc:
            return _no_target(e, exc)
        self.serializer.prune(self.wf)  # as the live command does when it saves
        self.unclaimed = self._new_ready()
        return None

    def _created(self, e: EventRecord) -> str | None:
        if not self.unclaimed:
            self.unclaimed = self._new_ready()
        match = next((t for t in self.unclaimed if t.task_spec.bpmn_id == e.element_id), None)
        if match is None:
            return f"task {e.task_id} ({e.element_id}) was created, but the replay has no such new task"
        self.unclaimed.remove(match)
        self.mapping[e.payload["spiff_id"]] = str(match.id)
        self.task_data[e.payload["spiff_id"]] = deepcopy(match.data)
        return None

    def _ready(self, sid: str | None) -> Any:
        """The replayed task `sid` if it is open, else None."""
        assert self.wf is not None
        try:
            t = self.wf.get_task_from_id(UUID(sid)) if sid else None
        except (ValueError, TaskNotFoundException):
            return None
        return t if t is not None and t.state == TaskState.READY else None


def _no_target(e: EventRecord, exc: NoTarget) -> str:
    """The divergence when a recorded input finds nothing to act on in the replay."""
    p = e.payload
    if e.type == "task_completed":
        return f"task {e.task_id} ({e.element_id}) was not open in the replay"
    if e.type in ("message_received", "signal_received"):
        return f"{e.type.split('_')[0]} {p.get('name')} had no receiver in the replay"
    return f"{e.type}: the replay is {exc.message}"


def _data(wf: BpmnWorkflow) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The process data as the instance's most recent top-level task sees it, and the data of each
    running subprocess or call activity, keyed by its element id (with a number when a
    multi-instance runs it several times)."""
    # Each workflow, the top one and every subprocess, has its own last completed task.
    top = dict((wf.last_task or wf.task_tree).data)
    subs: dict[str, dict[str, Any]] = {}
    for sp_id, sp in wf.subprocesses.items():
        if sp.completed:
            continue
        owner = wf.get_task_from_id(sp_id)
        label = owner.task_spec.bpmn_id if owner is not None else str(sp_id)
        n, key = 2, label
        while key in subs:
            key, n = f"{label}#{n}", n + 1
        subs[key] = dict((sp.last_task or sp.task_tree).data)
    return top, subs


def replay_events(instance_id: int, built: Built, events: list[EventRecord], directories: dict[int | None, Directory],
                  serializer: StateSerializer, stored_state: str | None = None, upto: int | None = None,
                  keep_steps: bool = True, built_for: Callable[[int], Built] | None = None) -> ReplayResult:
    """Replay one instance's events; compare the result with `stored_state` when given.

    `built` is the version the instance runs on now; `built_for(definition_id)` gives any other
    version its history names (a migrated instance started on an earlier one)."""
    r = _Replayer(built, directories, serializer, built_for)
    result = ReplayResult(instance_id)
    before: dict[str, Any] = {}

    for e in events:
        try:
            problem = r.apply(e)
        except Exception as exc:  # noqa: BLE001 - any failure is a divergence to report
            problem = f"{e.type} failed in the replay: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        if problem:
            result.divergence = Failure(instance_id, e.seq, "replay divergence", problem)
            break
        if keep_steps and r.wf is not None:
            data, subs = _data(r.wf)
            flat = {**data, **{f"{sp}/{k}": v for sp, d in subs.items() for k, v in d.items()}}
            changed = {k: v for k, v in flat.items() if before.get(k, object()) != v}
            changed.update({k: None for k in before if k not in flat})
            open_tasks = sorted(t.task_spec.bpmn_name or t.task_spec.bpmn_id
                                for t in r.wf.get_tasks(state=TaskState.READY) if t.task_spec.manual)
            result.steps.append(Step(e.seq, e.at, e.type, e.actor, e.element_id, open_tasks, data, changed, subs))
            before = flat
        if upto is not None and e.seq >= upto:
            break
    result.workflow = r.wf
    result.task_data = r.task_data
    if result.divergence is None and stored_state is not None and upto is None and r.wf is not None:
        stored = serializer.loads(stored_state, r.built.spec, r.built.subprocess_specs, r.se)
        serializer.prune(stored)  # a state saved before pruning existed compares as it is saved now
        a, b = fingerprint(r.wf), fingerprint(stored)
        result.matches_stored = a == b
        if a != b:
            where = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            detail = (f"the stored state differs from the replayed one at task #{where} "
                      f"({(b[where]['element'] if where < len(b) else 'missing')})")
            result.divergence = Failure(instance_id, events[-1].seq if events else None, "replay divergence", detail)
    return result

