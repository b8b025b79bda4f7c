"""`tigao demo` and `tigao report`: a small Improvement Year on SQLite and on PostgreSQL.

The demo plays the year into the database the `db_url` fixture gives (on SQLite through the
command line, on PostgreSQL through `run_demo`). Its report must equal figures counted here
independently, straight from the `events` table (the history), with a different method where the
report reads another table: tasks from `task_created`/`task_completed` events instead of
`human_tasks`, the department of a case from the assignee recorded when its task was created and
from the event that caused the task (the completion just before it in the instance's history)
instead of the case's process variables, scores from the campaign's completion event instead of
the evaluation tasks. The same seed must give the same report, whatever the database.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import func, select, update

from campaign_support import record_flows
from cli import main
from engine import Engine, InputError
from campaign.demo import PROCESSES, run_demo
from campaign.report import campaign_report, format_report
from engine.timeutil import display_tz, parse_datetime
from storage.models import Department, Event, HumanTask, User

SMALL = {"seed": 7, "complaints": 3, "staff_limit": 0}
NO_ENV = {"TIGAO_USER": None, "TIGAO_DB": None}
REPORTS: dict[str, dict[str, Any]] = {}
MONTHS = [f"2012-{m:02d}" for m in range(3, 13)]


def cli(*args: str) -> Any:
    return CliRunner(env=NO_ENV).invoke(main, list(args))


# ---------------------------------------------------------------------------------------------
# Counting from the history


def _user_tasks(*files: str) -> set[str]:
    ids: set[str] = set()
    for name in files:
        tree = etree.parse(str(PROCESSES / name))
        ids |= {el.get("id") for el in tree.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}userTask")}
    return ids


def count_from_history(engine: Engine, lo: datetime | None = None,
                       hi: datetime | None = None) -> dict[str, Any]:
    """The report's figures, counted from the events table (and the directory) alone."""
    with engine._tx() as s:
        events = list(s.scalars(select(Event).order_by(Event.instance_id, Event.seq)))
        dept_of = dict(s.execute(select(User.id, User.department)).all())
        head_dept = {d.head: d.id for d in s.scalars(select(Department))}
        departments = sorted(d.id for d in s.scalars(select(Department)))

    def inside(when: datetime) -> bool:
        return (lo is None or when >= lo) and (hi is None or when <= hi)

    key = {e.instance_id: e.payload["definition"]["key"] for e in events if e.type == "instance_started"}
    created = {e.task_id: e for e in events if e.type == "task_created"}
    completed = {e.task_id: e for e in events if e.type == "task_completed"}
    cause: dict[int, Event] = {}  # task id -> the completion that created it (same transaction)
    last_completion: dict[int, Event] = {}
    for e in events:
        if e.type == "task_completed":
            last_completion[e.instance_id] = e
        elif e.type == "task_created" and e.instance_id in last_completion:
            cause[e.task_id] = last_completion[e.instance_id]

    def assignee_dept(task_id: int) -> str | None:
        return head_dept.get(created[task_id].payload["assignee"])

    rows: dict[str, Counter] = {d: Counter() for d in departments}
    for e in completed.values():
        if not inside(e.at):
            continue
        data = e.payload["data"]
        dept = dept_of.get(e.actor)
        rows[dept]["tasks_done"] += 1
        due = created[e.task_id].payload["due_at"]
        if due is not None:
            rows[dept]["with_due"] += 1
            rows[dept]["on_time"] += e.at <= datetime.fromisoformat(due)
        if e.element_id == "Task_investigate" and data["confirmed"] is True:
            rows[assignee_dept(e.task_id)]["confirmed"] += 1
        elif e.element_id == "Task_self_check" and data["found_problem"] is True:
            rows[dept]["self_found"] += 1
        elif e.element_id == "Task_verify" and data["verified"] is True:
            rectify = cause[e.task_id]
            assert rectify.element_id == "Task_rectify"
            rows[assignee_dept(rectify.task_id)]["rectified"] += 1
        elif e.element_id == "Task_self_verify" and data["verified"] is True:
            rows[assignee_dept(e.task_id)]["rectified"] += 1
    discipline_by: Counter = Counter()
    for e in created.values():
        if not inside(e.at):
            continue
        if e.element_id == "Task_investigate":
            rows[assignee_dept(e.task_id)]["findings"] += 1
        elif e.element_id == "Task_discipline":
            investigation = cause[e.task_id]
            assert investigation.element_id == "Task_investigate"
            dept = assignee_dept(investigation.task_id)
            rows[dept]["discipline"] += 1
            discipline_by[dept] += 1
    escalated = [e for e in events if e.type == "task_escalated" and inside(e.at)]
    for e in escalated:
        for dept in {dept_of[u] for u in e.payload["responsible"]}:
            rows[dept]["escalations"] += 1

    def count(type_: str, element: str, keys: set[str] | None = None) -> list[Event]:
        return [e for e in events if e.type == type_ and e.element_id == element and inside(e.at)
                and (keys is None or key[e.instance_id] in keys)]

    def started(process: str) -> list[Event]:
        return [e for e in events if e.type == "instance_started" and key[e.instance_id] == process
                and inside(e.at)]

    tz = display_tz()
    received = started("complaint")
    complaint_investigations = count("task_completed", "Task_investigate", {"complaint"})
    campaign_end = [e for e in events if e.type == "instance_completed" and key[e.instance_id] == "campaign"]
    scores = {}
    if campaign_end and (hi is None or campaign_end[-1].at <= hi):
        scores = campaign_end[-1].payload["data"]["scores"]
    done_all = [e for e in completed.values() if inside(e.at)]
    with_due = [e for e in done_all if created[e.task_id].payload["due_at"] is not None]
    on_time = sum(e.at <= datetime.fromisoformat(created[e.task_id].payload["due_at"]) for e in with_due)
    return {
        "departments": {d: dict(c) for d, c in rows.items()},
        "complaints": {
            "received": len(received),
            "out_of_hours": sum(1 for e in received if e.at.astimezone(tz).weekday() >= 5
                                or not time(8, 30) <= e.at.astimezone(tz).time() < time(17, 30)),
            "registered": len(count("task_completed", "Task_register_complaint")),
            "routed": len(count("task_created", "Task_investigate", {"complaint"})),
            "confirmed": sum(1 for e in complaint_investigations if e.payload["data"]["confirmed"] is True),
            "unfounded": sum(1 for e in complaint_investigations if e.payload["data"]["confirmed"] is False),
            "with_result": len(count("task_completed", "Task_notify_complainant")),
            "open": len({e.instance_id for e in events if e.type == "instance_started"
                         and key[e.instance_id] == "complaint" and (hi is None or e.at <= hi)}
                        - {e.instance_id for e in events if e.type == "instance_completed"
                           and (hi is None or e.at <= hi)}),
        },
        "escalations": {
            "overdue": sum(1 for e in events if e.type == "task_overdue" and inside(e.at)),
            "escalated": len(escalated),
            "level1": sum(1 for e in escalated if e.payload["level"] == 1),
            "level2": sum(1 for e in escalated if e.payload["level"] == 2),
        },
        "discipline": {"cases": sum(discipline_by.values()),
                       "by_department": dict(sorted(discipline_by.items())),
                       "decided": len(count("task_completed", "Task_discipline"))},
        "checks": {
            "quarterly_inspections": len(count("task_completed", "Task_quarterly_inspection")),
            "inspection_findings": sum(len(e.payload["data"]["findings"])
                                       for e in count("task_completed", "Task_quarterly_inspection")),
            "spot_checks": len(started("spot_check")),
            "spot_check_problems": sum(1 for e in count("task_completed", "Task_spot_check")
                                       if e.payload["data"]["problem_found"] is True),
            "after_checks": len(started("after_check")),
            "after_check_problems": sum(1 for e in count("task_completed", "Task_after_check")
                                        if e.payload["data"]["problem_found"] is True),
        },
        "scores": scores,
        "totals": {"tasks_done": len(done_all), "with_due": len(with_due), "on_time": on_time},
        "campaign_tasks": [e for e in created.values() if key[e.instance_id] == "campaign"],
    }


