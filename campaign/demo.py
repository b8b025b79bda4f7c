"""A whole Improvement Year played on a simulated clock: `tigao demo`.

The demo creates (or takes) an empty database on a simulated clock starting 2012-03-01 08:00
(+08:00), loads the sample bureau (processes/org.toml), deploys the campaign (processes/ and
forms/), starts the `campaign` process and plays the year to 2012-12-31 as the bureau's people
would: every step goes through the Engine API, as the person who may do it (the assignee, or a
candidate who claims the task first), with form data that passes the task's form.

What happens is decided by one `random.Random(seed)`, consulted in a fixed order (tasks in the
order of their ids), so the same seed gives the same database contents and the same report:

* staff work on weekdays in office hours and complete most tasks before their due date; some
  are late, fall overdue and are escalated by the deadline worker;
* complaints arrive through the message start event `complaint_received` at any hour, nights and
  weekends included (the 24-hour hotline); the efficiency office member on duty claims each one
  (first-inquiry responsibility) and registers it within hours;
* the quarterly inspections (timers of phase 2), random spot checks and after-the-fact checks
  find problems; investigations confirm most of them; a problem found again in the same
  department is a repeated offence and, like a serious one, goes to discipline inspection;
* some verifications fail and the rectification loops; the first verification of the year fails
  twice before it passes;
* at year end the evaluation group scores every department.

The simulation only chooses inputs. The report it ends with (`campaign.report.campaign_report`) is
computed from what the engine stored, never from the simulation's own counters.
"""

from __future__ import annotations

import heapq
import json
import random
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.models import Definition, Department, Event, Instance, Setting, User

from engine.core import Engine, TaskView
from engine.deadlines import Worker
from engine.errors import Conflict, InputError, StorageError
from engine.timeutil import display_tz

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
FORMS = ROOT / "forms"
ORG = PROCESSES / "org.toml"

CST = timezone(timedelta(hours=8))
YEAR_START = datetime(2012, 3, 1, 8, 0, tzinfo=CST)
YEAR_END = datetime(2012, 12, 31, 23, 59, tzinfo=CST)
# Random spot checks and after-the-fact checks are started during phase 2 (April to November).
PHASE2_CHECKS_FROM = datetime(2012, 5, 7, tzinfo=CST)
PHASE2_CHECKS_TO = datetime(2012, 11, 12, tzinfo=CST)
SPOT_CHECKS = 6
AFTER_CHECKS = 3
# Bulletins are issued about monthly until this date; the last one ends the series.
LAST_BULLETIN_AFTER = datetime(2012, 10, 15, tzinfo=CST)
WORK_FROM = time(8, 30)
WORK_TO = time(17, 30)

# Roles held by bureau members beyond "staff" and "department_head": people who hold one are
# always kept in a reduced organisation, so that every lane of the campaign has someone.
BUREAU_ROLES = ("party_committee", "leadership_group", "efficiency_office", "discipline_inspection",
                "evaluation_group")

CATEGORY_PROBLEMS = {
    1: ["窗口工作人員對辦事群眾態度生硬", "接聽諮詢電話敷衍推諉", "辦事群眾反映門難進、臉難看"],
    2: ["只顧本股室利益,配合全局工作不力", "對重點項目協調消極應付"],
    3: ["審批事項超過承諾時限未辦結", "首問責任不落實,來回推諉", "辦事程序不公開,群眾多次往返"],
    4: ["對群眾反映的路面損壞長期不處理", "該履行的監管職責未履行"],
    5: ["超標準收取檢測費用", "路政執法中隨意罰款", "向企業攤派費用"],
    6: ["利用職務之便為親屬辦事提供便利", "接受服務對象宴請"],
}
SOURCES = ["hotline", "hotline", "hotline", "office", "letter", "supervisor", "media", "dialogue_meeting"]
SURNAMES = "王李張劉陳楊黃趙周吳徐孫朱馬胡郭林何高羅"
GIVEN = ["先生", "女士", "師傅"]


@dataclass(order=True)
class _Action:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: Any = field(compare=False, default=None)


@dataclass
class _Plan:
    """When a task will be done and by whom."""

    at: datetime
    actor: str
    task: TaskView


