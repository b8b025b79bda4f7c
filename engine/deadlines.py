"""Due dates, timers, escalation of late work, and the deadline worker.

Everything that falls due is a row in `timers` with an indexed due time; the worker never scans
serialized state. Kinds:

* ``timer``    a BPMN timer event an instance waits on (date, duration or cycle);
* ``start``    a timer start event of a deployed process: firing starts a new instance;
* ``due``      a human task reaches its due date: it becomes overdue, the person responsible and
               their leader are notified, and an escalation is scheduled after the grace period;
* ``followup`` a human task's follow-up date: a reminder;
* ``escalate`` the grace period ran out: the task is escalated one level up (level 1: the head of
               the responsible person's department; level 2: the office role, by default
               ``efficiency_office``), naming both the person responsible and their leader.

Escalation policy per process, as extension properties on the process (or on a user task, which
wins): ``escalation`` (``on``/``off``, default on), ``escalation.grace`` (ISO duration, default
``P1D``), ``escalation.office`` (role id, default ``efficiency_office``).

Catch-up after downtime: every pending row due by "now" fires exactly once, in due order; a cycle
timer that missed several occurrences fires once per missed occurrence, each recorded, up to
``TIGAO_TIMER_CATCHUP`` (default 10) late occurrences in a row; the rest up to now are skipped (the
count is in the history) and the cycle goes on from its first occurrence after now.

Rows due at the same instant fire in a fixed order: a task's own deadlines (``due``, ``followup``,
``escalate``) before BPMN ``timer`` and ``start`` rows, then by id. What lateness causes (an
escalation) is recorded before a boundary timer due at that instant ends the task, so both are
in the history, in the same order on every run.
"""

from __future__ import annotations

import logging
import os
import socket
import time as _time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session
from SpiffWorkflow.util.task import TaskState

from storage.models import Definition, HumanTask, Instance, Timer

from . import cron, history, limits
from .errors import Conflict, EngineError, ScriptError
from .escalation import escalate, mark_overdue, notify, responsible
from .incident_record import open_incident
from .lease import Lease
from .retry import Busy, Contention, pause
from .spiff_events import next_timer_due, pop_fired, pop_skipped
from .timeutil import add_iso_duration, fmt, parse_cycle, parse_datetime, skip_past

if TYPE_CHECKING:
    from .core import Engine
    from .run import Run
    from .bpmn_checks import ProcessInfo

log = logging.getLogger("tigao.worker")


# ---------------------------------------------------------------------------------------------
# Scheduling (called inside the command's transaction)


def schedule_start_timers(engine: Engine, s: Session, d: Definition, info: ProcessInfo, now: datetime) -> None:
    """A new version replaces the previous version's pending start timers."""
    older = select(Definition.id).where(Definition.key == d.key, Definition.id != d.id)
    s.execute(update(Timer).where(Timer.kind == "start", Timer.state == "pending",
                                  Timer.definition_id.in_(older)).values(state="cancelled"))
    for element, kind, text in info.timer_starts:
        first = _start_occurrence(kind, text, now, 0)
        if first is not None:
            s.add(Timer(kind="start", definition_id=d.id, element_id=element, due_at=first, state="pending",
                        payload={"kind": kind, "value": text, "occurrence": 0, "anchor": now.isoformat()}))


def _start_occurrence(kind: str, text: str, anchor: datetime, n: int) -> datetime | None:
    if kind == "date":
        return parse_datetime(text) if n == 0 else None
    if kind == "duration":
        return add_iso_duration(anchor, text) if n == 0 else None
    if cron.is_quartz(text):
        return cron.occurrence(text, anchor, n)
    cycle = parse_cycle(text, anchor)
    if cycle.repetitions >= 0 and n >= cycle.repetitions:
        return None
    return cycle.occurrence(n)


def on_task_created(run: Run, row: HumanTask) -> None:
    if row.due_at is not None:
        if row.due_at <= run.now:
            mark_overdue(run.engine, run.s, run.inst, row, run.now)
        else:
            run.s.add(Timer(instance_id=row.instance_id, kind="due", task_id=row.id, element_id=row.element_id,
                            due_at=row.due_at, state="pending"))
    if row.follow_up_at is not None and row.follow_up_at > run.now:
        run.s.add(Timer(instance_id=row.instance_id, kind="followup", task_id=row.id,
                        element_id=row.element_id, due_at=row.follow_up_at, state="pending"))


