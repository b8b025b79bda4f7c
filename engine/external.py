"""External tasks, the pattern Camunda 7 users know: workers fetch and lock, then report.

A STARTED service task with `camunda:type="external"` is projected into `external_tasks` (one row
per waiting task, in the command's transaction). A worker fetches and locks rows of its topics for
a while (`fetch_and_lock`); only the lock holder may `complete`, report a `failure` (with retries
and a retry timeout; none left opens an incident) or a `bpmn_error` (caught by an error boundary
event of the task); `extend_lock` and `unlock` manage the lock. A lock that expired may be fetched
by another worker, and the first holder may then no longer report.

Every lock, failure and result is a history event in the instance's chain. Completion and BPMN
errors are inputs: the live commands and replay (engine/replay.py) apply them through
engine/apply.py (`apply_result`/`apply_error` below); locks and failures are checked against the
replayed state.

On PostgreSQL, fetching claims rows with `FOR UPDATE SKIP LOCKED` and then each row's instance with
`SKIP LOCKED`, so two workers never get the same task and neither waits for the other.
"""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from storage.models import ExternalTask, Instance, Timer

from . import history
from .errors import Conflict, InputError, NotFound
from .incident_record import open_incident
from .services import service_of
from .values import check_data

if TYPE_CHECKING:
    from .core import Engine
    from .run import Run

MAX_LOCK_MS = 7 * 24 * 3600 * 1000  # a week: a longer lock is a mistake, not a plan
MAX_TASKS = 1000


def _iso(d: datetime | None) -> str | None:
    return d.isoformat(timespec="milliseconds") if d else None


def view(row: ExternalTask) -> dict[str, Any]:
    """A row as the API shows it (Camunda's field names are chosen by the HTTP layer)."""
    return {"id": row.id, "topic": row.topic, "handler": row.handler, "instance_id": row.instance_id,
            "process_key": row.process_key, "element_id": row.element_id, "business_key": row.business_key,
            "priority": row.priority, "retries": row.retries, "state": row.state, "worker_id": row.lock_owner,
            "lock_expires_at": _iso(row.lock_expires_at), "error_message": row.error_message,
            "error_details": row.error_details, "created_at": _iso(row.created_at),
            "spiff_id": row.spiff_id}


# ---------------------------------------------------------------------------------------------
# Projection (called from Run.finish, inside the command's transaction)


def sync(run: Run, tasks: list[Any]) -> None:
    """Make the instance's open external-task rows equal its STARTED service tasks."""
    from SpiffWorkflow.util.task import TaskState

    built = run.built
    if getattr(built, "_has_services", None) is None:  # cached on the built definition
        built._has_services = any(service_of(ts) for sp in [built.spec, *built.subprocess_specs.values()]
                                  for ts in sp.task_specs.values())
    if not built._has_services:
        return
    s, inst, now = run.s, run.inst, run.now
    want = {str(t.id): t for t in tasks if t.state == TaskState.STARTED and service_of(t.task_spec)}
    have = {r.spiff_id: r for r in s.scalars(select(ExternalTask).where(ExternalTask.instance_id == inst.id,
                                                                         ExternalTask.state == "open"))}
    for sid, row in have.items():
        if sid not in want:  # an interrupting boundary event or a cancel ended it
            row.state, row.ended_at, row.lock_owner, row.lock_expires_at = "cancelled", now, None, None
            run.event("external_task_cancelled", None, {"external_task": row.id, "spiff_id": sid},
                      element_id=row.element_id)
            for timer in s.scalars(select(Timer).where(Timer.instance_id == inst.id, Timer.kind == "handler",
                                                       Timer.spiff_id == sid, Timer.state == "pending")):
                timer.state = "cancelled"
    for sid, t in want.items():
        if sid in have:
            continue
        meta = service_of(t.task_spec)
        row = ExternalTask(instance_id=inst.id, process_key=inst.process_key, spiff_id=sid,
                           element_id=t.task_spec.bpmn_id, topic=meta.topic or meta.handler or "",
                           handler=meta.handler, business_key=inst.business_key,
                           priority=_priority(run, t, meta.priority), retries=None, state="open", created_at=now)
        s.add(row)
        s.flush()
        run.event("external_task_created", None, {"external_task": row.id, "spiff_id": sid, "topic": row.topic,
                                                   "handler": row.handler}, element_id=row.element_id)
        if meta.handler:  # due work for the deadline worker, now
            s.add(Timer(instance_id=inst.id, kind="handler", spiff_id=sid, element_id=row.element_id, due_at=now,
                        state="pending", payload={"external_task": row.id}))


