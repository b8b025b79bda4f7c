"""Shared helpers of the campaign tests: setting up a campaign database, driving instances with
form data, and collecting the sequence flows the runs took.

Flow coverage: `record_flows(engine)` loads the stored SpiffWorkflow state of every instance of a
database and adds, for every task the token reached (ready, waiting, started or completed) whose
parent task is a BPMN element, the sequence flow from the parent's element to the task's element
in the diagram (or embedded sub-process) that ran it; a parallel join's task of a branch that
arrived before the others (which SpiffWorkflow cancels when the last one arrives) counts too.
`TAKEN` gathers them for the whole test session; tests/test_flow_coverage.py compares it with
every sequence flow of processes/*.bpmn.

The campaign scenarios are registered functions (`SCENARIOS`): tests/test_campaign.py runs them
and asserts on them; the coverage test runs, on SQLite, any scenario the session has not run (so
it is meaningful on its own too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import select

from engine import Engine, TaskView, Worker
from engine_modes import new_engine
from engine.prune import taken_flows
from campaign.demo import FORMS, ORG, PROCESSES, prepare_database, reduced_org
from storage.models import Definition, Instance

CST = timezone(timedelta(hours=8))
BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"

# ---------------------------------------------------------------------------------------------
# Setting up


def campaign_engine(url: str, when: datetime, staff: int | None = None, tmp: Path | None = None) -> Engine:
    """An engine on `url` (an initialised, empty database) on a simulated clock at `when`, with
    the sample bureau (or a smaller one: heads, bureau roles and `staff` further members per
    department) loaded and the campaign deployed."""
    engine = new_engine(url)
    prepare_database(engine, when)
    if staff is None:
        engine.load_directory(ORG)
    else:
        assert tmp is not None, "a reduced organisation needs a folder for its file"
        org = tmp / f"org-{staff}.toml"
        org.write_text(reduced_org(staff), encoding="utf-8")
        engine.load_directory(org)
    engine.deploy([PROCESSES, FORMS])
    return engine


def at(text: str) -> datetime:
    """A local (+08:00) time from 'YYYY-MM-DD HH:MM'."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CST)


# ---------------------------------------------------------------------------------------------
# Form data

FINDING = {"category": 3, "severity": "minor", "repeated": False, "department": "finance", "person": "u23",
           "description": "審批事項超過承諾時限未辦結"}


def default_data(t: TaskView, engine: Engine) -> dict[str, Any]:
    """Valid form data for a task, choosing the plain path at every gateway (no problem found,
    approved, verified, no more bulletins)."""
    d = engine.directory()
    key = t.form_key
    today = engine.now().astimezone(CST).date().isoformat()
    if key == "leadership_meeting":
        return {"held_on": today, "minutes": "例會紀要"}
    if key == "leadership_adjustment":
        return {"group_leader": "u01", "members": d.role_members("leadership_group"), "duties": "分工"}
    if key == "plan_draft":
        return {"title": "實施意見", "goals": "目標", "steps": "步驟", "responsibilities": "責任"}
    if key == "plan_approval":
        return {"approved": True}
    if key == "mobilisation_meeting":
        return {"held_on": today, "minutes": "動員大會"}
    if key == "department_mobilisation":
        return {"sessions_held": 1, "summary": "已動員"}
    if key == "rules_revision":
        return {"decision_rules": "制度", "complaint_suspension_rule": "停職制",
                "assessment_method": "考評辦法"}
    if key == "study_sessions":
        return {"sessions_held": 10, "tests_held": 2, "summary": "學習"}
    if key == "research_article":
        return {"title": "研討文章", "abstract": "摘要"}
    if key == "bulletin":
        return {"issue": 1, "title": "簡報", "content": "內容", "more_bulletins": False}
    if key == "self_check":
        return {"found_problem": False}
    if key == "quarterly_inspection":
        return {"summary": "講評", "findings": []}
    if key == "phase_summary":
        return {"summary": "小結"}
    if key == "complaint_register":
        return {"source": "hotline", **FINDING}
    if key == "complaint_feedback":
        return {"feedback": "已反饋", "notified_via": "phone"}
    if key == "spot_check_record":
        return {"checked_department": "finance", "problem_found": False}
    if key == "after_check_record":
        return {"sensitive_matter": "money", "matter": "專項資金", "checked_department": "finance",
                "problem_found": False}
    if key == "investigation":
        return {"confirmed": True, "facts": "屬實"}
    if key == "discipline_decision":
        return {"measure": "誡勉談話", "leader_measure": "書面檢查"}
    if key == "rectification_report":
        return {"measures": "整改措施", "result": "已整改"}
    if key == "verification":
        return {"verified": True, "evidence": "回訪"}
    if key == "evaluation_group_formation":
        return {"leader": "u02", "members": d.role_members("evaluation_group")}
    if key == "department_evaluation":
        return {"score": 90}
    if key == "summary_meeting":
        return {"summary": "總結", "commended_departments": []}
    if key == "county_inspection":
        return {"result": "good"}
    return {}