class Simulation:
    """Plays the year on an engine whose database holds the deployed campaign.

    A discrete-event loop: the clock jumps to whatever comes next (a timer the deadline worker
    must fire, or something a person or the public does), the worker fires what is due, and the
    people act. Each open task is planned once, when first seen: who does it and when.

    Args:
        engine: the engine of a simulated-clock database with the directory and campaign loaded.
        seed: seed of the one random generator.
        complaints: how many complaints arrive during the year.
        progress: called with one line of text per simulated month.
        end: when to stop playing.
    """

    def __init__(self, engine: Engine, seed: int, complaints: int,
                 progress: Callable[[str], None] | None = None, end: datetime = YEAR_END):
        self.engine = engine
        self.rng = random.Random(seed)
        self.complaints = complaints
        self.progress = progress or (lambda _line: None)
        self.end = end
        # The demo runs the worker between its own commands, in this one thread: no command of
        # another process waits for the lock, so the worker leaves no gap after its transactions.
        self.worker = Worker(engine, name="demo", yield_gap=False)
        self.directory = engine.directory()
        self.tz = display_tz()
        self.plans: dict[int, _Plan] = {}
        self.agenda: list[_Action] = []
        self._seq = 0
        # The simulation's memory of what its people know (who was dealt with for what): it
        # shapes their inputs, e.g. a problem found again is reported as a repeated offence.
        self.offences: set[tuple[str, int]] = set()
        self.verify_failures: dict[tuple[Any, ...], int] = {}
        self.stubborn_case: tuple[Any, ...] | None = None
        self.inspections = 0
        self.bulletins = 0
        self.plan_sent_back = False
        self.complaint_payloads: dict[int, dict[str, Any]] = {}
        self.dirty = True
        self.month_stats = {"done": 0, "late": 0, "complaints": 0, "checks": 0}
        self.month: tuple[int, int] | None = None
        self.now = engine.now()  # the simulated time; only this simulation moves the clock

    # ------------------------------------------------------------------ the year
    def run(self, campaign_actor: str) -> int:
        """Start the campaign and play until the end of the year; return the campaign instance id."""
        campaign = self.engine.start("campaign", actor=campaign_actor, business_key="提高年-2012")
        self._schedule_outside_world()
        self.now = self.engine.now()
        self.month = self._month_of(self.now)
        # The worker keeps its lease over the whole year (renewed by its heartbeat), rather than
        # taking it and giving it back in two more transactions around each of its passes.
        if not self.worker.acquire_lease():
            raise Conflict("a worker is running on this database; stop it before the demo plays the year")
        try:
            return self._play(campaign)
        finally:
            self.worker.release_lease()

    def _play(self, campaign: int) -> int:
        while True:
            self._plan_new_tasks()
            now = self.now
            nxt_timer = self.worker.next_due()
            nxt_action = self.agenda[0].at if self.agenda else None
            upcoming = [t for t in (nxt_timer, nxt_action) if t is not None]
            if not upcoming or min(upcoming) > self.end:
                break
            when = max(min(upcoming), now)
            if when > now:
                self._report_months_until(when)
                self.now = self.engine.set_clock(when)
            if self.worker.run_once():
                self.dirty = True
            self._plan_new_tasks()
            while self.agenda and self.agenda[0].at <= self.now:
                self._perform(heapq.heappop(self.agenda))
                self.dirty = True
        self._report_months_until(self.end)
        if self.now < self.end:
            self.now = self.engine.set_clock(self.end)
        self.worker.run_once()
        self._flush_month()
        return campaign

    def _push(self, at: datetime, kind: str, data: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.agenda, _Action(at.astimezone(timezone.utc), self._seq, kind, data))

    def _schedule_outside_world(self) -> None:
        """Complaints, spot checks and after-the-fact checks: when they happen."""
        rng = self.rng
        first_day, last_day = date(2012, 3, 12), date(2012, 12, 5)
        span = (last_day - first_day).days
        times = []
        for i in range(self.complaints):
            day = first_day + timedelta(days=rng.randrange(span))
            if i == 0:
                # The hotline answers at any hour: the first complaint comes in on a weekend night.
                while day.weekday() < 5:
                    day += timedelta(days=1)
                at = datetime.combine(day, time(rng.randrange(0, 5), rng.randrange(60)), CST)
            else:
                at = datetime.combine(day, time(rng.randrange(24), rng.randrange(60)), CST)
            times.append(at)
        for at in sorted(times):
            self._push(at, "complaint", self._complaint_payload())
        check_span = (PHASE2_CHECKS_TO - PHASE2_CHECKS_FROM).days
        for kind, count in (("spot_check", SPOT_CHECKS), ("after_check", AFTER_CHECKS)):
            for i in range(count):
                slot = check_span * i // count + rng.randrange(max(1, check_span // count))
                at = self._working(PHASE2_CHECKS_FROM + timedelta(days=slot, hours=rng.uniform(1, 7)))
                self._push(at, kind)

    def _complaint_payload(self) -> dict[str, Any]:
        rng = self.rng
        return {"complainant": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "contact": f"13{rng.randrange(10**8, 10**9)}", "via": rng.choice(SOURCES)}

    # ------------------------------------------------------------------ progress
    @staticmethod
    def _month_of(when: datetime) -> tuple[int, int]:
        local = when.astimezone(display_tz())
        return local.year, local.month

    def _report_months_until(self, when: datetime) -> None:
        target = self._month_of(when)
        while self.month is not None and self.month < target:
            self._flush_month()
            y, m = self.month
            self.month = (y + 1, 1) if m == 12 else (y, m + 1)

    def _flush_month(self) -> None:
        if self.month is None:
            return
        s = self.month_stats
        y, m = self.month
        open_tasks = len(self.engine.tasks(scope="all", limit=100000))
        self.progress(f"{y}-{m:02d}  {s['done']:4d} tasks done ({s['late']} late)  "
                      f"{s['complaints']:2d} complaints  {s['checks']:2d} checks started  "
                      f"{open_tasks:4d} open at month end")
        self.month_stats = {"done": 0, "late": 0, "complaints": 0, "checks": 0}

    # ------------------------------------------------------------------ planning
    def _plan_new_tasks(self) -> None:
        """Plan every open task not planned yet (after anything that may have created tasks)."""
        if not self.dirty:
            return
        self.dirty = False
        for t in sorted(self.engine.tasks(scope="all", limit=100000), key=lambda v: v.id):
            if t.id in self.plans:
                continue
            plan = self._plan(t)
            plan.at = _whole_minute(plan.at)
            self.plans[t.id] = plan
            self._push(plan.at, "task", t.id)

    def _plan(self, t: TaskView) -> _Plan:
        """When the person responsible gets the task done, and who that is."""
        rng = self.rng
        actor = self._who(t)
        created = t.created_at
        if t.element_id == "Task_register_complaint":
            # The 24-hour hotline: registered within hours, whatever the hour.
            if rng.random() < 0.05:
                return _Plan(created + timedelta(hours=rng.uniform(25, 30)), actor, t)
            return _Plan(created + timedelta(minutes=rng.uniform(5, 180)), actor, t)
        due = t.due_at or created + timedelta(days=5)
        late_p, lo, hi = PACE.get(t.element_id, (0.08, 0.15, 0.85))
        late = rng.random() < late_p
        if late or due <= created + timedelta(hours=2):
            start = max(due, created)
            hours = rng.uniform(26, 90) if late else rng.uniform(1, 20)
            return _Plan(self._working(start + timedelta(hours=hours)), actor, t)
        at = created + (due - created) * rng.uniform(lo, hi)
        snapped = self._working(at)
        if snapped > due:
            snapped = self._working_before(at, created) or at
        return _Plan(max(snapped, created), actor, t)

    def _who(self, t: TaskView) -> str:
        if t.assignee:
            return t.assignee
        people: list[str] = list(t.candidate_users)
        for g in t.candidate_groups:
            people.extend(self.directory.group_members(g))
        people = sorted(set(people))
        if not people:
            raise InputError(f"task {t.id} ({t.element_id}) has nobody to work on it in this organisation")
        if t.element_id == "Task_register_complaint":
            # The office member on duty that day (a rota over the office's members).
            day = t.created_at.astimezone(self.tz).toordinal()
            return people[day % len(people)]
        return self.rng.choice(people)

    def _working(self, when: datetime) -> datetime:
        """The first office-hours moment at or after `when` (weekdays 08:30-17:30, local time)."""
        local = when.astimezone(self.tz)
        if local.weekday() < 5 and WORK_FROM <= local.time() < WORK_TO:
            return when
        day = local.date()
        if local.weekday() >= 5 or local.time() >= WORK_TO:
            day += timedelta(days=1)
            while day.weekday() >= 5:
                day += timedelta(days=1)
        start = datetime.combine(day, WORK_FROM, self.tz)
        return start + timedelta(minutes=self.rng.randrange(0, 150))

    def _working_before(self, when: datetime, not_before: datetime) -> datetime | None:
        """The last office-hours moment before `when`, if it is after `not_before`."""
        local = when.astimezone(self.tz)
        day = local.date()
        if local.weekday() < 5 and WORK_FROM <= local.time() < WORK_TO:
            return when
        if local.weekday() >= 5 or local.time() < WORK_FROM:
            day -= timedelta(days=1)
            while day.weekday() >= 5:
                day -= timedelta(days=1)
        at = datetime.combine(day, WORK_TO, self.tz) - timedelta(minutes=self.rng.randrange(10, 120))
        return at if at > not_before else None

    # ------------------------------------------------------------------ doing
    def _perform(self, action: _Action) -> None:
        if action.kind == "task":
            self._work_on(action.data)
        elif action.kind == "complaint":
            started = self.engine.message("complaint_received", action.data)
            for iid in started.get("started", []):
                self.complaint_payloads[iid] = action.data
            self.month_stats["complaints"] += 1
        elif action.kind == "spot_check":
            starters = sorted(set(self.directory.role_members("efficiency_office")
                                  + self.directory.role_members("leadership_group")))
            self.engine.start("spot_check", actor=self.rng.choice(starters))
            self.month_stats["checks"] += 1
        elif action.kind == "after_check":
            self.engine.start("after_check", actor=self.rng.choice(
                self.directory.role_members("discipline_inspection")))
            self.month_stats["checks"] += 1

    def _work_on(self, task_id: int) -> None:
        plan = self.plans[task_id]
        t = plan.task  # as it was when first seen: its assignment and due date do not change
        make = FORMS_BY_KEY.get(t.form_key or "", _no_form)
        data = make(self, t)
        try:
            if t.assignee is None:
                self.engine.claim(t.id, plan.actor)
            self.engine.complete(t.id, plan.actor, data)
        except Conflict:
            return  # closed meanwhile (completed or cancelled): nothing left to do
        self.month_stats["done"] += 1
        if t.due_at is not None and self.now > t.due_at:
            self.month_stats["late"] += 1

    # ------------------------------------------------------------------ helpers for form data
    def today(self) -> str:
        return self.now.astimezone(self.tz).date().isoformat()

    def staff_of(self, dept: str) -> list[str]:
        return self.directory.staff(dept)

    def finding(self, dept_hint: str | None = None) -> dict[str, Any]:
        """A problem found by an inspection, a check or a complaint, classified in the six categories."""
        rng = self.rng
        depts = self.directory.department_ids()
        known = sorted(o for o in self.offences if dept_hint is None or o[0] == dept_hint)
        if known and rng.random() < 0.1:
            dept, category = rng.choice(known)  # the same problem again where it was found before
        else:
            dept = dept_hint or rng.choice(depts)
            category = rng.randint(1, 6)
        named = dept_hint is not None or rng.random() < 0.7
        person = ""
        if named and rng.random() < 0.6:
            members = [u for u in self.staff_of(dept) if u != self.directory.head_of(dept)]
            person = rng.choice(members) if members else ""
        return {
            "category": category,
            "severity": "serious" if rng.random() < 0.1 else "minor",
            "repeated": named and (dept, category) in self.offences,
            "department": dept if named else "",
            "person": person,
            "description": rng.choice(CATEGORY_PROBLEMS[category]),
        }