def _priority(run: Run, t: Any, text: str | None) -> int:
    from .errors import ScriptError
    from .scripting import is_expression

    if not text:
        return 0
    value: Any = text
    if is_expression(text):
        value = run._guard(lambda: run.engine.script_engine.evaluate(t, text))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScriptError(f"camunda:taskPriority of {t.task_spec.bpmn_id} is '{value}', not a whole number") \
            from None


# ---------------------------------------------------------------------------------------------
# Applying results: the one code path for live commands and replay


def apply_result(t: Any, data: dict[str, Any]) -> None:
    """A service task's work is done: its result becomes process variables and the flow goes on."""
    t.data.update(deepcopy(data))
    t.complete()


def _catches(ev: Any, code: str) -> bool:
    from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition

    return isinstance(ev, ErrorEventDefinition) and ev.code in (None, code)


def catching_boundary(t: Any, code: str) -> Any | None:
    """What catches BPMN error `code` thrown by the work of task `t`, innermost scope first: an error
    boundary event of `t`; at each scope around it (an embedded subprocess, a call activity, the
    process), an error event subprocess of that scope waiting at its start, then an error boundary
    event of the activity that is the scope. None when nothing does."""
    from SpiffWorkflow.bpmn.specs.defaults import StartEvent
    from SpiffWorkflow.util.task import TaskState

    top = t.workflow.top_workflow
    node = t
    while node is not None:
        parent = node.parent
        for c in (parent.children if parent is not None else []):
            if c is not node and _catches(getattr(c.task_spec, "event_definition", None), code):
                return c
        scope = node.workflow
        for sub in top.subprocesses.values():  # event subprocesses of this scope, waiting at their start
            if sub.parent_workflow is scope:
                for w in sub.tasks.values():
                    if isinstance(w.task_spec, StartEvent) and w.state == TaskState.WAITING \
                            and _catches(getattr(w.task_spec, "event_definition", None), code):
                        return w
        if scope is top or getattr(scope, "parent_task_id", None) is None:
            return None
        node = top.get_task_from_id(scope.parent_task_id)
    return None


def uncaught_message(element_id: str, code: str) -> str:
    return (f"BPMN error '{code}' from {element_id} is caught by no error boundary event or error event "
            f"subprocess around {element_id}; add one to the diagram (the error's errorCode must be "
            f"'{code}'), or report a failure instead")


def apply_error(t: Any, code: str, data: dict[str, Any]) -> None:
    """A BPMN error from the task's work: the catching boundary event takes the flow."""
    from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
    from SpiffWorkflow.bpmn.util import BpmnEvent

    t.data.update(deepcopy(data))
    event = BpmnEvent(ErrorEventDefinition(code, code=code), payload=deepcopy(t.data), target=t.workflow)
    t.workflow.top_workflow.catch(event)


# ---------------------------------------------------------------------------------------------
# The API (mixed into Engine)


