"""The campaign report: the leadership group's view of the Improvement Year (`tigao report`).

Every figure is computed from what the engine stored: the `instances`, `human_tasks` and
`events` tables, the directory tables, the deployed definition files (`definitions.files`, which
say which task belongs to which phase) and, for the few figures that depend on a case's process
variables (the department a finding was routed to, an evaluation's department), the stored state
of the instance that ran the case. Nothing comes from whoever produced the data (the demo's
simulation keeps no figures of its own in the database).

A time window (`date_from`, `date_to`) restricts the report to what happened in it: a task
counts as done in the window when it was completed in it, a finding when its investigation task
was created in it, an escalation when its event is in it, and so on. States are read at the
end of the window (a phase's status, what is open, the campaign's status): a phase's ``tasks``,
``done``, ``open`` and ``late`` are cumulative from the start of the campaign to the end of the
window, because a phase's completion is a state, not an event; ``done_in_window`` and
``late_in_window`` are the phase's figures for the window itself. The text report says which is
which, and names the window and the display time zone in its heading.

The dictionary returned by `campaign_report` is JSON-serialisable (`tigao report --json`):

* ``window``: ``from``/``to`` (ISO 8601 UTC or None), ``as_of`` (the engine's time when the
  report was made) and ``states_at`` (the instant states are read at: the end of the window, or
  ``as_of`` without one).
* ``campaign``: the newest `campaign` instance as it was at the end of the window:
  ``instance``, ``status`` (``running``, ``completed``, ``cancelled``; None when it had not
  started), ``started_at``, ``ended_at``.
* ``phases``: one row per stage of the campaign, in diagram order: first ``campaign`` itself
  (the leadership group's meetings between the phases), then one row per call activity
  (``phase1_mobilize``, ...). Each row: ``key``, ``name``, ``status`` (``not started``,
  ``running``, ``completed``), ``tasks`` (human tasks of the stage created by the end of the
  window; tasks of processes the stage calls, such as rectifications, count for the stage),
  ``done`` (of those, completed by the end of the window), ``open`` (not yet closed at the end
  of the window), ``late`` (done after their due date, or open and past it at the end of the
  window), ``started`` (first task created) and ``completed_at`` (when the flow left the phase:
  the creation of the task that follows it in the campaign diagram); ``done_in_window`` (tasks of
  the stage completed in the window) and ``late_in_window`` (of those, completed after their due
  date, plus tasks that fell due in the window and were still open at its end).
* ``departments``: one row per department of the directory: ``id``, ``name``, ``members``,
  ``tasks_done`` (human tasks completed in the window by a member of the department),
  ``with_due`` (of those, tasks that had a due date), ``on_time`` (of those, completed at or
  before the due date), ``on_time_rate`` (on_time / with_due, None without tasks with a due
  date), ``late`` (with_due - on_time), ``findings`` (problems routed to the department: cases
  whose investigation task was created in the window, from inspections, spot checks,
  after-the-fact checks and complaints), ``confirmed`` (investigations completed in the window
  that confirmed the problem), ``self_found`` (self-checks completed in the window by a member
  that found a problem), ``rectified`` (verifications passed in the window of the department's
  cases: routed cases and members' own problems), ``discipline`` (cases of the department handed
  to discipline inspection in the window), ``escalations`` (escalation events in the window of
  tasks the department's members were responsible for, each event counted once per department)
  and ``score`` (the year-end evaluation score, None before it).
* ``complaints``: ``received`` (complaint instances started in the window, i.e. messages
  `complaint_received` that arrived), ``out_of_hours`` (of those, received outside office hours:
  weekends, or weekdays before 08:30 or from 17:30, display time zone), ``registered``
  (registration tasks completed in the window: accepted and routed, 有訴必理), ``routed`` (cases
  of complaints whose investigation task was created in the window), ``confirmed`` /
  ``unfounded`` (investigations of complaints completed in the window), ``with_result``
  (complainants told the result in the window, 有理必果) and ``open`` (complaint instances still
  running at the end of the window).
* ``checks``: ``quarterly_inspections`` (inspection tasks completed in the window) and
  ``inspection_findings`` (problems they listed); ``spot_checks`` / ``after_checks`` (instances
  started in the window), ``spot_check_problems`` / ``after_check_problems`` (checks completed
  in the window that found a problem).
* ``escalations``: ``overdue`` (task_overdue events in the window: a task passed its due date
  while open), ``escalated`` (task_escalated events in the window), ``level1`` (to the
  responsible person's leader), ``level2`` (to the office), ``open_overdue`` (tasks open and
  past their due date at the end of the window).
* ``discipline``: ``cases`` (tasks of discipline inspection created in the window: the
  disposition was "discipline", a serious or repeated case), ``decided`` (of all such tasks,
  completed in the window) and ``by_department``.
* ``evaluation``: ``scores`` (department id -> score of the year-end evaluation completed in
  the window), ``best`` (the department with the highest score; ties go to the first in id
  order), ``average``, ``county_result`` (the county's verdict, if recorded in the window).
* ``totals``: ``tasks_done``, ``with_due``, ``on_time``, ``on_time_rate`` over all users.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timezone
from typing import Any
from uuid import UUID

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from storage.models import Definition, Department, Event, HumanTask, Instance, User

from engine.core import Engine
from engine.errors import InputError
from engine.timeutil import display_tz, fmt, parse_datetime, zone_name

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CAMPAIGN = "campaign"
OFFICE_FROM = time(8, 30)
OFFICE_TO = time(17, 30)

# Elements of the campaign diagrams the figures read (see processes/*.bpmn).
INVESTIGATE = "Task_investigate"
VERIFY = "Task_verify"
SELF_VERIFY = "Task_self_verify"
DISCIPLINE = "Task_discipline"
SELF_CHECK = "Task_self_check"
REGISTER = "Task_register_complaint"
NOTIFY = "Task_notify_complainant"
EVALUATE = "Task_evaluate_department"
QUARTERLY = "Task_quarterly_inspection"
SPOT = "Task_spot_check"
AFTER = "Task_after_check"
COUNTY = "Task_county_inspection"

Window = tuple[datetime | None, datetime | None]


def campaign_report(engine: Engine, date_from: date | datetime | str | None = None,
                    date_to: date | datetime | str | None = None) -> dict[str, Any]:
    """The campaign report of the database behind `engine` (see the module docstring).

    Args:
        engine: the engine of the database to report on.
        date_from: start of the window: a date (from 00:00, display time zone), an aware
            date-time or an ISO string; None for no lower bound.
        date_to: end of the window: a date (to the end of that day), an aware date-time or an
            ISO string; None for no upper bound.

    Returns:
        The report as a JSON-serialisable dictionary.

    Raises:
        InputError: a date cannot be read, or the window ends before it starts.
    """
    lo = _bound(date_from, end_of_day=False)
    hi = _bound(date_to, end_of_day=True)
    if lo is not None and hi is not None and hi < lo:
        raise InputError(f"the window ends ({fmt(hi, zone=True)}) before it starts ({fmt(lo, zone=True)})")
    with engine._tx() as s:
        as_of = engine.clock.now()
        r = _Reader(engine, s, (lo, hi), as_of)
        return r.report()


def _bound(value: date | datetime | str | None, end_of_day: bool) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError(f"time '{value.isoformat()}' has no time zone")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        value = value.isoformat()
    try:
        return parse_datetime(str(value), end_of_day=end_of_day)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _in(when: datetime | None, window: Window) -> bool:
    """Whether `when` lies in the window (bounds included)."""
    if when is None:
        return False
    lo, hi = window
    return (lo is None or when >= lo) and (hi is None or when <= hi)


def _by_end(when: datetime | None, window: Window) -> bool:
    """Whether `when` is at or before the end of the window."""
    return when is not None and (window[1] is None or when <= window[1])


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(timezone.utc).isoformat() if when is not None else None


class _Reader:
    """One report, read inside one transaction."""

    def __init__(self, engine: Engine, s: Session, window: Window, as_of: datetime):
        self.engine = engine
        self.s = s
        self.window = window
        self.end = window[1] or as_of
        self.as_of = as_of
        self.departments = list(s.scalars(select(Department).order_by(Department.id)))
        self.user_dept = dict(s.execute(select(User.id, User.department)).all())
        self.members = Counter(d for d in self.user_dept.values() if d)
        self.instances = {i.id: i for i in s.scalars(select(Instance).order_by(Instance.id))}
        self.tasks = list(s.scalars(select(HumanTask).options(undefer(HumanTask.completed_data))
                                    .order_by(HumanTask.id)))
        self.completed = {e.task_id: e for e in s.scalars(
            select(Event).where(Event.type == "task_completed").order_by(Event.id)) if e.task_id is not None}
        self._case_data = self._read_case_data()

    # ------------------------------------------------------------------ helpers
    def key_of(self, t: HumanTask) -> str:
        inst = self.instances.get(t.instance_id)
        return inst.process_key if inst else ""

    def form_data(self, t: HumanTask) -> dict[str, Any]:
        """What was submitted when the task was completed (from its task_completed event)."""
        e = self.completed.get(t.id)
        data = (e.payload or {}).get("data") if e is not None else None
        return data if isinstance(data, dict) else {}

    def done_in_window(self, t: HumanTask) -> bool:
        return t.state == "completed" and _in(t.completed_at, self.window)

    def _read_case_data(self) -> dict[int, dict[str, Any]]:
        """Process variables of the tasks whose figures depend on them (the department a case
        was routed to, the department an evaluation is about): task id -> the task's data."""
        wanted = {INVESTIGATE, VERIFY, SELF_VERIFY, DISCIPLINE, EVALUATE}
        by_instance: dict[int, list[HumanTask]] = defaultdict(list)
        for t in self.tasks:
            if t.element_id in wanted:
                by_instance[t.instance_id].append(t)
        out: dict[int, dict[str, Any]] = {}
        serializer = self.engine.serializer
        for iid, rows in sorted(by_instance.items()):
            # A completed task's row keeps the data it completed with (migration 0015); the
            # others are read from the stored state, and rows completed before that from a replay.
            rest = []
            for t in rows:
                if t.state == "completed" and t.completed_data is not None:
                    out[t.id] = serializer.data_from_text(t.completed_data)
                else:
                    rest.append(t)
            if not rest:
                continue
            inst = self.instances[iid]
            d = self.s.get(Definition, inst.definition_id)
            assert d is not None
            built = self.engine._built(d)
            wf = serializer.loads(inst.state, built.spec, built.subprocess_specs, self.engine.script_engine)
            cut = []
            for t in rest:
                task = _task_in(wf, UUID(t.spiff_id))
                if task is not None:
                    out[t.id] = dict(task.data)
                else:
                    cut.append(t)
            if cut:  # completed tasks pruned from the tree: their data as the history replays it
                replayed = self._replayed_task_data(iid, built)
                for t in cut:
                    out[t.id] = dict(replayed.get(t.spiff_id) or {})
        return out

    def _replayed_task_data(self, instance_id: int, built: Any) -> dict[str, dict[str, Any]]:
        from engine.audit import Auditor
        from engine.replay import replay_events

        auditor = Auditor(self.engine)
        events = auditor._events(self.s, instance_id)
        result = replay_events(instance_id, built, events, auditor._directories(self.s), self.engine.serializer,
                               keep_steps=False, built_for=auditor._built_for(self.s, events))
        return result.task_data

    def case_department(self, t: HumanTask) -> str | None:
        dept = self._case_data.get(t.id, {}).get("department")
        if isinstance(dept, str) and dept:
            return dept
        return self.user_dept.get(t.assignee or "")

    # ------------------------------------------------------------------ the report
    def report(self) -> dict[str, Any]:
        campaign = max((i for i in self.instances.values() if i.process_key == CAMPAIGN),
                       key=lambda i: i.id, default=None)
        departments = self.department_rows()
        done = [t for t in self.tasks if self.done_in_window(t)]
        with_due = [t for t in done if t.due_at is not None]
        on_time = sum(1 for t in with_due if t.completed_at and t.due_at and t.completed_at <= t.due_at)
        return {
            "window": {"from": _iso(self.window[0]), "to": _iso(self.window[1]), "as_of": _iso(self.as_of),
                       "states_at": _iso(min(self.end, self.as_of))},
            "campaign": self.campaign_state(campaign),
            "phases": self.phase_rows(campaign),
            "departments": departments,
            "complaints": self.complaints(),
            "checks": self.checks(),
            "escalations": self.escalations(),
            "discipline": self.discipline(),
            "evaluation": self.evaluation(),
            "totals": {"tasks_done": len(done), "with_due": len(with_due), "on_time": on_time,
                       "on_time_rate": _rate(on_time, len(with_due))},
        }

    def campaign_state(self, campaign: Instance | None) -> dict[str, Any]:
        if campaign is None or not _by_end(campaign.started_at, self.window):
            return {"instance": campaign.id if campaign else None, "status": None, "started_at": None,
                    "ended_at": None}
        ended = campaign.ended_at if _by_end(campaign.ended_at, self.window) else None
        return {"instance": campaign.id, "status": campaign.status if ended or campaign.ended_at is None
                else "running", "started_at": _iso(campaign.started_at), "ended_at": _iso(ended)}

    # -- phases
    def phase_rows(self, campaign: Instance | None) -> list[dict[str, Any]]:
        if campaign is None:
            return []
        d = self.s.get(Definition, campaign.definition_id)
        assert d is not None
        model = _Model(d.files)
        stages = model.stages(CAMPAIGN)
        tasks = [t for t in self.tasks if t.instance_id == campaign.id and _by_end(t.created_at, self.window)]
        rows = []
        for key, name, elements, follower in stages:
            mine = [t for t in tasks if t.element_id in elements]
            done = [t for t in mine if t.state == "completed" and _by_end(t.completed_at, self.window)]
            still_open = [t for t in mine if t.completed_at is None or t.completed_at > self.end]
            late = sum(1 for t in done if t.due_at and t.completed_at and t.completed_at > t.due_at) + \
                sum(1 for t in still_open if t.due_at and t.due_at < self.end)
            if key == CAMPAIGN:
                finished = campaign.status == "completed" and _by_end(campaign.ended_at, self.window)
                ended = campaign.ended_at if finished else None
            else:
                ended = self._phase_end(campaign, follower, tasks)
            status = "completed" if ended else "running" if mine else "not started"
            in_window = [t for t in done if _in(t.completed_at, self.window)]
            late_in_window = sum(1 for t in in_window if t.due_at and t.completed_at and t.completed_at > t.due_at) \
                + sum(1 for t in still_open if t.due_at and _in(t.due_at, self.window) and t.due_at < self.end)
            rows.append({
                "key": key, "name": name, "status": status, "tasks": len(mine), "done": len(done),
                "open": len(still_open), "late": late, "done_in_window": len(in_window),
                "late_in_window": late_in_window,
                "started": _iso(min((t.created_at for t in mine), default=None)),
                "completed_at": _iso(ended),
            })
        return rows

    def _phase_end(self, campaign: Instance, follower: str | None, tasks: list[HumanTask]) -> datetime | None:
        if follower is None:
            if campaign.status == "completed" and _by_end(campaign.ended_at, self.window):
                return campaign.ended_at
            return None
        return min((t.created_at for t in tasks if t.element_id == follower), default=None)

    # -- departments
    def department_rows(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for d in self.departments:
            rows[d.id] = {"id": d.id, "name": d.name, "members": self.members.get(d.id, 0), "tasks_done": 0,
                          "with_due": 0, "on_time": 0, "on_time_rate": None, "late": 0, "findings": 0,
                          "confirmed": 0, "self_found": 0, "rectified": 0, "discipline": 0, "escalations": 0,
                          "score": None}

        def row(dept: str | None) -> dict[str, Any] | None:
            return rows.get(dept or "")

        for t in self.tasks:
            if self.done_in_window(t):
                r = row(self.user_dept.get(t.completed_by or ""))
                if r is not None:
                    r["tasks_done"] += 1
                    if t.due_at is not None:
                        r["with_due"] += 1
                        if t.completed_at is not None and t.completed_at <= t.due_at:
                            r["on_time"] += 1
            if t.element_id == INVESTIGATE:
                r = row(self.case_department(t))
                if r is not None:
                    if _in(t.created_at, self.window):
                        r["findings"] += 1
                    if self.done_in_window(t) and self.form_data(t).get("confirmed") is True:
                        r["confirmed"] += 1
            elif t.element_id == SELF_CHECK and self.done_in_window(t):
                if self.form_data(t).get("found_problem") is True:
                    r = row(self.user_dept.get(t.completed_by or ""))
                    if r is not None:
                        r["self_found"] += 1
            elif t.element_id in (VERIFY, SELF_VERIFY) and self.done_in_window(t):
                if self.form_data(t).get("verified") is True:
                    r = row(self.case_department(t))
                    if r is not None:
                        r["rectified"] += 1
            elif t.element_id == DISCIPLINE and _in(t.created_at, self.window):
                r = row(self.case_department(t))
                if r is not None:
                    r["discipline"] += 1
        for e in self._events("task_escalated"):
            responsible = (e.payload or {}).get("responsible") or []
            for dept in sorted({self.user_dept.get(u) for u in responsible if self.user_dept.get(u)}):
                r = row(dept)
                if r is not None:
                    r["escalations"] += 1
        for dept, score in self.evaluation()["scores"].items():
            r = row(dept)
            if r is not None:
                r["score"] = score
        for r in rows.values():
            r["on_time_rate"] = _rate(r["on_time"], r["with_due"])
            r["late"] = r["with_due"] - r["on_time"]
        return list(rows.values())

    def _events(self, type_: str) -> Iterable[Event]:
        q = select(Event).where(Event.type == type_).order_by(Event.id)
        return [e for e in self.s.scalars(q) if _in(e.at, self.window)]

    # -- complaints, checks, escalations, discipline, evaluation
    def complaints(self) -> dict[str, Any]:
        complaint_ids = {i.id for i in self.instances.values() if i.process_key == "complaint"}
        received = [i for i in self.instances.values()
                    if i.id in complaint_ids and _in(i.started_at, self.window)]
        tz = display_tz()

        def out_of_hours(when: datetime) -> bool:
            local = when.astimezone(tz)
            return local.weekday() >= 5 or not (OFFICE_FROM <= local.time() < OFFICE_TO)

        mine = [t for t in self.tasks if t.instance_id in complaint_ids]
        investigations = [t for t in mine if t.element_id == INVESTIGATE]
        decided = [t for t in investigations if self.done_in_window(t)]
        return {
            "received": len(received),
            "out_of_hours": sum(1 for i in received if out_of_hours(i.started_at)),
            "registered": sum(1 for t in mine if t.element_id == REGISTER and self.done_in_window(t)),
            "routed": sum(1 for t in investigations if _in(t.created_at, self.window)),
            "confirmed": sum(1 for t in decided if self.form_data(t).get("confirmed") is True),
            "unfounded": sum(1 for t in decided if self.form_data(t).get("confirmed") is False),
            "with_result": sum(1 for t in mine if t.element_id == NOTIFY and self.done_in_window(t)),
            "open": sum(1 for i in self.instances.values() if i.id in complaint_ids
                        and _by_end(i.started_at, self.window)
                        and (i.ended_at is None or i.ended_at > self.end)),
        }

    def checks(self) -> dict[str, Any]:
        def started(key: str) -> int:
            return sum(1 for i in self.instances.values()
                       if i.process_key == key and _in(i.started_at, self.window))

        def problems(element: str) -> int:
            return sum(1 for t in self.tasks if t.element_id == element and self.done_in_window(t)
                       and self.form_data(t).get("problem_found") is True)

        inspections = [t for t in self.tasks if t.element_id == QUARTERLY and self.done_in_window(t)]
        return {
            "quarterly_inspections": len(inspections),
            "inspection_findings": sum(len(self.form_data(t).get("findings") or []) for t in inspections),
            "spot_checks": started("spot_check"),
            "spot_check_problems": problems(SPOT),
            "after_checks": started("after_check"),
            "after_check_problems": problems(AFTER),
        }

    def escalations(self) -> dict[str, Any]:
        escalated = list(self._events("task_escalated"))
        return {
            "overdue": len(list(self._events("task_overdue"))),
            "escalated": len(escalated),
            "level1": sum(1 for e in escalated if (e.payload or {}).get("level") == 1),
            "level2": sum(1 for e in escalated if (e.payload or {}).get("level") == 2),
            "open_overdue": sum(1 for t in self.tasks if t.due_at is not None and t.due_at < self.end
                                and _by_end(t.created_at, self.window)
                                and (t.completed_at is None or t.completed_at > self.end)),
        }

    def discipline(self) -> dict[str, Any]:
        cases = [t for t in self.tasks if t.element_id == DISCIPLINE and _in(t.created_at, self.window)]
        by_department = Counter(self.case_department(t) or "" for t in cases)
        return {
            "cases": len(cases),
            "decided": sum(1 for t in self.tasks if t.element_id == DISCIPLINE and self.done_in_window(t)),
            "by_department": dict(sorted(by_department.items())),
        }

    def evaluation(self) -> dict[str, Any]:
        scores: dict[str, int] = {}
        for t in self.tasks:
            if t.element_id == EVALUATE and self.done_in_window(t):
                dept = self._case_data.get(t.id, {}).get("department")
                score = self.form_data(t).get("score")
                if isinstance(dept, str) and isinstance(score, (int, float)):
                    scores[dept] = score
        scores = dict(sorted(scores.items()))
        best = None
        for dept, score in scores.items():  # in id order: a tie goes to the first
            if best is None or score > scores[best]:
                best = dept
        county = [self.form_data(t).get("result") for t in self.tasks
                  if t.element_id == COUNTY and self.done_in_window(t)]
        return {
            "scores": scores,
            "best": best,
            "average": round(sum(scores.values()) / len(scores), 1) if scores else None,
            "county_result": county[-1] if county else None,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Model:
    """The campaign's diagrams as deployed (from `definitions.files`): which user task belongs to
    which process, what each process calls, and the order of the stages of the campaign."""

    def __init__(self, files: dict[str, str]):
        self.user_tasks: dict[str, set[str]] = defaultdict(set)
        self.calls: dict[str, set[str]] = defaultdict(set)
        self.names: dict[str, str] = {}
        self.trees: dict[str, etree._Element] = {}
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        for name, text in sorted(files.items()):
            if not name.endswith(".bpmn"):
                continue
            root = etree.fromstring(text.encode("utf-8"), parser)
            for proc in root.iter(f"{BPMN}process"):
                pid = proc.get("id")
                self.trees[pid] = proc
                self.names[pid] = proc.get("name") or pid
                for ut in proc.iter(f"{BPMN}userTask"):
                    self.user_tasks[pid].add(ut.get("id"))
                for ca in proc.iter(f"{BPMN}callActivity"):
                    self.calls[pid].add(ca.get("calledElement"))

    def closure(self, pid: str) -> set[str]:
        """User tasks of a process and of every process it calls, transitively."""
        seen, todo, tasks = set(), [pid], set()
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            tasks |= self.user_tasks.get(p, set())
            todo.extend(self.calls.get(p, set()))
        return tasks

    def stages(self, pid: str) -> list[tuple[str, str, set[str], str | None]]:
        """(key, name, user task ids, follower) of the process itself, then of each call activity
        in flow order; `follower` is the first user task after the call activity (None if the
        flow reaches the end first)."""
        proc = self.trees.get(pid)
        if proc is None:
            return []
        nodes = {el.get("id"): el for el in proc if el.get("id")}
        outgoing: dict[str, list[str]] = defaultdict(list)
        for f in proc.iter(f"{BPMN}sequenceFlow"):
            outgoing[f.get("sourceRef")].append(f.get("targetRef"))
        starts = [el.get("id") for el in proc if el.tag == f"{BPMN}startEvent"]
        order: list[str] = []
        seen: set[str] = set()
        queue = list(starts)
        while queue:
            n = queue.pop(0)
            if n in seen:
                continue
            seen.add(n)
            order.append(n)
            queue.extend(outgoing.get(n, []))

        def follower(n: str) -> str | None:
            todo, visited = list(outgoing.get(n, [])), set()
            while todo:
                x = todo.pop(0)
                if x in visited:
                    continue
                visited.add(x)
                el = nodes.get(x)
                if el is not None and el.tag == f"{BPMN}userTask":
                    return x
                todo.extend(outgoing.get(x, []))
            return None

        stages = [(pid, self.names.get(pid, pid), set(self.user_tasks.get(pid, set())), None)]
        claimed: set[str] = set(stages[0][2])
        for n in order:
            el = nodes.get(n)
            if el is None or el.tag != f"{BPMN}callActivity":
                continue
            called = el.get("calledElement")
            tasks = self.closure(called) - claimed
            claimed |= tasks
            stages.append((called, el.get("name") or self.names.get(called, called), tasks, follower(n)))
        return stages


# ---------------------------------------------------------------------------------------------
# Text


def _width(text: str) -> int:
    """Columns a text takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def _table(rows: list[list[str]], headings: list[str], right: set[int] | None = None) -> list[str]:
    right = right or set()
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(headings)]
    lines = ["  ".join(_pad(h, w, i in right) for i, (h, w) in enumerate(zip(headings, widths))).rstrip(),
             "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(_pad(c, w, i in right) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return lines


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _wrap(text: str) -> list[str]:
    """Running text in lines of at most 100 columns (as the command line's tables)."""
    return textwrap.wrap(text, width=100, subsequent_indent="  ", break_long_words=False) or [""]


def _when(iso: str | None) -> str:
    return fmt(datetime.fromisoformat(iso)) if iso else ""


def format_report(report: dict[str, Any]) -> str:
    """The report as text: a heading and aligned tables (wide characters count double)."""
    w, c = report["window"], report["campaign"]
    windowed = bool(w["from"] or w["to"])
    at_end = " at the end of the window" if windowed else ""
    lines = ["Improvement Year (提高年) campaign report"]
    states_at = _when(w.get("states_at") or w["as_of"])
    if windowed:
        lines += _wrap(f"window: {_when(w['from']) or 'the start'} to {_when(w['to']) or 'now'} ({zone_name()}); "
                       f"every figure is for the window, except those marked 'at the end' (read at {states_at})")
    else:
        lines.append(f"whole record, as of {states_at} ({zone_name()})")
    if c["status"] is None:
        lines.append(f"campaign{at_end}: not started")
    else:
        lines.append(f"campaign{at_end}: instance {c['instance']}, {c['status']}, started {_when(c['started_at'])}"
                     + (f", ended {_when(c['ended_at'])}" if c["ended_at"] else ""))

    lines += ["", "Phases" + (" (AT END: from the campaign start to the end of the window)"
                              if windowed else "")]
    if report["phases"] and windowed:
        lines += _table([[p["key"], p["name"], p["status"], f"{p['done']}/{p['tasks']}", str(p["open"]),
                          str(p.get("done_in_window", "")), str(p.get("late_in_window", "")), _when(p["started"]),
                          _when(p["completed_at"])] for p in report["phases"]],
                        ["PHASE", "NAME", "STATUS AT END", "DONE/TASKS AT END", "OPEN AT END", "DONE IN WINDOW",
                         "LATE IN WINDOW", "STARTED", "COMPLETED"], right={3, 4, 5, 6})
    elif report["phases"]:
        lines += _table([[p["key"], p["name"], p["status"], f"{p['done']}/{p['tasks']}", str(p["open"]),
                          str(p["late"]), _when(p["started"]), _when(p["completed_at"])]
                         for p in report["phases"]],
                        ["PHASE", "NAME", "STATUS", "DONE/TASKS", "OPEN", "LATE", "STARTED", "COMPLETED"],
                        right={3, 4, 5})
    else:
        lines.append("(no campaign instance)")

    lines += ["", "Departments" + (" (in the window; STAFF as in the directory now)" if windowed else "")]
    lines += _table([[d["id"], d["name"], str(d["members"]), str(d["tasks_done"]), _pct(d["on_time_rate"]),
                      str(d["findings"]), str(d["self_found"]), str(d["rectified"]), str(d["discipline"]),
                      str(d["escalations"]), "" if d["score"] is None else str(d["score"])]
                     for d in report["departments"]],
                    ["DEPARTMENT", "NAME", "STAFF", "DONE", "ON TIME", "FINDINGS", "SELF-FOUND", "RECTIFIED",
                     "DISCIPLINE", "ESCALATIONS", "SCORE"], right=set(range(2, 11)))
    t = report["totals"]
    lines += _wrap(f"all: {t['tasks_done']} tasks done, {t['on_time']} of {t['with_due']} with a due date "
                   f"on time ({_pct(t['on_time_rate'])})")

    cp = report["complaints"]
    lines += ["", "Complaints (有訴必理、有理必果)", *_wrap(
              f"received {cp['received']} ({cp['out_of_hours']} out of office hours), registered and routed "
              f"{cp['registered']}, confirmed {cp['confirmed']}, unfounded {cp['unfounded']}, "
              f"complainant told the result {cp['with_result']}, still open{at_end} {cp['open']}")]
    ch = report["checks"]
    lines += ["", "Checks", *_wrap(
              f"quarterly inspections {ch['quarterly_inspections']} ({ch['inspection_findings']} findings), "
              f"spot checks {ch['spot_checks']} ({ch['spot_check_problems']} found a problem), "
              f"after-the-fact checks {ch['after_checks']} ({ch['after_check_problems']} found a problem)")]
    es = report["escalations"]
    lines += ["", "Deadlines", *_wrap(
              f"tasks fallen overdue {es['overdue']}, escalations {es['escalated']} "
              f"(to the leader {es['level1']}, to the office {es['level2']}), "
              f"open and overdue at the end{' of the window' if windowed else ''} {es['open_overdue']}")]
    di = report["discipline"]
    by = ", ".join(f"{k or '?'} {v}" for k, v in di["by_department"].items()) or "none"
    lines += ["", "Discipline inspection (黨紀、政紀責任)",
              *_wrap(f"cases {di['cases']}, decided {di['decided']}; by department: {by}")]
    ev = report["evaluation"]
    lines += ["", "Year-end evaluation"]
    if ev["scores"]:
        lines.append(f"average score {ev['average']}, best {ev['best']}"
                     + (f"; county's verdict: {ev['county_result']}" if ev["county_result"] else ""))
    else:
        lines.append("not evaluated in the window" if windowed else "not evaluated yet")
    return "\n".join(lines)


def _task_in(wf: Any, task_id: UUID) -> Any:
    """The task of `wf` (or of one of its subprocesses) with this id, or None."""
    if task_id in wf.tasks:
        return wf.tasks[task_id]
    return next((sp.tasks[task_id] for sp in wf.subprocesses.values() if task_id in sp.tasks), None)