def _whole_minute(when: datetime) -> datetime:
    """`when` rounded up to a whole minute (people act at 09:41, not at 09:40:13.2)."""
    if when.second or when.microsecond:
        when = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return when


# How people pace each kind of task: (probability of being late, earliest and latest point of
# the time allowed at which they finish when on time).
PACE: dict[str, tuple[float, float, float]] = {
    "Task_meeting_phase1_start": (0.0, 0.2, 0.6),
    "Task_meeting_phase1_end": (0.05, 0.3, 0.9),
    "Task_meeting_phase2_start": (0.05, 0.3, 0.9),
    "Task_meeting_phase2_end": (0.05, 0.3, 0.9),
    "Task_meeting_phase3_start": (0.05, 0.3, 0.9),
    "Task_meeting_phase3_end": (0.05, 0.3, 0.9),
    "Task_draft_plan": (0.1, 0.3, 0.6),
    "Task_approve_plan": (0.05, 0.2, 0.6),
    "Task_department_mobilisation": (0.1, 0.2, 0.9),
    "Task_research_article": (0.08, 0.2, 0.95),
    "Task_self_check": (0.12, 0.2, 0.9),
    "Task_bulletin": (0.05, 0.6, 0.95),
    "Task_study_sessions": (0.05, 0.75, 0.98),
    "Task_quarterly_inspection": (0.05, 0.1, 0.5),
    "Task_phase2_summary": (0.1, 0.2, 0.8),
    "Task_investigate": (0.12, 0.2, 0.8),
    "Task_discipline": (0.1, 0.3, 0.8),
    "Task_rectify": (0.12, 0.3, 0.9),
    "Task_verify": (0.08, 0.2, 0.8),
    "Task_self_rectify": (0.1, 0.3, 0.9),
    "Task_self_verify": (0.08, 0.2, 0.8),
    "Task_notify_complainant": (0.08, 0.2, 0.8),
    "Task_spot_check": (0.05, 0.1, 0.6),
    "Task_after_check": (0.05, 0.2, 0.8),
    "Task_evaluate_department": (0.05, 0.2, 0.8),
    "Task_summary_meeting": (0.0, 0.3, 0.8),
    "Task_county_inspection": (0.0, 0.3, 0.8),
}