class ExternalTaskApi:
    """fetch_and_lock, complete, failure, bpmn_error, extend_lock, unlock, external_tasks."""

    def fetch_and_lock(self: Engine, worker_id: str, topics: list[dict[str, Any]], max_tasks: int = 10,
                       business_key: str | None = None, actor: str | None = None) -> list[dict[str, Any]]:
        """Lock up to `max_tasks` open tasks of the given topics for `worker_id`.

        Each topic is `{"topic": name, "lock_duration": ms, "variables": [names] or None,
        "business_key": key or None}`. Returns the locked tasks with their variables.
        """
        if not worker_id or not str(worker_id).strip():
            raise InputError("give a workerId: the worker that will hold the locks")
        if not isinstance(max_tasks, int) or not 0 < max_tasks <= MAX_TASKS:
            raise InputError(f"maxTasks must be a whole number from 1 to {MAX_TASKS}")
        by_topic = {}
        for tp in topics or []:
            name, ms = tp.get("topic"), tp.get("lock_duration")
            if not name or not isinstance(name, str):
                raise InputError("every topic needs a topicName")
            if not isinstance(ms, int) or isinstance(ms, bool) or not 0 < ms <= MAX_LOCK_MS:
                raise InputError(f"topic '{name}': lockDuration must be milliseconds from 1 to {MAX_LOCK_MS}")
            by_topic[name] = tp
        if not by_topic:
            raise InputError("name at least one topic to fetch (topics: [{topicName, lockDuration}])")
        with self._tx() as s:
            if actor is not None:
                self._check_actor(s, actor)
            now = self.clock.now()
            q = select(ExternalTask).where(
                ExternalTask.state == "open", ExternalTask.handler.is_(None),
                or_(*[and_(ExternalTask.topic == name, *([ExternalTask.business_key == tp["business_key"]]
                                                         if tp.get("business_key") is not None else []))
                      for name, tp in by_topic.items()]),
                or_(ExternalTask.lock_expires_at.is_(None), ExternalTask.lock_expires_at <= now),
                or_(ExternalTask.not_before.is_(None), ExternalTask.not_before <= now),
                or_(ExternalTask.retries.is_(None), ExternalTask.retries > 0))
            if business_key is not None:
                q = q.where(ExternalTask.business_key == business_key)
            # Exactly the rows handed out are locked: a larger batch would hide the rest from other workers.
            q = q.order_by(ExternalTask.priority.desc(), ExternalTask.id).limit(max_tasks)
            out: list[dict[str, Any]] = []
            for row in s.scalars(q.with_for_update(skip_locked=True)):
                tp = by_topic[row.topic]
                inst = s.scalar(select(Instance).where(Instance.id == row.instance_id)
                                .with_for_update(skip_locked=True))
                if inst is None or inst.status != "running":
                    continue  # another command holds the instance: the task is taken next time
                row.lock_owner = worker_id
                row.lock_expires_at = now + timedelta(milliseconds=tp["lock_duration"])
                history.append(s, inst, "external_task_locked", now, actor or worker_id,
                               {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id,
                                "lock_until": row.lock_expires_at.isoformat()}, element_id=row.element_id)
                data = self.serializer.task_data(inst.state, row.spiff_id) or {}
                names = tp.get("variables")
                if names is not None:
                    data = {k: v for k, v in data.items() if k in set(names)}
                out.append({**view(row), "variables": data})
            return out

    def _locked_row(self: Engine, s: Session, task_id: int, worker_id: str | None, check_owner: bool = True
                    ) -> ExternalTask:
        row = s.get(ExternalTask, task_id) if isinstance(task_id, int) else None
        if row is None or row.handler is not None:
            raise NotFound(f"no external task {task_id}; 'tigao external-tasks' lists them")
        self._lock_instance(s, row.instance_id)
        s.refresh(row, with_for_update=True)
        if row.state != "open":
            raise NotFound(f"external task {task_id} is {row.state}; it no longer waits for a worker")
        if check_owner and row.lock_owner != worker_id:
            held = f"it is locked by '{row.lock_owner}'" if row.lock_owner else "it is not locked"
            raise Conflict(f"external task {task_id} cannot be reported by worker '{worker_id}': {held}; "
                           "fetch and lock it first")
        return row

    def _started_task(self: Engine, run: Run, row: ExternalTask) -> Any:
        from SpiffWorkflow.util.task import TaskState

        t = run.wf.get_task_from_id(UUID(row.spiff_id))
        if t is None or t.state != TaskState.STARTED:
            raise Conflict(f"external task {row.id} ({row.element_id}) no longer waits in its instance")
        return t

    def complete_external(self: Engine, task_id: int, worker_id: str, variables: dict[str, Any] | None = None,
                          actor: str | None = None) -> None:
        """The lock holder completes the task; its variables become process variables."""
        data = check_data(variables)

        def body(run: Run) -> None:
            row = self._locked_row(run.s, task_id, worker_id)
            self._started_task(run, row)
            run.event("external_task_completed", actor or worker_id,
                      {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id, "data": data},
                      element_id=row.element_id)
            row.state, row.ended_at, row.lock_expires_at = "completed", run.now, None
            run.apply("external_task_completed", {"spiff_id": row.spiff_id, "data": data})

        self._run_on(self._instance_of(task_id), actor, body, acting=True)

    def bpmn_error(self: Engine, task_id: int, worker_id: str, code: str, message: str | None = None,
                   variables: dict[str, Any] | None = None, actor: str | None = None) -> None:
        """The lock holder reports a business error: an error boundary event of the task, or of a
        subprocess around it, or an error event subprocess catches it; when nothing does, an
        incident opens and the task waits (`tigao retry` lets a worker fetch it again)."""
        data = check_data(variables)
        if not code or not str(code).strip():
            raise InputError("give an errorCode: the boundary event that catches it names the same code")

        def body(run: Run) -> None:
            row = self._locked_row(run.s, task_id, worker_id)
            t = self._started_task(run, row)
            if catching_boundary(t, code) is None:
                # Nothing around the task catches it: the task waits for an operator (an incident).
                run.event("external_task_bpmn_error_uncaught", actor or worker_id,
                          {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id, "code": code,
                           "message": message}, element_id=row.element_id)
                row.retries, row.lock_owner, row.lock_expires_at = 0, None, None
                row.error_message = f"BPMN error {code}" + (f": {message}" if message else "")
                open_incident(run.s, run.inst, "external", row.element_id,
                              f"{uncaught_message(row.element_id, code)} (external task {row.id})",
                              f"external:{row.id}", run.now, actor or worker_id)
                return
            run.event("external_task_bpmn_error", actor or worker_id,
                      {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id, "code": code,
                       "message": message, "data": data}, element_id=row.element_id)
            row.state, row.ended_at, row.lock_expires_at = "completed", run.now, None
            row.error_message = f"BPMN error {code}" + (f": {message}" if message else "")
            run.apply("external_task_bpmn_error", {"spiff_id": row.spiff_id, "code": code, "data": data})

        self._run_on(self._instance_of(task_id), actor, body, acting=True)

    def _instance_of(self: Engine, task_id: int) -> int:
        with self._tx() as s:
            iid = s.scalar(select(ExternalTask.instance_id).where(ExternalTask.id == task_id,
                                                                  ExternalTask.handler.is_(None)))
        if iid is None:
            raise NotFound(f"no external task {task_id}; 'tigao external-tasks' lists them")
        return iid

    def external_failure(self: Engine, task_id: int, worker_id: str, message: str | None, details: str | None = None,
                         retries: int | None = None, retry_timeout: int = 0, actor: str | None = None) -> None:
        """The lock holder could not do the work: set the retries left (none: an incident) and when
        the task may be fetched again (`retry_timeout` milliseconds from now)."""
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            raise InputError("retries must be a whole number, 0 or more")
        if not isinstance(retry_timeout, int) or isinstance(retry_timeout, bool) or not 0 <= retry_timeout <= MAX_LOCK_MS:
            raise InputError(f"retryTimeout must be milliseconds from 0 to {MAX_LOCK_MS}")
        with self._tx() as s:
            row = self._locked_row(s, task_id, worker_id)
            inst = s.get(Instance, row.instance_id)
            assert inst is not None
            now = self.clock.now()
            from .retry_cycle import of_element

            # camunda:failedJobRetryTimeCycle fills in what the worker leaves out (engine/retry_cycle.py).
            cycle = of_element(self._instance_built(s, row.instance_id)[2], row.element_id)
            if retries is not None:
                left = retries
            elif cycle is not None:
                left = cycle.left_after_failure(row.retries)
            else:
                left = max((row.retries or 1) - 1, 0)
            row.retries, row.error_message, row.error_details = left, (message or "")[:4000], details
            row.lock_owner, row.lock_expires_at = None, None
            row.not_before = now + timedelta(milliseconds=retry_timeout) if retry_timeout else None
            if not retry_timeout and cycle is not None and left > 0:
                row.not_before = cycle.next_due(now, left)
            history.append(s, inst, "external_task_failed", now, actor or worker_id,
                           {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id,
                            "message": message, "retries": left, "retry_timeout": retry_timeout,
                            "not_before": row.not_before.isoformat() if row.not_before else None},
                           element_id=row.element_id)
            if left == 0:
                open_incident(s, inst, "external", row.element_id, f"{message or 'no message'} (external task {row.id}, "
                              f"topic {row.topic}: no retries left)", f"external:{row.id}", now, actor)

    def extend_lock(self: Engine, task_id: int, worker_id: str, new_duration: int, actor: str | None = None) -> None:
        """The lock holder keeps the task `new_duration` milliseconds from now."""
        if not isinstance(new_duration, int) or isinstance(new_duration, bool) or not 0 < new_duration <= MAX_LOCK_MS:
            raise InputError(f"newDuration must be milliseconds from 1 to {MAX_LOCK_MS}")
        with self._tx() as s:
            row = self._locked_row(s, task_id, worker_id)
            now = self.clock.now()
            if row.lock_expires_at is None or row.lock_expires_at <= now:
                raise Conflict(f"the lock of external task {task_id} has expired; fetch and lock it again")
            row.lock_expires_at = now + timedelta(milliseconds=new_duration)
            inst = s.get(Instance, row.instance_id)
            assert inst is not None
            history.append(s, inst, "external_task_lock_extended", now, actor or worker_id,
                           {"external_task": row.id, "spiff_id": row.spiff_id, "worker": worker_id,
                            "lock_until": row.lock_expires_at.isoformat()}, element_id=row.element_id)

    def unlock(self: Engine, task_id: int, actor: str | None = None) -> None:
        """Release the lock (anyone allowed to act may): the task can be fetched at once."""
        with self._tx() as s:
            if actor is not None:
                self._check_actor(s, actor)  # known to the directory, and not only an auditor
            row = self._locked_row(s, task_id, None, check_owner=False)
            inst = s.get(Instance, row.instance_id)
            assert inst is not None
            previous = row.lock_owner
            row.lock_owner, row.lock_expires_at = None, None
            history.append(s, inst, "external_task_unlocked", self.clock.now(), actor,
                           {"external_task": row.id, "spiff_id": row.spiff_id, "worker": previous},
                           element_id=row.element_id)

    def external_tasks(self: Engine, topic: str | None = None, instance_id: int | None = None,
                       state: str = "open", locked: bool | None = None, task_id: int | None = None,
                       handlers: bool = False, limit: int = 500, offset: int = 0) -> list[dict[str, Any]]:
        """External tasks (and, with `handlers`, handler steps) from the projection table."""
        with self._tx(read=True) as s:
            now = self.clock.now()
            q = select(ExternalTask)
            if not handlers:
                q = q.where(ExternalTask.handler.is_(None))
            if state != "any":
                q = q.where(ExternalTask.state == state)
            if topic:
                q = q.where(ExternalTask.topic == topic)
            if instance_id is not None:
                q = q.where(ExternalTask.instance_id == instance_id)
            if task_id is not None:
                q = q.where(ExternalTask.id == task_id)
            if locked is True:
                q = q.where(ExternalTask.lock_expires_at > now)
            elif locked is False:
                q = q.where(or_(ExternalTask.lock_expires_at.is_(None), ExternalTask.lock_expires_at <= now))
            rows = s.scalars(q.order_by(ExternalTask.id).offset(offset).limit(limit))
            return [view(r) for r in rows]