def assert_report_matches_history(report: dict[str, Any], counted: dict[str, Any]) -> None:
    fields = ("tasks_done", "with_due", "on_time", "findings", "confirmed", "self_found", "rectified",
              "discipline", "escalations")
    for row in report["departments"]:
        mine = counted["departments"][row["id"]]
        assert {f: row[f] for f in fields} == {f: mine.get(f, 0) for f in fields}, row["id"]
        if row["score"] is not None or counted["scores"]:
            assert row["score"] == counted["scores"].get(row["id"]), row["id"]
    assert {k: report["complaints"][k] for k in counted["complaints"]} == counted["complaints"]
    assert {k: report["escalations"][k] for k in counted["escalations"]} == counted["escalations"]
    assert report["discipline"] == counted["discipline"]
    assert {k: report["checks"][k] for k in counted["checks"]} == counted["checks"]
    assert report["evaluation"]["scores"] == counted["scores"]
    assert {k: report["totals"][k] for k in counted["totals"]} == counted["totals"]


# ---------------------------------------------------------------------------------------------
# The demo


def test_demo__plays_a_small_year_and_its_report_equals_the_history(db_url: str) -> None:
    kind = "postgresql" if "://" in db_url else "sqlite"
    engine = Engine(db_url)
    if kind == "sqlite":
        result = cli("--db", db_url, "demo", "--seed", str(SMALL["seed"]),
                     "--complaints", str(SMALL["complaints"]), "--staff", str(SMALL["staff_limit"]))
        assert result.exit_code == 0, result.output
        progress = [ln for ln in result.stdout.splitlines() if ln[:4] == "2012"]
        report = campaign_report(engine)
        assert format_report(report) in result.stdout
        assert f"tigao --db {db_url} history {report['campaign']['instance']}" in result.stdout
    else:
        progress = []
        report = run_demo(db_url, progress=progress.append, **SMALL)
    REPORTS[kind] = report
    record_flows(engine)

    # A line of progress per simulated month.
    assert [ln[:7] for ln in progress] == MONTHS
    # The whole year was played: the campaign and every phase completed, nothing left open.
    assert report["campaign"]["status"] == "completed"
    assert [p["key"] for p in report["phases"]] == ["campaign", "phase1_mobilize", "phase2_implement",
                                                    "phase3_evaluate"]
    assert all(p["status"] == "completed" and p["open"] == 0 and p["done"] == p["tasks"] > 0
               for p in report["phases"])
    assert report["window"]["as_of"] == "2012-12-31T15:59:00+00:00"
    # What the year must contain: complaints handled with a result, late work escalated, failed
    # verifications, discipline cases, scores for every department.
    assert report["complaints"]["received"] == report["complaints"]["with_result"] == SMALL["complaints"]
    assert report["complaints"]["out_of_hours"] >= 1
    assert report["escalations"]["escalated"] > 0 and report["escalations"]["overdue"] > 0
    assert 0 < report["totals"]["on_time"] < report["totals"]["with_due"]
    assert report["discipline"]["cases"] >= 1
    assert report["checks"]["quarterly_inspections"] == 3
    assert report["checks"]["spot_checks"] == 6 and report["checks"]["after_checks"] == 3
    assert set(report["evaluation"]["scores"]) == {d["id"] for d in report["departments"]}
    # A case whose verification failed twice before it passed (the loop of the rectification).
    assert max(passed_after_failures(engine), default=0) >= 2

    # The figures equal counts taken independently from the history.
    counted = count_from_history(engine)
    assert_report_matches_history(report, counted)
    # A completed task's row keeps the data it completed with; rows completed before it did
    # (schema 0014 and older) are answered from the stored state or a replay: the same report.
    with engine._tx() as s:
        kept = s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.completed_data.is_not(None)))
        assert kept == s.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "completed"))
        s.execute(update(HumanTask).values(completed_data=None))
    assert campaign_report(engine) == report
    tasks_by_phase = Counter()
    phase_of = {**{t: "campaign" for t in _user_tasks("campaign.bpmn")},
                **{t: "phase1_mobilize" for t in _user_tasks("phase1_mobilize.bpmn")},
                **{t: "phase2_implement" for t in _user_tasks("phase2_implement.bpmn", "rectification.bpmn",
                                                              "self_rectification.bpmn")},
                **{t: "phase3_evaluate" for t in _user_tasks("phase3_evaluate.bpmn")}}
    for e in counted["campaign_tasks"]:
        tasks_by_phase[phase_of[e.element_id]] += 1
    assert {p["key"]: p["tasks"] for p in report["phases"]} == dict(tasks_by_phase)
    # ... in a window too (the third quarter).
    lo, hi = parse_datetime("2012-07-01"), parse_datetime("2012-09-30", end_of_day=True)
    windowed = campaign_report(engine, "2012-07-01", "2012-09-30")
    assert windowed["window"]["from"] == lo.isoformat() and windowed["window"]["to"] == hi.isoformat()
    assert_report_matches_history(windowed, count_from_history(engine, lo, hi))
    assert windowed["totals"]["tasks_done"] < report["totals"]["tasks_done"]
    # Its phase figures are for the window, or marked as read at the window's end; the heading
    # names the window, not the time the report was made.
    with engine._tx() as s:
        done_in_q3 = s.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.instance_id == windowed["campaign"]["instance"], HumanTask.completed_at >= lo,
            HumanTask.completed_at <= hi))
    assert sum(p["done_in_window"] for p in windowed["phases"]) == done_in_q3 > 0
    assert windowed["window"]["states_at"] == hi.isoformat()
    text = format_report(windowed)
    assert "window: 2012-07-01 00:00 to 2012-09-30 23:59 (Asia/Shanghai)" in text
    assert "2012-12-31" not in text.splitlines()[1]
    assert "DONE IN WINDOW" in text and "STATUS AT END" in text and "campaign at the end of the window" in text

    # The database stays for exploring; the demo refuses to play into it again.
    with pytest.raises(InputError, match="already has data"):
        run_demo(db_url, **SMALL)
    engine.close()


