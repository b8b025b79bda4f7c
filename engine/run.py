"""One instance loaded inside a transaction: apply inputs (engine/apply.py), project tasks, timers
and subscriptions, save."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Event, HumanTask, Instance, TaskCandidate

from . import history, limits, signals
from .assignment import Directory, split_ids
from .errors import EngineError, NotFound, ScriptError
from .timeutil import due_from
from .values import READ_ONLY_ROLE, process_data

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

    from .apply import Applied
    from .core import Engine
    from .definitions import Built


class Run:
    """One instance loaded inside a transaction: apply inputs, advance, project, save."""

    def __init__(self, engine: Engine, s: Session, inst: Instance, built: Built, wf: BpmnWorkflow, now: datetime):
        self.engine = engine
        self.s = s
        self.inst = inst
        self.built = built
        self.wf = wf
        self.now = now
        self.cancelled: str | None = None  # the reason, once cancelled
        self.new_tasks: list[HumanTask] = []
        self.closed_task_ids: list[int] = []
        self.open_rows: list[HumanTask] | None = None  # the instance's open tasks, if already read
        # Timer occurrences fired during this command are recorded by the timer sync; the worker
        # marks the first one as the trigger of its pass (an input for replay).
        self.trigger_pending = False
        self.actor_for_timers: str | None = None
        self.thrown_signals: list[str] = []  # broadcast to other instances once committed
        self.finish_actor: str | None = None

    def event(self, type_: str, actor: str | None, payload: dict[str, Any], element_id: str | None = None,
              task_id: int | None = None) -> Event:
        if type_ in history.INPUT_TYPES:
            # Replay runs each input with the organisation that was in force.
            payload = {**payload, "dir": self.engine.directory_version}
        return history.append(self.s, self.inst, type_, self.now, actor, payload, element_id, task_id)

    def _guard(self, fn: Callable[[], Any]) -> Any:
        from SpiffWorkflow.exceptions import SpiffWorkflowException

        try:
            with limits.scope(limits.for_process(self.built.analysis.processes[self.inst.process_key].properties)):
                return fn()
        except EngineError:
            raise
        except (SpiffWorkflowException, ValueError, TypeError, KeyError, NameError, ZeroDivisionError,
                AttributeError, IndexError, OverflowError, RecursionError) as exc:
            inner = exc.__cause__ or exc.__context__
            if isinstance(inner, ScriptError):
                raise inner from exc  # a script bound, wrapped by SpiffWorkflow's DMN engine
            element = None
            task = getattr(exc, "task", None)
            if task is not None:
                element = getattr(task.task_spec, "bpmn_id", None)
            msg = str(exc).splitlines()[0].rstrip(" .") if str(exc) else exc.__class__.__name__
            err = ScriptError(f"process step failed{f' at {element}' if element else ''}: {msg}; "
                              "nothing was changed")
            err.element = element  # type: ignore[attr-defined]
            raise err from exc

    def apply(self, kind: str, payload: dict[str, Any],
              built_for: Callable[[int], Built] | None = None) -> Applied:
        """Apply one input to the workflow now (engine/apply.py, the code replay runs too), inside
        the process's limits; NotFound naming the instance when it has nothing to act on."""
        from .apply import NoTarget, apply_input

        try:
            return self._guard(lambda: apply_input(self.wf, kind, payload, at=self.now, built_for=built_for))
        except NoTarget as exc:
            raise NotFound(f"instance {self.inst.id} is {exc.message}") from None

    def deliver(self, name: str, data: dict[str, Any], actor: str | None) -> None:
        applied = self.apply("message_received", {"name": name, "data": data})
        self.event("message_received", actor, {"name": name, "data": data}, element_id=applied.element_id)

    def finish(self, actor: str | None) -> None:
        """Project tasks, timers and subscriptions; close the instance if done; save the state."""
        from SpiffWorkflow.util.task import TaskState

        from .deadlines import on_task_created, record_fired_timers, sync_timers

        s, inst, now = self.s, self.inst, self.now
        directory = self.engine._dir(s)
        tasks = self.wf.get_tasks()  # one walk of the tree serves every projection below
        waiting = [t for t in tasks if t.state == TaskState.WAITING]
        record_fired_timers(self, tasks)
        ready = [t for t in tasks if t.state == TaskState.READY and t.task_spec.manual]
        ready_ids = {str(t.id) for t in ready}
        if self.open_rows is not None:  # read with the command's own task row
            open_rows = {r.spiff_id: r for r in self.open_rows if r.state == "open"}
        else:
            open_rows = {r.spiff_id: r for r in s.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id,
                                                                                   HumanTask.state == "open"))}
        for sid, row in open_rows.items():
            if sid not in ready_ids:
                row.state = "cancelled"
                row.completed_at = now
                if row.due_at is not None or row.follow_up_at is not None:
                    self.closed_task_ids.append(row.id)  # (only a task with a deadline has timers to void)
                self.event("task_cancelled", actor, {"spiff_id": sid}, element_id=row.element_id, task_id=row.id)
        limits.check_count(sum(1 for t in ready if str(t.id) not in open_rows), "max_new_tasks",
                           "human tasks created by one command")
        # The new rows first, inserted in one flush (one INSERT); then each one's candidates,
        # event and deadline timers, in the order of the tasks.
        created = [self._new_task(t, directory) for t in ready if str(t.id) not in open_rows]
        if created:
            s.flush()
        for row, cand_users, cand_groups in created:
            self._record_task(row, cand_users, cand_groups)
            on_task_created(self, row)
        sync_timers(self, waiting)
        from .external import sync as sync_external

        sync_external(self, tasks)
        if self.built.has_messages:
            self._sync_subscriptions(waiting)
        if self.built.has_signals:
            from .spiff_events import pop_thrown_signals

            signals.sync(self, waiting)
            self.thrown_signals, self.finish_actor = pop_thrown_signals(self.wf), actor
        if self.inst.status == "running":
            if self.cancelled:
                inst.status = "cancelled"
                inst.ended_at = now
                inst.end_reason = self.cancelled
            elif self.wf.is_completed():
                inst.status = "completed"
                inst.ended_at = now
                self.event("instance_completed", actor, {"data": process_data(self.wf)})
        self.engine.serializer.prune(self.wf)  # completed work leaves the tree (engine/prune.py)
        try:
            self.engine.serializer.store(inst, self.wf)  # the parts that changed (storage/state_parts.py)
        except (TypeError, ValueError) as exc:
            raise ScriptError(f"process data is not JSON-serialisable ({exc}); scripts must produce JSON values") \
                from exc
        inst.version = (inst.version or 0) + 1
        history.flush_pending(s)  # the events and the instance row, each written once
        s.flush()
        self.engine._saved_runs.append(self)

    def _new_task(self, t: Any, directory: Directory) -> tuple[HumanTask, list[str], list[str]]:
        """The task row of a READY manual task (added to the session, not yet flushed) and its
        candidate users and groups."""
        spec = t.task_spec
        meta = self.built.task_meta.get((t.workflow.spec.name, spec.bpmn_id))
        if meta is None:
            meta = next((m for (owner, eid), m in self.built.task_meta.items() if eid == spec.bpmn_id), None)
        from .scripting import is_expression

        se = self.engine.script_engine

        def value(text: str | None) -> Any:
            if text is None or not str(text).strip():
                return None
            if is_expression(text):
                return self._guard(lambda: se.evaluate(t, text))
            return text

        assignee = value(meta.assignee) if meta else None
        if isinstance(assignee, (list, tuple)):
            assignee = assignee[0] if assignee else None
        cand_users = split_ids(value(meta.candidate_users)) if meta else []
        cand_groups = split_ids(value(meta.candidate_groups)) if meta else []
        role = directory.role_for_lane(meta.lane, meta.lane_id) if meta else None
        if role is None and getattr(spec, "lane", None):
            role = directory.role_for_lane(spec.lane)
        if not assignee and not cand_users and not cand_groups and role:
            cand_groups = [role]
        elif not assignee and not cand_users and not cand_groups:
            from .camunda import default_candidates

            info = self.built.analysis.processes.get(self.inst.process_key)
            cand_users, cand_groups = default_candidates(info.properties if info else {},
                                                       [u for u, p in directory.users.items()
                                                        if set(p.roles) != {READ_ONLY_ROLE}])
        due = self._when(value(meta.due_date) if meta else None, "dueDate", spec.bpmn_id)
        follow = self._when(value(meta.follow_up_date) if meta else None, "followUpDate", spec.bpmn_id)
        prio_raw = value(meta.priority) if meta else None
        try:
            priority = int(prio_raw) if prio_raw is not None else 50
        except (TypeError, ValueError):
            raise ScriptError(f"priority of {spec.bpmn_id} is '{prio_raw}', not a whole number") from None
        row = HumanTask(instance_id=self.inst.id, spiff_id=str(t.id), element_id=spec.bpmn_id,
                        name=spec.bpmn_name or spec.bpmn_id, lane=meta.lane if meta else None, role=role,
                        assignee=str(assignee) if assignee else None, state="open", priority=priority,
                        form_key=meta.form_key if meta else None, created_at=self.now, due_at=due,
                        follow_up_at=follow, escalation_level=0)
        self.s.add(row)
        return row, cand_users, cand_groups

    def _record_task(self, row: HumanTask, cand_users: list[str], cand_groups: list[str]) -> None:
        """The candidates and the `task_created` event of a new row (flushed: it has its id)."""
        self.s.add_all([TaskCandidate(task_id=row.id, kind="user", value=u) for u in dict.fromkeys(cand_users)])
        self.s.add_all([TaskCandidate(task_id=row.id, kind="group", value=g) for g in dict.fromkeys(cand_groups)])
        self.event("task_created", None, {
            "spiff_id": row.spiff_id, "name": row.name, "assignee": row.assignee,
            "candidate_users": list(dict.fromkeys(cand_users)), "candidate_groups": list(dict.fromkeys(cand_groups)),
            "due_at": row.due_at.isoformat() if row.due_at else None, "form_key": row.form_key,
            "priority": row.priority,
        }, element_id=row.element_id, task_id=row.id)
        self.new_tasks.append(row)

    def _when(self, v: Any, attr: str, element: str) -> datetime | None:
        if v is None:
            return None
        if isinstance(v, datetime):
            return v.astimezone(timezone.utc) if v.tzinfo else v.replace(tzinfo=timezone.utc)
        try:
            return due_from(str(v), self.now)
        except ValueError as exc:
            raise ScriptError(f"camunda:{attr} of {element}: {exc}") from exc

    def _sync_subscriptions(self, waiting: list[Any]) -> None:
        from .spiff_events import message_catchers
        from .subscriptions import project

        project(self.s, self.inst.id, "message",
                [(str(t.id), ev.name, t.task_spec.bpmn_id) for t, ev in message_catchers(waiting)])