# ---------------------------------------------------------------------------------------------
# Replay: the recorded results are applied; locks and failures must find their task waiting

REPLAYED = frozenset({"external_task_created", "external_task_completed", "external_task_bpmn_error",
                      "handler_completed", "handler_bpmn_error", "external_task_locked", "external_task_failed",
                      "external_task_lock_extended", "external_task_unlocked", "external_task_cancelled"})


def replay_external(replayer: Any, e: Any) -> str | None:
    """Apply one external-task event to the replayed workflow; a divergence message or None."""
    from SpiffWorkflow.util.task import TaskState

    wf, p = replayer.wf, e.payload
    mapping: dict[str, str] = replayer.__dict__.setdefault("external_mapping", {})
    if e.type == "external_task_created":
        mapped = set(mapping.values())
        match = next((t for t in wf.get_tasks(state=TaskState.STARTED)
                      if t.task_spec.bpmn_id == e.element_id and str(t.id) not in mapped), None)
        if match is None:
            return f"external task {p.get('external_task')} ({e.element_id}) was created, but the replay waits there"\
                   " for nothing"
        mapping[p["spiff_id"]] = str(match.id)
        return None
    sid = mapping.get(p.get("spiff_id", ""))
    t = wf.get_task_from_id(UUID(sid)) if sid else None
    if e.type == "external_task_cancelled":
        return None  # the replayed flow left the task already (checked by the final state)
    if t is None or t.state != TaskState.STARTED:
        return f"{e.type}: external task {p.get('external_task')} ({e.element_id}) was not waiting in the replay"
    return None  # waiting, as recorded; a result is then applied by replay through engine/apply.py
