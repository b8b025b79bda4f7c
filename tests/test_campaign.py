"""The Improvement Year campaign (processes/, forms/) run through the engine, on SQLite and PostgreSQL.

Each scenario (tests/campaign_support.py) deploys the campaign into a fresh database on a
simulated clock, drives instances as the people responsible would, and records the sequence
flows it took for tests/test_flow_coverage.py. The tests here check what the plan requires:
the rectification loop, discipline for repeated offences, the 24-hour complaint hotline,
responsibility by department, and every campaign process from start to end.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from campaign_support import FINDING, at, campaign_engine, run_scenario
from engine import NotAllowed
from helpers import assert_roundtrip

# Every test runs with a caching Engine and with Engines that keep nothing (tests/engine_modes.py).
pytestmark = pytest.mark.usefixtures("engine_mode")


def completions(engine, instance_id: int, element: str) -> list:
    return [e for e in engine.history(instance_id) if e.type == "task_completed" and e.element_id == element]


def created(engine, instance_id: int, element: str) -> list:
    tasks = engine.tasks(scope="all", instance_id=instance_id, state="any")
    return [t for t in sorted(tasks, key=lambda t: t.id) if t.element_id == element]


def test_verification_fails_twice_then_passes(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("verification_fails_twice", db_url, tmp_path)
    engine, iid = r["engine"], r["instance"]
    assert engine.instance(iid)["status"] == "completed"
    verdicts = [e.payload["data"]["verified"] for e in completions(engine, iid, "Task_verify")]
    assert verdicts == [False, False, True]
    office = set(engine.directory().role_members("efficiency_office"))
    assert {e.actor for e in completions(engine, iid, "Task_verify")} <= office
    rectify = created(engine, iid, "Task_rectify")
    assert len(rectify) == 3
    # Routed to finance (named in the finding), rectified by its head within the criticism limit.
    assert {t.assignee for t in rectify} == {"u22"}
    assert all(t.due_at == t.created_at + timedelta(days=5) for t in rectify)
    data = engine.instance(iid)["data"]
    assert (data["department"], data["level"], data["disposition"], data["verified"]) == \
        ("finance", "department", "criticism", True)
    assert not created(engine, iid, "Task_discipline")
    assert ("rectification.bpmn", "Flow_not_verified") in r["flows"]
    # The collector sees only the path taken, not the branches left.
    left = {("rectification.bpmn", "Flow_unfounded"), ("rectification.bpmn", "Flow_discipline")}
    assert not left & r["flows"]
    assert_roundtrip(engine, iid)


def test_repeated_offence_goes_to_discipline(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("repeated_offence_goes_to_discipline", db_url, tmp_path)
    engine, spot, complaint = r["engine"], r["spot"], r["complaint"]
    # First time: criticism, no discipline.
    assert engine.instance(spot)["data"]["disposition"] == "criticism"
    assert not created(engine, spot, "Task_discipline")
    # Found again: a repeated offence goes to discipline inspection, and the leader answers too.
    data = engine.instance(complaint)["data"]
    assert data["repeated"] is True
    assert (data["disposition"], data["leader_accountable"], data["rectify_within"]) == \
        ("discipline", True, "P10D")
    [discipline] = created(engine, complaint, "Task_discipline")
    assert discipline.candidate_groups == ["discipline_inspection"]
    [decision] = completions(engine, complaint, "Task_discipline")
    assert engine.directory().has_role(decision.actor, "discipline_inspection")
    assert decision.payload["data"]["leader_measure"]
    [rectify] = created(engine, complaint, "Task_rectify")
    assert rectify.assignee == "u22" and rectify.due_at == rectify.created_at + timedelta(days=10)
    assert engine.instance(complaint)["status"] == "completed"
    assert completions(engine, complaint, "Task_notify_complainant")
    assert ("rectification.bpmn", "Flow_discipline") in r["flows"]
    assert ("rectification.bpmn", "Flow_criticism_education") in r["flows"]
    assert_roundtrip(engine, complaint)


def test_complaint_arriving_at_3am_on_sunday_is_registered_and_routed(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("complaint_on_sunday_night", db_url, tmp_path)
    engine, iid, register, investigate = r["engine"], r["instance"], r["register"], r["investigate"]
    sunday_3am = at("2012-05-06 03:00")
    assert sunday_3am.weekday() == 6
    detail = engine.instance(iid)
    assert detail["key"] == "complaint" and detail["started_at"] == sunday_3am
    started = engine.history(iid)[0]
    assert started.type == "instance_started" and started.payload["via"] == "message"
    # Registered: the 24-hour hotline's task is there at 03:00, for the efficiency office, due in a day.
    assert register.created_at == sunday_3am
    assert register.candidate_groups == ["efficiency_office"]
    assert register.due_at == sunday_3am + timedelta(days=1)
    assert register.priority == 80
    claims = [e for e in engine.history(iid) if e.type == "task_claimed"]
    assert [(e.actor, e.at) for e in claims] == [("u06", sunday_3am)]  # first-inquiry responsibility
    # Routed: no department was named; a service-attitude problem goes to the transport office's head.
    assert investigate.created_at == at("2012-05-06 03:20")
    assert investigate.assignee == "u53"
    assert investigate.due_at == investigate.created_at + timedelta(days=5)
    data = detail["data"]
    assert (data["department"], data["level"], data["channel"]) == ("transport_admin", "department",
                                                                     "public_supervision")
    assert data["complainant"] == "李女士"
    # ... and the complainant hears the result.
    assert detail["status"] == "completed"
    assert completions(engine, iid, "Task_notify_complainant")
    assert_roundtrip(engine, iid)


def test_department_head_cannot_complete_another_departments_rectification(db_url: str,
                                                                            tmp_path: Path) -> None:
    engine = campaign_engine(db_url, at("2012-06-04 09:00"))
    iid = engine.start("rectification", {**FINDING, "channel": "spot_check"}, actor="u05")
    [investigate] = engine.tasks(scope="all", instance_id=iid)
    engine.complete(investigate.id, "u22", {"confirmed": True, "facts": "屬實"})
    [rectify] = engine.tasks(scope="all", instance_id=iid)
    assert rectify.element_id == "Task_rectify" and rectify.assignee == "u22"  # finance's head
    report = {"measures": "整改", "result": "已整改"}
    with pytest.raises(NotAllowed, match="assigned to u22"):
        engine.complete(rectify.id, "u28", report)  # the safety section's head
    assert rectify.id not in {t.id for t in engine.tasks("u28")}
    assert engine.task(rectify.id).state == "open"
    assert not completions(engine, iid, "Task_rectify")
    engine.complete(rectify.id, "u22", report)
    assert engine.task(rectify.id).completed_by == "u22"


def test_whole_campaign_runs_from_start_to_end(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("whole_campaign", db_url, tmp_path)
    engine, iid = r["engine"], r["instance"]
    detail = engine.instance(iid)
    assert detail["status"] == "completed"
    tasks = engine.tasks(scope="all", instance_id=iid, state="any")
    order = [t.element_id for t in sorted(tasks, key=lambda t: t.id)]
    # The leadership group meets before and after every phase, and the phases run in order.
    meetings = [e for e in order if e.startswith("Task_meeting_")]
    assert meetings == ["Task_meeting_phase1_start", "Task_meeting_phase1_end", "Task_meeting_phase2_start",
                        "Task_meeting_phase2_end", "Task_meeting_phase3_start", "Task_meeting_phase3_end"]
    assert order.index("Task_meeting_phase1_end") > order.index("Task_revise_rules")
    assert order.index("Task_meeting_phase2_end") > order.index("Task_phase2_summary")
    assert order.index("Task_form_evaluation_group") > order.index("Task_meeting_phase3_start")
    # Phase 1: the plan is sent back once; every department mobilises under its head.
    approvals = completions(engine, iid, "Task_approve_plan")
    assert [e.payload["data"]["approved"] for e in approvals] == [False, True]
    assert order.count("Task_draft_plan") == 2
    d = engine.directory()
    mobilisation = [t for t in tasks if t.element_id == "Task_department_mobilisation"]
    assert sorted(t.assignee for t in mobilisation) == sorted(d.head_of(x) for x in d.department_ids())
    # Phase 2: one article and one self-check per person; one problem found, rectified in two rounds.
    people = d.staff()  # everyone in a department: the outside auditor writes no article
    assert sorted(t.assignee for t in tasks if t.element_id == "Task_research_article") == people
    assert sorted(t.assignee for t in tasks if t.element_id == "Task_self_check") == people
    assert order.count("Task_self_rectify") == 2 and order.count("Task_self_verify") == 2
    assert order.count("Task_bulletin") == 2
    inspections = sorted(t.created_at for t in tasks if t.element_id == "Task_quarterly_inspection")
    assert inspections == [at("2012-06-29 09:00"), at("2012-09-28 09:00"), at("2012-11-21 09:00")]
    [investigate] = [t for t in tasks if t.element_id == "Task_investigate"]
    assert investigate.assignee == "u22" and investigate.created_at.date() == inspections[0].date()
    # Phase 3: every department is scored; the scores and the best department reach the campaign.
    assert len([t for t in tasks if t.element_id == "Task_evaluate_department"]) == len(d.department_ids())
    expected = {dept: r["scores"].get(dept, 85) for dept in d.department_ids()}
    assert detail["data"]["scores"] == expected
    assert detail["data"]["best_department"] == "office"
    assert ("phase2_implement.bpmn", "Flow_next_inspection") in r["flows"]
    assert_roundtrip(engine, iid)


def test_checks_with_and_without_problems(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("checks_without_and_with_problems", db_url, tmp_path)
    engine = r["engine"]
    for key in ("spot", "quiet", "serious", "unfounded"):
        assert engine.instance(r[key])["status"] == "completed", key
    assert [t.element_id for t in created(engine, r["spot"], "Task_spot_check")] == ["Task_spot_check"]
    assert len(engine.tasks(scope="all", instance_id=r["spot"], state="any")) == 1
    assert len(engine.tasks(scope="all", instance_id=r["quiet"], state="any")) == 1
    # A serious problem found afterwards in a construction tender goes to discipline inspection,
    # verified by the leadership group itself (a bureau-level case).
    serious = engine.instance(r["serious"])["data"]
    assert (serious["channel"], serious["level"], serious["disposition"]) == \
        ("after_check", "bureau", "discipline")
    assert created(engine, r["serious"], "Task_discipline")
    [verify] = created(engine, r["serious"], "Task_verify")
    assert verify.candidate_groups == ["leadership_group"]
    # An unfounded finding closes after the investigation.
    assert [t.element_id for t in engine.tasks(scope="all", instance_id=r["unfounded"], state="any")] == \
        ["Task_investigate"]
    assert engine.instance(r["unfounded"])["data"]["confirmed"] is False


def test_phases_and_self_rectification_run_alone(db_url: str, tmp_path: Path) -> None:
    r = run_scenario("phases_and_self_rectification_alone", db_url, tmp_path)
    engine = r["engine"]
    for key in ("phase1", "phase3", "own"):
        assert engine.instance(r[key])["status"] == "completed", key
    assert len(created(engine, r["phase1"], "Task_draft_plan")) == 2
    scores = engine.instance(r["phase3"])["data"]["scores"]
    assert set(scores) == set(engine.directory().department_ids())
    own = sorted(engine.tasks(scope="all", instance_id=r["own"], state="any"), key=lambda t: t.id)
    assert [(t.element_id, t.assignee) for t in own] == [
        ("Task_self_rectify", "u23"), ("Task_self_verify", "u22"),
        ("Task_self_rectify", "u23"), ("Task_self_verify", "u22")]