# ---------------------------------------------------------------------------------------------
# Form data, one maker per form key


def _no_form(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {}


def _leadership_meeting(sim: Simulation, t: TaskView) -> dict[str, Any]:
    members = sim.directory.role_members("leadership_group")
    present = [m for m in members if sim.rng.random() < 0.9] or members[:1]
    return {"held_on": sim.today(), "attendees": present,
            "minutes": f"{t.name}:聽取各股室站所進展匯報,研究部署下步工作",
            "decisions": "按計劃推進,對滯後事項限期完成", "next_steps": "抓好督查落實"}


def _leadership_adjustment(sim: Simulation, t: TaskView) -> dict[str, Any]:
    d = sim.directory
    members = d.role_members("leadership_group")
    office = [u for u in d.role_members("efficiency_office") if d.has_role(u, "department_head")]
    return {"group_leader": members[0], "members": members,
            "office_director": (office or d.role_members("efficiency_office"))[0],
            "duties": "組長全面負責;副組長分管督查;辦公室負責日常工作"}


def _plan_draft(sim: Simulation, t: TaskView) -> dict[str, Any]:
    data = {"title": "關於開展機關效能建設「提高年」活動的實施意見",
            "goals": "提高機關效能,優化發展環境", "steps": "動員部署、組織實施、評估考核三個階段",
            "responsibilities": "各股室站所負責人為第一責任人"}
    if sim.plan_sent_back:
        data["revision_notes"] = "按領導小組意見補充了考核辦法和時間節點"
    return data


def _plan_approval(sim: Simulation, t: TaskView) -> dict[str, Any]:
    if not sim.plan_sent_back and sim.rng.random() < 0.6:
        sim.plan_sent_back = True
        return {"approved": False, "comments": "時間節點和責任分工不夠具體,請修改"}
    return {"approved": True, "comments": "同意印發"}


def _mobilisation_meeting(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"held_on": sim.today(), "attendance": len(sim.directory.users),
            "minutes": "動員大會:講清活動的重要意義,部署全年工作"}


def _department_mobilisation(sim: Simulation, t: TaskView) -> dict[str, Any]:
    dept = sim.directory.department_of(t.assignee) or ""
    return {"sessions_held": sim.rng.randint(1, 3), "participants": len(sim.staff_of(dept)),
            "publicity": "宣傳欄、信息網各一期", "summary": "召開股室動員會,人人表態"}


def _rules_revision(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"decision_rules": "重大事項集體決策制度", "complaint_suspension_rule": "一次性投訴查實停職制",
            "assessment_method": "局機關效能建設目標管理考評辦法", "other_rules": "首問負責制、限時辦結制"}


def _study_sessions(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    return {"sessions_held": rng.randint(8, 16), "tests_held": rng.randint(2, 4),
            "average_score": round(rng.uniform(80, 95), 1), "summary": "學理論、學政策、學法規、學業務"}


def _research_article(sim: Simulation, t: TaskView) -> dict[str, Any]:
    topics = ["優化發展環境", "提高行政效能", "首問負責制的落實", "路政執法規範化", "窗口服務質量"]
    return {"title": f"關於{sim.rng.choice(topics)}的幾點思考", "abstract": "結合本職工作,分析問題,提出建議"}


def _bulletin(sim: Simulation, t: TaskView) -> dict[str, Any]:
    sim.bulletins += 1
    issue = sim.bulletins
    return {"issue": issue, "title": f"「提高年」活動簡報第{issue}期", "content": "各股室站所活動動態",
            "media_coverage": "縣電視台報道一次" if sim.rng.random() < 0.3 else "",
            "more_bulletins": sim.now < LAST_BULLETIN_AFTER}


def _self_check(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    if rng.random() < 0.2:
        category = rng.randint(1, 6)
        return {"found_problem": True, "category": category,
                "description": rng.choice(CATEGORY_PROBLEMS[category]),
                "reflection": "宗旨意識不強,服務意識淡薄"}
    return {"found_problem": False, "reflection": "對照六個方面逐項檢查,未發現突出問題"}


def _quarterly_inspection(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    sim.inspections += 1
    # The last inspection (late November) finds the bureau in order: its findings could not be
    # rectified before the phase ends.
    n = {1: rng.randint(2, 3), 2: rng.randint(1, 3)}.get(sim.inspections, 0)
    findings = [sim.finding() for _ in range(n)]
    if sim.inspections == 2 and sim.offences:
        # Found again where the department was already dealt with: a repeated offence.
        dept, category = sorted(sim.offences)[0]
        findings.insert(0, {"category": category, "severity": "minor", "repeated": True, "department": dept,
                            "person": "",
                            "description": rng.choice(CATEGORY_PROBLEMS[category]) + "(再次發現)"})
    return {"summary": f"第{sim.inspections}次季度檢查講評:總體推進有力,發現問題{len(findings)}個",
            "findings": findings}


def _phase_summary(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"summary": "組織實施階段各項工作按計劃完成", "achievements": "首問負責、限時辦結落到實處",
            "problems": "個別股室整改不夠及時"}


def _complaint_register(sim: Simulation, t: TaskView) -> dict[str, Any]:
    payload = sim.complaint_payloads.get(t.instance_id, {})
    found = sim.finding()
    return {**found, "complainant": payload.get("complainant", ""), "contact": payload.get("contact", ""),
            "source": payload.get("via", "hotline"), "sensitive_matter": "none"}


def _complaint_feedback(sim: Simulation, t: TaskView) -> dict[str, Any]:
    data = sim.engine.task_data(t.id)
    rng = sim.rng
    if data.get("confirmed") is False:
        feedback = "經調查核實,反映問題不屬實,已向投訴人說明"
    else:
        feedback = f"反映問題屬實,已責成整改並處理({data.get('disposition', '')})"
    via = "not_reachable" if rng.random() < 0.05 else rng.choice(["phone", "phone", "sms", "visit"])
    satisfaction = rng.choice(["satisfied", "satisfied", "basically_satisfied", "unsatisfied", "unknown"])
    return {"feedback": feedback, "notified_via": via, "satisfaction": satisfaction}


def _spot_check_record(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    dept = rng.choice(sim.directory.department_ids())
    data: dict[str, Any] = {"checked_department": dept, "checked_items": "上班紀律、窗口服務、辦件時限",
                            "problem_found": rng.random() < 0.5}
    if data["problem_found"]:
        data.update(sim.finding(dept_hint=dept))
    return data


def _after_check_record(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    matter = rng.choice(["personnel", "money", "goods", "construction"])
    dept = rng.choice(sim.directory.department_ids())
    data: dict[str, Any] = {"sensitive_matter": matter, "checked_department": dept,
                            "matter": {"personnel": "年度招聘", "money": "專項資金使用",
                                       "goods": "辦公用品採購", "construction": "農村公路工程招標"}[matter],
                            "problem_found": rng.random() < 0.4}
    if data["problem_found"]:
        found = sim.finding(dept_hint=dept)
        found["category"] = rng.choice([5, 6])
        found["description"] = rng.choice(CATEGORY_PROBLEMS[found["category"]])
        found["repeated"] = (dept, found["category"]) in sim.offences
        data.update(found)
    return data


def _investigation(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    data = sim.engine.task_data(t.id)
    dept = data.get("department") or ""
    repeated = bool(data.get("repeated"))
    confirmed = repeated or data.get("severity") == "serious" or rng.random() < 0.85
    person = data.get("person") or ""
    if confirmed and not person and rng.random() < 0.5:
        members = [u for u in sim.staff_of(dept) if u != sim.directory.head_of(dept)]
        person = rng.choice(members) if members else ""
    if confirmed:
        sim.offences.add((dept, int(data.get("category", 1))))
    return {"confirmed": confirmed,
            "facts": "經調查,反映情況屬實" if confirmed else "經調查,反映情況查無實據",
            "person": person, "severity": data.get("severity", "minor"), "repeated": repeated}


def _discipline_decision(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"measure": sim.rng.choice(["誡勉談話", "通報批評", "黨內警告", "行政警告", "停職檢查"]),
            "leader_measure": "責成所在股室負責人作出書面檢查",
            "basis": "一次性投訴查實停職制;局機關效能建設目標管理考評辦法"}


def _rectification_report(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"measures": "召開專題會議,制定整改措施,明確責任人和時限", "result": "問題已按要求整改",
            "completed_on": sim.today()}


def _verification(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    data = sim.engine.task_data(t.id)
    case = (t.instance_id, t.element_id, data.get("registered_at"), data.get("description"),
            data.get("person"), data.get("department"), data.get("member"))
    failures = sim.verify_failures.get(case, 0)
    if t.element_id == "Task_verify" and sim.stubborn_case is None:
        sim.stubborn_case = case  # the first case of the year needs three rounds
    if case == sim.stubborn_case:
        fail = failures < 2
    else:
        fail = rng.random() < (0.15 if failures == 0 else 0.05 if failures == 1 else 0.0)
    if fail:
        sim.verify_failures[case] = failures + 1
        return {"verified": False, "evidence": "現場查看,整改措施未落實到位", "remarks": "限期重新整改"}
    return {"verified": True, "evidence": "查閱資料並回訪服務對象,整改到位"}


def _evaluation_group_formation(sim: Simulation, t: TaskView) -> dict[str, Any]:
    d = sim.directory
    members = d.role_members("evaluation_group")
    leaders = [u for u in members if d.has_role(u, "leadership_group")] or members
    return {"leader": leaders[0], "members": members, "plan": "查閱資料、個別談話、問卷測評相結合"}


def _department_evaluation(sim: Simulation, t: TaskView) -> dict[str, Any]:
    rng = sim.rng
    dept = sim.engine.task_data(t.id).get("department")
    found = sum(1 for d, _c in sim.offences if d == dept)
    score = max(60, min(99, round(rng.gauss(90, 3)) - 3 * found))
    return {"score": score, "strengths": "活動開展扎實,制度建設完善",
            "problems": "整改還需鞏固" if found else "無明顯問題"}


def _summary_meeting(sim: Simulation, t: TaskView) -> dict[str, Any]:
    data = sim.engine.task_data(t.id)
    best = data.get("best_department")
    staff = sorted(sim.directory.users)
    return {"held_on": sim.today(), "summary": "全年活動圓滿完成,機關效能明顯提高",
            "commended_departments": [best] if best else [],
            "commended_staff": sorted(sim.rng.sample(staff, min(3, len(staff)))),
            "experience": "首問負責、限時辦結、有訴必理"}


def _county_inspection(sim: Simulation, t: TaskView) -> dict[str, Any]:
    return {"inspected_on": sim.today(), "result": sim.rng.choice(["excellent", "good", "good"]),
            "remarks": "活動組織有力,成效明顯"}


FORMS_BY_KEY: dict[str, Callable[[Simulation, TaskView], dict[str, Any]]] = {
    "leadership_meeting": _leadership_meeting,
    "leadership_adjustment": _leadership_adjustment,
    "plan_draft": _plan_draft,
    "plan_approval": _plan_approval,
    "mobilisation_meeting": _mobilisation_meeting,
    "department_mobilisation": _department_mobilisation,
    "rules_revision": _rules_revision,
    "study_sessions": _study_sessions,
    "research_article": _research_article,
    "bulletin": _bulletin,
    "self_check": _self_check,
    "quarterly_inspection": _quarterly_inspection,
    "phase_summary": _phase_summary,
    "complaint_register": _complaint_register,
    "complaint_feedback": _complaint_feedback,
    "spot_check_record": _spot_check_record,
    "after_check_record": _after_check_record,
    "investigation": _investigation,
    "discipline_decision": _discipline_decision,
    "rectification_report": _rectification_report,
    "verification": _verification,
    "evaluation_group_formation": _evaluation_group_formation,
    "department_evaluation": _department_evaluation,
    "summary_meeting": _summary_meeting,
    "county_inspection": _county_inspection,
}


# ---------------------------------------------------------------------------------------------
# Setting up


def reduced_org(staff_limit: int, source: Path = ORG) -> str:
    """The sample organisation with fewer people, as TOML text.

    Every department keeps its head and at most `staff_limit` further members without a bureau
    role (in user id order); everyone holding a bureau role (party committee, leadership group,
    efficiency office, discipline inspection, evaluation group) is kept, so every lane of the
    campaign still has people.
    """
    if staff_limit < 0:
        raise InputError("--staff must be 0 or more (further staff per department besides its head)")
    raw = tomllib.loads(source.read_text(encoding="utf-8"))
    heads = {d.get("head") for d in raw["departments"].values()}
    kept: dict[str, dict[str, Any]] = {}
    ordinary: dict[str, int] = {}
    for uid in sorted(raw["users"]):
        u = raw["users"][uid]
        if uid in heads or not u.get("department") or set(u.get("roles", [])) & set(BUREAU_ROLES):
            kept[uid] = u
            continue
        dept = u.get("department", "")
        if ordinary.get(dept, 0) < staff_limit:
            ordinary[dept] = ordinary.get(dept, 0) + 1
            kept[uid] = u
    lines = [f"# {source.name} reduced to the heads, the bureau roles and up to {staff_limit} staff "
             "per department", ""]

    def q(text: Any) -> str:
        return json.dumps(str(text), ensure_ascii=False)

    for rid, r in raw["roles"].items():
        lines += [f"[roles.{rid}]", f"name = {q(r['name'])}", ""]
    for did, d in raw["departments"].items():
        lines += [f"[departments.{did}]", f"name = {q(d['name'])}"]
        for key in ("head", "parent"):
            if d.get(key):
                lines.append(f"{key} = {q(d[key])}")
        lines.append("")
    for uid, u in kept.items():
        lines += [f"[users.{uid}]", f"name = {q(u['name'])}"]
        if u.get("department"):
            lines.append(f"department = {q(u['department'])}")
        lines += ["roles = [" + ", ".join(q(r) for r in u.get("roles", [])) + "]", ""]
    return "\n".join(lines)


def prepare_database(engine: Engine, start: datetime = YEAR_START) -> None:
    """Make `engine`'s database a new simulated-clock database at `start`.

    A database without Tigao's tables (a new SQLite file, an empty PostgreSQL database) is
    created on the simulated clock. An initialised one is accepted only when it is empty (nothing
    loaded, deployed or run), and is then put on the simulated clock. Anything else is refused
    with an InputError: the demo never mixes with real data.
    """
    from storage import db as dbmod

    try:
        engine.now()  # a Tigao database already?
    except StorageError as exc:
        path = dbmod.sqlite_path(engine.url)
        if path and Path(path).is_file() and Path(path).stat().st_size > 0:
            raise InputError(f"'{path}' exists and is not an empty Tigao database ({exc.message}); "
                             "give --db a new file name") from exc
        engine.close()
        engine.init(simulated=start)  # a new file, or a server database without tables
        return
    with engine._tx() as s:
        counts = {
            "definitions": s.scalar(select(func.count()).select_from(Definition)) or 0,
            "instances": s.scalar(select(func.count()).select_from(Instance)) or 0,
            "events": s.scalar(select(func.count()).select_from(Event)) or 0,
            "users": s.scalar(select(func.count()).select_from(User)) or 0,
            "departments": s.scalar(select(func.count()).select_from(Department)) or 0,
        }
        used = {k: v for k, v in counts.items() if v}
        if used:
            what = ", ".join(f"{v} {k}" for k, v in used.items())
            raise InputError(f"database {engine.safe_url} already has data ({what}); the demo needs a new, "
                             "empty database: give --db a new file name or an empty PostgreSQL database")
        s.merge(Setting(key="clock", value="simulated"))
        s.merge(Setting(key="sim_now", value=start.astimezone(timezone.utc).isoformat()))
    engine.init()  # bring an empty database's schema up to date


def run_demo(url: str, seed: int = 1, complaints: int = 24, staff_limit: int | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Play the Improvement Year into the database at `url` and return its report.

    Args:
        url: a new SQLite file path, or the URL of an empty (possibly initialised) database.
        seed: the seed of the one random generator; the same seed gives the same report.
        complaints: how many complaints arrive during the year.
        staff_limit: keep only each department's head, the bureau role holders and this many
            further staff per department (a smaller year, e.g. for tests); None keeps everyone.
        progress: called with one line of text per simulated month.

    Returns:
        The campaign report (`campaign.report.campaign_report`) of the finished year.

    Raises:
        InputError: the database already holds data, or an argument is unusable.
    """
    from campaign.report import campaign_report

    if complaints < 0:
        raise InputError("--complaints must be 0 or more")
    engine = Engine(url)
    try:
        prepare_database(engine)
        if staff_limit is None:
            engine.load_directory(ORG)
        else:
            with tempfile.TemporaryDirectory(prefix="tigao-demo-") as tmp:
                org = Path(tmp) / "org.toml"
                org.write_text(reduced_org(staff_limit), encoding="utf-8")
                engine.load_directory(org)
        engine.deploy([PROCESSES, FORMS], actor=None)
        sim = Simulation(engine, seed, complaints, progress)
        leader = sorted(engine.directory().role_members("leadership_group"))[0]
        sim.run(campaign_actor=leader)
        return campaign_report(engine)
    finally:
        engine.close()