def record_fired_timers(run: Run, tasks: list[Any]) -> None:
    """Record every timer occurrence that fired during this command, in due order."""
    fired = []
    skipped: dict[str, int] = {}
    for t in tasks:
        for due in pop_fired(t):
            utc_due = datetime.fromisoformat(due).astimezone(timezone.utc).isoformat()
            fired.append((utc_due, str(t.id), t.task_spec.bpmn_id))
        n = pop_skipped(t)
        if n:
            skipped[str(t.id)] = n
    last = {sid: due for due, sid, _ in sorted(fired)}
    for due, sid, element in sorted(fired):
        # Bounded catch-up (limits.py): the occurrences skipped after this one.
        extra = {"skipped": skipped.pop(sid)} if sid in skipped and last[sid] == due else {}
        run.event("timer_fired", run.actor_for_timers, {"spiff_id": sid, "due_at": due,
                                                        "trigger": run.trigger_pending, **extra}, element_id=element)
        run.trigger_pending = False


def sync_timers(run: Run, waiting: list[Any]) -> None:
    """Make the pending `timer` rows of the instance equal the timers it now waits on."""
    s, inst, now = run.s, run.inst, run.now
    if run.closed_task_ids:
        # Due dates, reminders and escalations of tasks closed by this command are void.
        s.execute(update(Timer).where(Timer.task_id.in_(run.closed_task_ids), Timer.state == "pending")
                  .values(state="cancelled"))
    if not run.built.has_timers:
        return  # no timer event in the diagrams: no timer rows to keep in step
    want: dict[tuple[str, datetime], str] = {}
    for t in waiting:
        due_at = next_timer_due(t)
        if due_at is not None:
            want[(str(t.id), due_at)] = t.task_spec.bpmn_id
    have = {(r.spiff_id, r.due_at): r for r in s.scalars(select(Timer).where(
        Timer.instance_id == inst.id, Timer.kind == "timer", Timer.state == "pending"))}
    for key, row in have.items():
        if key not in want:
            row.state = "fired" if row.due_at <= now else "cancelled"
            row.fired_at = now if row.state == "fired" else None
    for (sid, due), element in want.items():
        if (sid, due) not in have:
            s.add(Timer(instance_id=inst.id, kind="timer", spiff_id=sid, element_id=element, due_at=due,
                        state="pending"))


# ---------------------------------------------------------------------------------------------
# The worker

# Ties at one instant: the task's deadlines first, then BPMN timers (see the module docstring).
TIE_ORDER = case((Timer.kind.in_(("due", "followup", "escalate")), 0), else_=1)


@dataclass
class Fired:
    timer_id: int
    kind: str
    instance_id: int | None
    element_id: str | None
    due_at: datetime
    outcome: str  # fired | skipped | failed | retrying (due again later: a retry cycle)


