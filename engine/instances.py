"""Instances: starting, loading, changing and reading process instances (mixed into Engine)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Definition, Event, HumanTask, Instance

from . import history
from .errors import Conflict, EngineError, InputError, NotFound, ScriptError
from .retry import retrying
from .run import Run
from .values import check_data, process_data

if TYPE_CHECKING:
    from .core import Engine
    from .definitions import Built

T = TypeVar("T")


class InstanceApi:
    """start, cancel, migrate and the other changes, instances, instance, history, element_names."""

    @retrying
    def start(self: Engine, key: str, data: dict[str, Any] | None = None, business_key: str | None = None,
              actor: str | None = None) -> int:
        data = check_data(data)
        with self._tx() as s:
            self._check_actor(s, actor)
            d = self._latest_definition(s, key)
            if d is None:
                raise NotFound(f"no process '{key}' is deployed; 'tigao definitions' lists what is")
            built = self._built(d)
            info = built.analysis.processes[key]
            if info.message_starts and not _has_plain_start(built):
                raise InputError(f"process '{key}' starts when message '{info.message_starts[0]}' arrives; "
                                 f"send it with 'tigao message {info.message_starts[0]}'")
            from .camunda_start import with_start_form

            data = with_start_form(info.start, built.forms, data)  # the start form, with its defaults
            run = self._new_run(s, d, built, data, business_key, actor, {"via": "start"})
            run.finish(actor)
            return run.inst.id

    def _new_run(self: Engine, s: Session, d: Definition, built: Built, data: dict[str, Any], business_key: str | None,
                 actor: str | None, how: dict[str, Any]) -> Run:
        """A new instance of `d`, started (its `instance_started` input applied and recorded)."""
        from .apply import new_workflow
        from .camunda_start import initiator_data

        now = self.clock.now()
        self._dir(s)
        data = {**data, **initiator_data(built.analysis.processes[d.key].start, how, actor)}  # camunda:initiator
        wf = new_workflow(built, self.script_engine)
        inst = Instance(definition_id=d.id, process_key=d.key, business_key=business_key, status="running",
                        state="", started_at=now, started_by=actor, last_seq=0, last_hash=history.GENESIS)
        s.add(inst)
        s.flush()
        run = Run(self, s, inst, built, wf, now)
        payload = {"data": data, "business_key": business_key,
                   "definition": {"key": d.key, "version": d.version}, **how}
        run.event("instance_started", actor, payload)
        run.apply("instance_started", payload)
        return run

    def _run_on(self: Engine, instance_id: int, actor: str | None, body: Callable[[Run], T],
                acting: bool = True) -> T:
        """Load an instance under lock, apply `body` (which applies its input through `Run.apply`), sync
        and save; one transaction.

        A script that fails rolls everything back; the failure itself is then recorded as an event.
        """
        try:
            with self._tx() as s:
                self._check_actor(s, actor, acting)
                run = self._load_run(s, instance_id)
                result = body(run)
                run.finish(actor)
                return result
        except ScriptError as exc:
            self._record_failure(instance_id, actor, exc)
            raise

    def _load_run(self: Engine, s: Session, instance_id: int, for_update: bool = True,
                  inst: Instance | None = None) -> Run:
        """The instance's Run; `inst`: its row, already read (and locked) by this transaction."""
        if inst is None:
            inst = s.scalar(select(Instance).where(Instance.id == instance_id).with_for_update())
        # A definition row never changes: once built, it is not read again.
        built = self.built.peek(inst.definition_id) if inst is not None else None
        if built is None:
            inst, _d, built = self._instance_built(s, instance_id, lock=True)
        self._dir(s)
        # The workflow this process saved last is reused when the stored version is still the one
        # it saved (no one else changed the instance since); it is taken out of the cache, so a
        # command that fails can never leave a half-changed object behind.
        cached = self._wf_cache.pop(instance_id, None) if for_update else None
        if cached is not None and cached[0] == inst.version:
            wf = cached[1]
        else:
            wf = self.serializer.loads(inst.state, built.spec, built.subprocess_specs, self.script_engine)
        return Run(self, s, inst, built, wf, self.clock.now())

    def _record_failure(self: Engine, instance_id: int, actor: str | None, exc: ScriptError) -> None:
        try:
            with self._tx() as s:
                inst = s.scalar(select(Instance).where(Instance.id == instance_id).with_for_update())
                if inst is not None:
                    history.append(s, inst, "script_failed", self.clock.now(), actor,
                                   {"error": exc.message, "element": getattr(exc, "element", None)},
                                   element_id=getattr(exc, "element", None))
        except EngineError:
            pass

    @retrying
    def cancel(self: Engine, instance_id: int, reason: str, actor: str | None = None) -> None:
        if not reason or not reason.strip():
            raise InputError("give a reason for cancelling (--reason TEXT); it goes into the history")

        def body(run: Run) -> None:
            if run.inst.status != "running":
                raise Conflict(f"instance {instance_id} is {run.inst.status}, not running")
            run.event("instance_cancelled", actor, {"reason": reason})
            run.apply("instance_cancelled", {"reason": reason})
            run.cancelled = reason

        self._run_on(instance_id, actor, body)

    # An administrator's changes to running instances (engine/modify.py).
    @retrying
    def migrate(self: Engine, instance_id: int, to_version: int, mapping: dict[str, str] | None = None,
                actor: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Move a running instance to version `to_version` (element ids map to themselves unless mapped)."""
        from . import modify

        return modify.migrate(self, instance_id, to_version, mapping, actor, reason)

    def migrate_all(self: Engine, key: str, from_version: int, to_version: int, mapping: dict[str, str] | None = None,
                    actor: str | None = None, reason: str | None = None) -> Any:
        """Migrate every running instance of `key`:`from_version`; a report of moved and refused."""
        from . import modify

        return modify.migrate_all(self, key, from_version, to_version, mapping, actor, reason)

    @retrying
    def cancel_activity(self: Engine, instance_id: int, element_id: str, actor: str | None = None,
                        reason: str | None = None) -> None:
        from . import modify

        modify.cancel_activity(self, instance_id, element_id, actor, reason)

    @retrying
    def start_before(self: Engine, instance_id: int, element_id: str, actor: str | None = None,
                     reason: str | None = None) -> None:
        from . import modify

        modify.start_before(self, instance_id, element_id, actor, reason)

    @retrying
    def set_variable(self: Engine, instance_id: int, name: str, value: Any, actor: str | None = None,
                     reason: str | None = None) -> None:
        from . import modify

        modify.set_variable(self, instance_id, name, value, actor, reason)

    def instances(self: Engine, status: str | None = None, key: str | None = None, business_key: str | None = None,
                  limit: int = 200, started_after: datetime | None = None, started_before: datetime | None = None,
                  offset: int = 0) -> list[dict[str, Any]]:
        with self._tx(read=True) as s:
            q = select(Instance.id, Instance.process_key, Definition.version, Instance.business_key,
                       Instance.status, Instance.started_at, Instance.ended_at, Instance.started_by) \
                .join(Definition, Definition.id == Instance.definition_id)
            if status:
                q = q.where(Instance.status == status)
            if key:
                q = q.where(Instance.process_key == key)
            if business_key:
                q = q.where(Instance.business_key == business_key)
            if started_after:
                q = q.where(Instance.started_at >= started_after)
            if started_before:
                q = q.where(Instance.started_at < started_before)
            q = q.order_by(Instance.id.desc()).offset(offset).limit(limit)
            rows = s.execute(q).all()
            open_counts = dict(s.execute(
                select(HumanTask.instance_id, func.count()).where(HumanTask.state == "open",
                                                                  HumanTask.instance_id.in_([r.id for r in rows]))
                .group_by(HumanTask.instance_id)).all())
            return [{"id": r.id, "key": r.process_key, "version": r.version, "business_key": r.business_key,
                     "status": r.status, "started_at": r.started_at, "ended_at": r.ended_at,
                     "started_by": r.started_by, "open_tasks": open_counts.get(r.id, 0)} for r in rows]

    def _instance_built(self: Engine, s: Session, instance_id: int, lock: bool = False) -> tuple[Instance, Definition, Built]:
        """An instance with the definition version it runs on, built; NotFound if there is none."""
        q = select(Instance).where(Instance.id == instance_id)
        inst = s.scalar(q.with_for_update() if lock else q)
        if inst is None:
            raise NotFound(f"no instance {instance_id}; 'tigao instances' lists them")
        d = s.get(Definition, inst.definition_id)
        assert d is not None
        return inst, d, self._built(d)

    def instance(self: Engine, instance_id: int) -> dict[str, Any]:
        from SpiffWorkflow.util.task import TaskState

        from .spiff_events import next_timer_due

        with self._tx(read=True) as s:
            inst, d, built = self._instance_built(s, instance_id)
            wf = self.serializer.loads(inst.state, built.spec, built.subprocess_specs, self.script_engine)
            tasks = self._task_views(s, select(HumanTask).where(HumanTask.instance_id == instance_id)
                                     .order_by(HumanTask.id))
            waiting = [{"element": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name,
                        "event": type(t.task_spec.event_definition).__name__,
                        "due": next_timer_due(t)} for t in wf.get_tasks(state=TaskState.WAITING)
                       if getattr(t.task_spec, "event_definition", None) is not None]
            return {"id": inst.id, "key": inst.process_key, "version": d.version, "definition_id": d.id,
                    "business_key": inst.business_key, "status": inst.status, "started_at": inst.started_at,
                    "started_by": inst.started_by, "ended_at": inst.ended_at, "end_reason": inst.end_reason,
                    "data": process_data(wf), "tasks": tasks, "waiting": waiting, "events": inst.last_seq}


    # ------------------------------------------------------------------ history
    def history(self: Engine, instance_id: int) -> list[Event]:
        with self._tx(read=True) as s:
            if s.get(Instance, instance_id) is None:
                raise NotFound(f"no instance {instance_id}")
            return list(s.scalars(select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)))

    def element_names(self: Engine, instance_id: int) -> dict[str, str]:
        """Element id -> name (label) for the diagrams an instance runs on."""
        with self._tx(read=True) as s:
            built = self._instance_built(s, instance_id)[2]
        names: dict[str, str] = {}
        for spec in [built.spec, *built.subprocess_specs.values()]:
            for ts in spec.task_specs.values():
                bid, label = getattr(ts, "bpmn_id", None), getattr(ts, "bpmn_name", None)
                if bid and label:
                    names[bid] = label
        return names


def _has_plain_start(built: Built) -> bool:
    """Whether the process has a start event without a trigger (so `tigao start` may start it)."""
    return any(ts.__class__.__name__ == "StartEvent"
               and ts.event_definition.__class__.__name__ == "NoneEventDefinition"
               for ts in built.spec.task_specs.values())

