"""Incidents: work that failed in the background and waits for an operator; stuck instances.

An incident opens when a step the worker runs fails (a script after a timer, a timer itself, an
in-process handler) or when an external task's worker reports a failure with no retries left. It
names the instance, the element, the kind, the message and the time, and `ref` names the failed
row. `retry` runs the step again: a failed timer or handler step fires again at once (and the
incident is resolved only if it succeeds); an external task gets one retry, so a worker can fetch
it again. Opening and resolving are history events of the instance.

A failure in a command a person runs (completing a task whose next script fails) is not an
incident: nothing changed, and the person is told at once.

An instance that is running but waits for nothing (no open human task, timer, message subscription,
external task or handler step, and no open incident) is reported as stuck: nothing will ever move it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select

from storage.models import ExternalTask, HumanTask, Incident, Instance, MessageSubscription, Timer

from .errors import Conflict, InputError, NotFound, ScriptError
from .incident_record import resolve_incident

if TYPE_CHECKING:
    from .core import Engine


def view(inc: Incident) -> dict[str, Any]:
    return {"id": inc.id, "instance_id": inc.instance_id, "element_id": inc.element_id, "kind": inc.kind,
            "ref": inc.ref, "message": inc.message, "created_at": inc.created_at, "resolved_at": inc.resolved_at,
            "resolved_by": inc.resolved_by}


class IncidentApi:
    """incidents, stuck_instances, retry_incident (mixed into Engine)."""

    def incidents(self: Engine, include_resolved: bool = False, instance_id: int | None = None,
                  limit: int = 500, resolved_only: bool = False) -> list[dict[str, Any]]:
        """Incidents, oldest first; open ones only unless `include_resolved`. With `resolved_only`,
        the resolved ones, the last resolved first (what an operator looks back at)."""
        with self._tx(read=True) as s:
            q = select(Incident)
            if resolved_only:
                q = q.where(Incident.resolved_at.is_not(None)).order_by(Incident.resolved_at.desc(), Incident.id.desc())
            else:
                if not include_resolved:
                    q = q.where(Incident.resolved_at.is_(None))
                q = q.order_by(Incident.created_at, Incident.id)
            if instance_id is not None:
                q = q.where(Incident.instance_id == instance_id)
            return [view(i) for i in s.scalars(q.limit(limit))]

    def stuck_instances(self: Engine, limit: int = 500) -> list[dict[str, Any]]:
        """Running instances that wait for nothing and have no open incident."""
        iid = Instance.id
        with self._tx(read=True) as s:
            q = select(Instance.id, Instance.process_key, Instance.started_at).where(
                Instance.status == "running",
                ~exists().where(HumanTask.instance_id == iid, HumanTask.state == "open"),
                ~exists().where(Timer.instance_id == iid, Timer.state == "pending"),
                ~exists().where(MessageSubscription.instance_id == iid),
                ~exists().where(ExternalTask.instance_id == iid, ExternalTask.state == "open"),
                ~exists().where(Incident.instance_id == iid, Incident.resolved_at.is_(None)),
            ).order_by(Instance.id).limit(limit)
            return [{"instance_id": r.id, "key": r.process_key, "started_at": r.started_at,
                     "message": "running, but waits for no task, timer, message or external task"}
                    for r in s.execute(q)]

    def retry_incident(self: Engine, incident_id: int, actor: str) -> dict[str, Any]:
        """Run the failed step again; the incident is resolved when it succeeds."""
        if not actor:
            raise InputError("say who you are with --as USER")
        from .deadlines import Worker

        with self._tx() as s:
            self._check_actor(s, actor)
            inc = s.get(Incident, incident_id)
            if inc is None:
                raise NotFound(f"no incident {incident_id}; 'tigao incidents' lists them")
            if inc.resolved_at is not None:
                raise Conflict(f"incident {incident_id} was already resolved by {inc.resolved_by}")
            kind, _, ref_id = (inc.ref or "").partition(":")
            instance_id = inc.instance_id
        if kind not in ("timer", "external") or not ref_id.isdigit():
            raise Conflict(f"incident {incident_id} names no step that can run again")
        try:
            with self._tx() as s:
                now = self.clock.now()
                if instance_id is not None:
                    self._lock_instance(s, instance_id)
                inc = s.get(Incident, incident_id)
                assert inc is not None
                if inc.resolved_at is not None:
                    raise Conflict(f"incident {incident_id} was just resolved by {inc.resolved_by}")
                if kind == "external":
                    row = s.get(ExternalTask, int(ref_id))
                    if row is None or row.state != "open":
                        how = "the external task no longer waits"
                        resolve_incident(s, inc, now, actor, how)
                        return {"incident": incident_id, "resolved": True, "how": how}
                    row.retries, row.not_before = max(row.retries or 0, 1), None
                    how = "one more retry: a worker may fetch the task again"
                    resolve_incident(s, inc, now, actor, how)
                    return {"incident": incident_id, "resolved": True, "how": how}
                timer = s.get(Timer, int(ref_id))
                if timer is None or timer.state != "failed":
                    raise Conflict(f"incident {incident_id}: its step is no longer failed")
                inst = s.get(Instance, timer.instance_id) if timer.instance_id is not None else None
                timer.state, timer.error = "pending", None
                s.flush()
                worker = Worker(self, name=f"retry:{actor}")
                worker._fire(s, timer, inst, now)
                if timer.state == "pending":
                    timer.state, timer.fired_at = "fired", now
                how = "the step ran again and succeeded"
                resolve_incident(s, inc, now, actor, how)
                return {"incident": incident_id, "resolved": True, "how": how}
        except ScriptError as exc:
            if instance_id is not None:
                self._record_failure(instance_id, actor, exc)
            raise ScriptError(f"incident {incident_id} stays open: the step failed again ({exc.message})") from exc