class Worker:
    """Fires due rows in due order, each in its own transaction.

    On PostgreSQL several workers share the table: each claims one row with
    `SELECT ... FOR UPDATE SKIP LOCKED` and then its instance with `SKIP LOCKED`, so no row fires
    twice; a worker that dies mid-transaction releases its locks and the row is taken by another.
    On SQLite one worker at a time holds a lease row in `settings`, which its heartbeat keeps
    fresh (see `engine.lease`); a worker whose process died, or whose heartbeat stopped, loses it
    within seconds.

    Locks are taken in one order everywhere: the instance row, then its task and timer rows. The
    worker takes its timer row with SKIP LOCKED and then the instance with SKIP LOCKED (neither
    waits), so it never waits for a row while holding one another command needs first. A pass
    that still loses a race for locks (deadlock, serialization failure, a busy SQLite) is
    retried after a growing pause; it never ends the worker.
    """

    def __init__(self, engine: Engine, name: str | None = None, yield_gap: bool = True):
        """`yield_gap`: on SQLite, pause after each transaction so that other processes' commands
        waiting for the write lock get their turn (see `run_once`). A caller that runs the worker
        between its own commands, in one thread, has nobody waiting and turns it off."""
        self.engine = engine
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.yield_gap = yield_gap
        self.stopping = False
        self._held = False
        self.lease = Lease(self.name)
        self.contended = 0  # transactions that lost a race for locks and were run again

    # -- SQLite single-worker lease (wall clock: it is about processes, not process time)
    def acquire_lease(self) -> bool:
        """Take (or renew: a heartbeat) the SQLite lease; False while another live worker holds it."""
        if self.engine.dialect != "sqlite":
            return True
        try:
            with self.engine._tx() as s:
                self._held = self.lease.take(s)
        except (Contention, Busy):
            return self._held  # busy: try again at the next heartbeat; a held lease stays ours
        return self._held

    def release_lease(self) -> None:
        if self.engine.dialect != "sqlite":
            return
        with self.engine._tx() as s:
            self.lease.give_back(s)
        self._held = False

    def idle(self, seconds: float) -> None:
        """Wait between passes, keeping the heartbeat fresh and stopping early when asked."""
        until = _time.monotonic() + seconds
        while not self.stopping and _time.monotonic() < until:
            _time.sleep(min(0.2, max(0.0, until - _time.monotonic())))
            if self._held and self.lease.beat_due():
                self.acquire_lease()

    def run_once(self, limit: int | None = None) -> list[Fired]:
        """Fire everything due now (up to `limit`); return what was done.

        On SQLite the pass holds the worker lease (taking it if this worker does not hold it
        yet, and giving it back at the end in that case); another worker's live lease is refused.
        """
        held_before = self._held
        # A lease held and fresh needs no write; a heartbeat renews it when due (below, too).
        if not (held_before and not self.lease.beat_due()) and not self.acquire_lease():
            raise Conflict("another worker is running on this SQLite database (one at a time on SQLite); "
                           "wait for it to stop, or use PostgreSQL for several workers")
        done: list[Fired] = []
        skip: set[int] = set()
        sqlite = self.engine.dialect == "sqlite"
        failures = 0
        try:
            while not self.stopping and (limit is None or len(done) < limit):
                if sqlite and self.lease.beat_due():
                    if not self.acquire_lease():
                        raise Conflict("the worker lease was taken over by another worker; stopping")
                began = _time.monotonic()
                try:
                    fired = self._fire_next(skip)
                except (Contention, Busy) as exc:
                    self.contended += 1
                    failures += 1
                    wait = pause(failures)
                    log.warning("lost a race for locks (%s); trying again in %.2f s", exc.message, wait)
                    _time.sleep(wait)
                    continue
                failures = 0
                if fired is None:
                    break  # the pass ends here: nothing was written, no turn to give
                if sqlite and self.yield_gap:
                    # SQLite has one writer at a time and its busy handler polls: leave a gap after
                    # each transaction so that users' commands waiting for the lock get their turn.
                    _time.sleep(min(0.1, max(0.005, _time.monotonic() - began)))
                if fired.outcome == "skipped":
                    skip.add(fired.timer_id)
                    continue
                done.append(fired)
        finally:
            if not held_before:
                self.release_lease()
        return done

    @staticmethod
    def _claim(s: Session, now: datetime, skip: set[int], timer_id: int | None = None) -> Timer | None:
        """The earliest due pending row no other worker holds (or row `timer_id`), locked."""
        q = select(Timer).where(Timer.state == "pending", Timer.due_at <= now)
        if timer_id is not None:
            q = q.where(Timer.id == timer_id)
        elif skip:
            q = q.where(Timer.id.not_in(skip))
        return s.scalar(q.order_by(Timer.due_at, TIE_ORDER, Timer.id).limit(1).with_for_update(skip_locked=True))

    def _fire_next(self, skip: set[int]) -> Fired | None:
        engine = self.engine
        claimed: int | None = None  # the id: the row object is gone once the transaction rolled back
        try:
            with engine._tx() as s:
                now = engine.clock.now()
                timer = self._claim(s, now, skip)
                if timer is None:
                    return None
                claimed = timer.id
                inst = None
                if timer.instance_id is not None:
                    inst = s.scalar(select(Instance).where(Instance.id == timer.instance_id)
                                    .with_for_update(skip_locked=True))
                    if inst is None:
                        return Fired(timer.id, timer.kind, timer.instance_id, timer.element_id, timer.due_at,
                                     "skipped")
                result = Fired(timer.id, timer.kind, timer.instance_id, timer.element_id, timer.due_at, "fired")
                self._fire(s, timer, inst, now)
                if timer.state == "pending":
                    timer.state = "fired"
                    timer.fired_at = now
                log.info("fired %s %s (instance %s, %s) due %s; now %s", timer.kind, timer.id, timer.instance_id,
                         timer.element_id, fmt(timer.due_at, seconds=True), fmt(now, seconds=True))
                return result
        except ScriptError as exc:
            assert claimed is not None
            return self._fail(claimed, exc)

    def _fail(self, timer_id: int, exc: EngineError) -> Fired | None:
        """A step failed and its transaction rolled back: mark the row failed (an incident, not retried)."""
        with self.engine._tx() as s:
            now = self.engine.clock.now()
            instance_id = s.scalar(select(Timer.instance_id).where(Timer.id == timer_id))
            if instance_id is not None:  # the instance first, then its timer row: the one lock order
                s.execute(select(Instance.id).where(Instance.id == instance_id).with_for_update())
            timer = self._claim(s, now, set(), timer_id)
            if timer is None:
                return None  # another worker took it over meanwhile
            message = exc.message
            if timer.kind == "handler" and not getattr(exc, "uncaught_bpmn_error", False):
                # camunda:failedJobRetryTimeCycle (engine/retry_cycle.py); an uncaught BPMN error is not retried
                from .handlers import retry_later

                verdict = retry_later(self.engine, s, timer, message, now)
                if verdict == "retry":
                    return Fired(timer.id, timer.kind, timer.instance_id, timer.element_id, timer.due_at, "retrying")
                if verdict:
                    message = f"{message} ({verdict})"
            timer.state = "failed"
            timer.error = message
            timer.fired_at = now
            log.error("timer %s (instance %s) failed: %s", timer.id, timer.instance_id, message)
            if timer.instance_id is not None:
                inst = s.get(Instance, timer.instance_id)
                if inst is not None:
                    history.append(s, inst, "script_failed", now, "system",
                                   {"error": message, "timer": timer.id}, element_id=timer.element_id)
            open_incident(s, s.get(Instance, timer.instance_id) if timer.instance_id is not None else None,
                          "handler" if timer.kind == "handler" else "timer", timer.element_id, message,
                          f"timer:{timer.id}", now)
            return Fired(timer.id, timer.kind, timer.instance_id, timer.element_id, timer.due_at, "failed")

    def _fire(self, s: Session, timer: Timer, inst: Instance | None, now: datetime) -> None:
        engine = self.engine
        if timer.kind == "start":
            self._fire_start(s, timer, now)
            return
        assert inst is not None
        if inst.status != "running":
            timer.state = "cancelled"
            return
        if timer.kind == "handler":  # an in-process service task handler (engine/handlers.py)
            from .handlers import run_step

            run_step(engine, s, timer, inst)
            return
        if timer.kind == "timer":

            run: Run = engine._load_run(s, inst.id)
            task = None
            for t in run.wf.get_tasks(state=TaskState.WAITING):
                if str(t.id) == timer.spiff_id:
                    task = t
            if task is None:
                timer.state = "cancelled"
                return
            run.trigger_pending = True  # the first occurrence recorded is this pass's input (replay)
            run.actor_for_timers = "system"
            run.apply("timer_fired", {})
            run.finish("system")
            return
        row = s.get(HumanTask, timer.task_id) if timer.task_id else None
        if row is None or row.state != "open":
            timer.state = "cancelled"
            return
        if timer.kind == "due":
            mark_overdue(engine, s, inst, row, now)
        elif timer.kind == "followup":
            people, _ = responsible(engine, s, row)
            notify(s, people[:50], now, "follow_up", row, f"reminder: task {row.id} '{row.name}' "
                    f"needs attention (follow-up date {fmt(row.follow_up_at, zone=True)})")
            history.append(s, inst, "task_follow_up", now, "system", {"spiff_id": row.spiff_id},
                           element_id=row.element_id, task_id=row.id)
        elif timer.kind == "escalate":
            escalate(engine, s, inst, row, int((timer.payload or {}).get("level", 1)), now)

    def _fire_start(self, s: Session, timer: Timer, now: datetime) -> None:
        engine = self.engine
        d = s.get(Definition, timer.definition_id)
        assert d is not None
        built = engine._built(d)
        payload = dict(timer.payload or {})
        run = engine._new_run(s, d, built, {}, None, "system",
                              {"via": "timer", "element": timer.element_id, "due_at": timer.due_at.isoformat()})
        run.finish("system")
        n = int(payload.get("occurrence", 0)) + 1
        nxt = _start_occurrence(payload["kind"], payload["value"], datetime.fromisoformat(payload["anchor"]), n)
        timer.state = "fired"
        timer.fired_at = now
        if nxt is not None and nxt <= now and payload["kind"] == "cycle":
            # Bounded catch-up (limits.py): after TIGAO_TIMER_CATCHUP late starts in a row, skip to
            # the first occurrence after now instead of starting one instance per missed occurrence.
            payload["behind"] = int(payload.get("behind", 0)) + 1
            if payload["behind"] >= limits.current().timer_catchup:
                cycle = parse_cycle(payload["value"], datetime.fromisoformat(payload["anchor"]))
                skipped, nxt = skip_past(nxt, cycle.interval_text, now)
                if cycle.repetitions >= 0 and n + skipped >= cycle.repetitions:
                    skipped, nxt = max(cycle.repetitions - n, 0), None
                n += skipped
                payload["behind"] = 0
                history.append(s, run.inst, "timer_skipped", now, "system",
                               {"element": timer.element_id, "skipped": skipped})
        else:
            payload["behind"] = 0
        if nxt is not None:
            payload["occurrence"] = n
            s.add(Timer(kind="start", definition_id=d.id, element_id=timer.element_id, due_at=nxt,
                        state="pending", payload=payload))

    def next_due(self) -> datetime | None:
        with self.engine._tx() as s:
            return s.scalar(select(Timer.due_at).where(Timer.state == "pending").order_by(Timer.due_at).limit(1))