def passed_after_failures(engine: Engine) -> list[int]:
    """For every verification that passed, how many failed verifications of the same case came
    before it: following the history back, each verification task was created by completing a
    rectification task, which was created by a failed verification (or by the decision)."""
    with engine._tx() as s:
        events = list(s.scalars(select(Event).order_by(Event.instance_id, Event.seq)))
    cause: dict[int, Event] = {}
    completed: dict[int, Event] = {}
    last: dict[int, Event] = {}
    for e in events:
        if e.type == "task_completed":
            last[e.instance_id] = e
            completed[e.task_id] = e
        elif e.type == "task_created" and e.instance_id in last:
            cause[e.task_id] = last[e.instance_id]

    def failures_before(verify_task: int) -> int:
        rectify = cause[verify_task]
        before = cause.get(rectify.task_id)
        if before is None or before.element_id != "Task_verify":
            return 0
        return 1 + failures_before(before.task_id)

    return [failures_before(e.task_id) for e in completed.values()
            if e.element_id == "Task_verify" and e.payload["data"]["verified"] is True]


def test_demo__same_seed_same_report(tmp_path: Path) -> None:
    reports = list(REPORTS.values())
    while len(reports) < 2:
        reports.append(run_demo(str(tmp_path / f"again-{len(reports)}.db"), **SMALL))
    for other in reports[1:]:
        assert json.dumps(other, sort_keys=True) == json.dumps(reports[0], sort_keys=True)