def worker_of(t: TaskView, engine: Engine) -> str:
    """Who does the task: its assignee, else its first candidate (users, then group members)."""
    if t.assignee:
        return t.assignee
    d = engine.directory()
    people = list(t.candidate_users)
    for g in t.candidate_groups:
        people.extend(d.group_members(g))
    assert people, f"task {t.id} ({t.element_id}) has nobody to do it"
    return sorted(people)[0]


Override = dict[str, Any] | Callable[[TaskView, Engine], dict[str, Any]]


def drive(engine: Engine, instance_ids: Iterable[int] | None = None,
          overrides: dict[str, list[Override]] | None = None, until: datetime | None = None,
          max_steps: int = 5000) -> list[TaskView]:
    """Complete open tasks in id order (with `overrides[element]` consumed one per task of that
    element, else `default_data`), moving the clock to the next timer whenever nothing is open,
    until no task is open and no timer is pending (or the clock would pass `until`).

    Returns the tasks completed, in order.
    """
    overrides = {k: list(v) for k, v in (overrides or {}).items()}
    scope = set(instance_ids) if instance_ids is not None else None
    worker = Worker(engine, name="test")
    done: list[TaskView] = []
    for _ in range(max_steps):
        open_ = [t for t in engine.tasks(scope="all", limit=100000)
                 if scope is None or t.instance_id in scope]
        if open_:
            t = min(open_, key=lambda v: v.id)
            queue = overrides.get(t.element_id)
            if queue:
                item = queue.pop(0)
                data = item(t, engine) if callable(item) else {**default_data(t, engine), **item}
            else:
                data = default_data(t, engine)
            engine.complete(t.id, worker_of(t, engine), data)
            done.append(t)
            continue
        nxt = worker.next_due()
        if nxt is None or (until is not None and nxt > until):
            break
        if nxt > engine.now():
            engine.set_clock(nxt)
        worker.run_once()
    else:
        raise AssertionError(f"still busy after {max_steps} steps")
    return done


# ---------------------------------------------------------------------------------------------
# Flow coverage


def _diagrams() -> dict[str, etree._ElementTree]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return {p.name: etree.parse(str(p), parser) for p in sorted(PROCESSES.glob("*.bpmn"))}


def flow_index() -> dict[tuple[str, str, str], tuple[str, str]]:
    """(container, source element, target element) -> (file, flow id), where the container is
    the process or embedded sub-process holding the flow."""
    index: dict[tuple[str, str, str], tuple[str, str]] = {}
    for name, tree in _diagrams().items():
        for flow in tree.iter(f"{BPMN_NS}sequenceFlow"):
            container = flow.getparent().get("id")
            key = (container, flow.get("sourceRef"), flow.get("targetRef"))
            assert key not in index, f"two flows {key} in {name}"
            index[key] = (name, flow.get("id"))
    return index


def all_flows() -> set[tuple[str, str]]:
    """Every sequence flow of every campaign diagram, as (file, flow id)."""
    return set(flow_index().values())


TAKEN: set[tuple[str, str]] = set()
RAN: set[str] = set()