def test_demo__refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("demo-5.db").write_bytes(b"precious")
    result = cli("demo", "--seed", "5")
    assert result.exit_code == 3
    assert "'demo-5.db' already exists" in result.stderr
    assert Path("demo-5.db").read_bytes() == b"precious"
    Path("notes.db").write_text("not a database", encoding="utf-8")
    result = cli("--db", "notes.db", "demo")
    assert result.exit_code == 3 and "not an empty Tigao database" in result.stderr
    assert Path("notes.db").read_text(encoding="utf-8") == "not a database"


def test_report__command_prints_the_report_and_json(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    assert cli("--db", db, "init").exit_code == 0
    out = cli("--db", db, "report")
    assert out.exit_code == 0 and "campaign: not started" in out.stdout
    out = cli("--db", db, "report", "--json", "--from", "2012-03-01", "--to", "2012-12-31")
    data = json.loads(out.stdout)
    assert data["phases"] == [] and data["complaints"]["received"] == 0
    assert data["window"]["from"] == datetime(2012, 2, 29, 16, tzinfo=timezone.utc).isoformat()
    bad = cli("--db", db, "report", "--from", "2012-12-31", "--to", "2012-03-01")
    assert bad.exit_code == 3 and "before it starts" in bad.stderr
    bad = cli("--db", db, "report", "--from", "last spring")
    assert bad.exit_code == 3


def test_report__tables_align_wide_characters() -> None:
    from campaign.report import _table, _width

    lines = _table([["辦公室", "1"], ["finance", "22"]], ["NAME", "N"], right={1})
    assert _width("辦公室") == 6
    assert len({_width(ln) for ln in lines}) == 1