def flows_taken(engine: Engine) -> set[tuple[str, str]]:
    """The sequence flows taken by the instances stored in the engine's database."""
    index = flow_index()
    taken: set[tuple[str, str]] = set()
    with engine._tx() as s:
        for inst in s.scalars(select(Instance).order_by(Instance.id)):
            d = s.get(Definition, inst.definition_id)
            assert d is not None
            built = engine._built(d)
            wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
            # The live tree, and what pruning cut from it (engine/prune.py).
            for flow_key in taken_flows(wf):
                flow = index.get(flow_key)
                if flow is not None:
                    taken.add(flow)
    return taken


def record_flows(engine: Engine) -> set[tuple[str, str]]:
    """Add the flows taken in the engine's database to the session's `TAKEN`; return them."""
    taken = flows_taken(engine)
    TAKEN.update(taken)
    return taken


# ---------------------------------------------------------------------------------------------
# Scenarios: name -> function(url of an initialised empty database, a temporary folder) -> result

Scenario = Callable[[str, Path], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def run_scenario(name: str, url: str, tmp: Path) -> dict[str, Any]:
    """Run a registered scenario, record the flows it took, and return its result."""
    result = SCENARIOS[name](url, tmp)
    engine: Engine = result["engine"]
    result["flows"] = record_flows(engine)
    RAN.add(name)
    return result


def _events(engine: Engine, instance_id: int, type_: str | None = None) -> list[Any]:
    return [e for e in engine.history(instance_id) if type_ is None or e.type == type_]


def _open(engine: Engine, instance_id: int, element: str) -> TaskView:
    tasks = [t for t in engine.tasks(scope="all", instance_id=instance_id) if t.element_id == element]
    assert tasks, f"no open {element} in instance {instance_id}"
    return tasks[0]


@scenario
def whole_campaign(url: str, tmp: Path) -> dict[str, Any]:
    """The campaign from 1 March to its end in a small bureau: the plan is sent back once, one
    self-check finds a problem whose rectification fails verification once, bulletins loop once,
    the first quarterly inspection finds a problem (the other two none), every department is scored."""
    engine = campaign_engine(url, at("2012-03-01 08:00"), staff=0, tmp=tmp)
    iid = engine.start("campaign", actor="u01")
    scores = {"finance": 81, "office": 93, "personnel": 88}

    def score_of(t: TaskView, e: Engine) -> dict[str, Any]:
        return {"score": scores.get(e.task_data(t.id)["department"], 85)}

    done = drive(engine, [iid], overrides={
        "Task_approve_plan": [{"approved": False, "comments": "時間節點不具體"}],
        "Task_self_check": [{"found_problem": True, "category": 1, "description": "接聽電話態度生硬"}],
        "Task_self_verify": [{"verified": False, "evidence": "抽查", "remarks": "仍有問題"}],
        "Task_bulletin": [{"issue": 1, "more_bulletins": True}, {"issue": 2, "more_bulletins": False}],
        "Task_quarterly_inspection": [{"summary": "第一次", "findings": [FINDING]}],
        "Task_evaluate_department": [score_of] * 9,
    })
    return {"engine": engine, "instance": iid, "done": done, "scores": scores}


@scenario
def verification_fails_twice(url: str, tmp: Path) -> dict[str, Any]:
    """A finding routed to finance: rectified, verification fails twice, passes the third time."""
    engine = campaign_engine(url, at("2012-06-04 09:00"))
    iid = engine.start("rectification", {**FINDING, "channel": "spot_check"}, actor="u05")
    bad = {"verified": False, "evidence": "現場查看", "remarks": "整改不到位"}
    done = drive(engine, [iid], overrides={"Task_verify": [bad, bad]})
    return {"engine": engine, "instance": iid, "done": done}


@scenario
def repeated_offence_goes_to_discipline(url: str, tmp: Path) -> dict[str, Any]:
    """A spot check finds slow administration in finance (criticism); a complaint later reports
    the same problem again: a repeated offence, which goes to discipline inspection."""
    engine = campaign_engine(url, at("2012-06-04 09:00"))
    spot = engine.start("spot_check", actor="u06")
    first = drive(engine, [spot], overrides={"Task_spot_check": [{"problem_found": True, **FINDING}]})
    engine.set_clock(at("2012-07-02 10:00"))
    started = engine.message("complaint_received", {"complainant": "王先生", "contact": "13800000000"})
    complaint = started["started"][0]
    second = drive(engine, [complaint], overrides={
        "Task_register_complaint": [{"source": "hotline", **FINDING, "repeated": True,
                                     "description": "審批事項再次超時,屢教不改"}],
        "Task_investigate": [{"confirmed": True, "facts": "再次超時屬實", "repeated": True}],
    })
    return {"engine": engine, "spot": spot, "complaint": complaint, "first": first, "second": second}


@scenario
def checks_without_and_with_problems(url: str, tmp: Path) -> dict[str, Any]:
    """A spot check and an after-the-fact check that find nothing; an after-the-fact check that
    finds a serious problem (discipline); a finding that the investigation does not confirm."""
    engine = campaign_engine(url, at("2012-08-06 09:00"))
    spot = engine.start("spot_check", actor="u05")
    quiet = engine.start("after_check", actor="u04")
    serious = engine.start("after_check", actor="u04")
    unfounded = engine.start("rectification", {**FINDING, "channel": "public_supervision"}, actor="u06")
    problem = {"sensitive_matter": "construction", "matter": "農村公路工程招標",
               "checked_department": "road_admin",
               "problem_found": True, "category": 6, "severity": "serious", "repeated": False,
               "department": "road_admin", "person": "u41", "description": "接受投標企業宴請"}
    drive(engine, [spot, quiet, serious, unfounded], overrides={
        "Task_after_check": [{}, problem],
        "Task_investigate": [{"confirmed": False, "facts": "查無實據"}],
    })
    return {"engine": engine, "spot": spot, "quiet": quiet, "serious": serious, "unfounded": unfounded}


@scenario
def complaint_on_sunday_night(url: str, tmp: Path) -> dict[str, Any]:
    """A complaint phoned in at 03:00 on Sunday 6 May 2012: registered by the office member on
    duty at once, routed by the routing table, handled, and the complainant told the result."""
    engine = campaign_engine(url, at("2012-05-06 02:00"))
    engine.set_clock(at("2012-05-06 03:00"))
    started = engine.message("complaint_received", {"complainant": "李女士", "contact": "13900000000"})
    iid = started["started"][0]
    register = _open(engine, iid, "Task_register_complaint")
    engine.claim(register.id, "u06")
    engine.set_clock(at("2012-05-06 03:20"))
    engine.complete(register.id, "u06", {
        "source": "hotline", "category": 1, "severity": "minor", "repeated": False, "department": "",
        "person": "", "description": "窗口工作人員對辦事群眾態度生硬", "sensitive_matter": "none"})
    investigate = _open(engine, iid, "Task_investigate")
    engine.set_clock(at("2012-05-07 09:00"))
    rest = drive(engine, [iid])
    return {"engine": engine, "instance": iid, "register": register, "investigate": investigate, "rest": rest}


@scenario
def phases_and_self_rectification_alone(url: str, tmp: Path) -> dict[str, Any]:
    """Phase 1, phase 3 and a self-rectification, each started on its own."""
    engine = campaign_engine(url, at("2012-03-01 08:00"))
    phase1 = engine.start("phase1_mobilize", actor="u01")
    drive(engine, [phase1], overrides={"Task_approve_plan": [{"approved": False, "comments": "退回"}]})
    phase3 = engine.start("phase3_evaluate", actor="u01")
    drive(engine, [phase3])
    own = engine.start("self_rectification", {"person": "u23", "department": "finance", "category": 3,
                                              "description": "辦件拖拉"}, actor="u23")
    drive(engine, [own], overrides={"Task_self_verify": [{"verified": False, "evidence": "抽查",
                                                          "remarks": "未到位"}]})
    return {"engine": engine, "phase1": phase1, "phase3": phase3, "own": own}
