"""One test per BPMN construct: each diagram in tests/bpmn/ runs through the engine to its end.

Every step is followed by helpers.assert_roundtrip (helpers.complete does it after each completion;
the tests do it after start and after message delivery). Each test asserts the path taken (which
tasks appear), the final data, the status, and the history events with their actors.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import Conflict, Engine, InputError, NotFound
from helpers import assert_roundtrip, complete, data, open_tasks, status, task_by_element

# Every test runs with a caching Engine and with Engines that keep nothing (tests/engine_modes.py).
pytestmark = pytest.mark.usefixtures("engine_mode")

BPMN = Path(__file__).parent / "bpmn"

# The history events that describe the path an instance took (others, e.g. claims, are left out).
PATH_EVENTS = {"instance_started", "task_created", "task_completed", "task_cancelled", "message_received",
               "instance_completed", "instance_cancelled"}


def start(engine: Engine, key: str, data_: dict[str, Any] | None = None, actor: str = "alice") -> int:
    iid = engine.start(key, data_, actor=actor)
    assert_roundtrip(engine, iid)
    return iid


def open_elements(engine: Engine, iid: int) -> list[str]:
    return sorted(t.element_id for t in open_tasks(engine, iid))


def path(engine: Engine, iid: int) -> list[tuple[str, str | None, str | None]]:
    """(type, actor, element) of the instance's path events, in history order."""
    events = engine.history(iid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "history sequence has gaps"
    return [(e.type, e.actor, e.element_id) for e in events if e.type in PATH_EVENTS]


def created_elements(engine: Engine, iid: int) -> list[str]:
    return [e.element_id for e in engine.history(iid) if e.type == "task_created"]


def assert_completed(engine: Engine, iid: int) -> None:
    assert status(engine, iid) == "completed"
    assert open_tasks(engine, iid) == []
    inst = engine.instance(iid)
    assert inst["ended_at"] is not None
    assert inst["waiting"] == []


# ---------------------------------------------------------------------------------------------- user task


def test_user_task__completed_by_staff__instance_completes_with_form_data(engine: Engine) -> None:
    iid = start(engine, "user_task")

    t = task_by_element(engine, iid, "Task_fill")
    assert open_elements(engine, iid) == ["Task_fill"]
    assert (t.name, t.role, t.form_key, t.assignee) == ("Fill in the form", "staff", "simple", None)
    assert t.candidate_groups == ["staff"]

    complete(engine, iid, "Task_fill", {"name": "Ann", "amount": 5}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"name": "Ann", "amount": 5}
    done = engine.task(t.id)
    assert (done.state, done.completed_by, done.assignee) == ("completed", "bob", "bob")
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_fill"),
        ("task_completed", "bob", "Task_fill"),
        ("instance_completed", "bob", None),
    ]
    completed = [e for e in engine.history(iid) if e.type == "task_completed"][0]
    assert completed.payload["data"] == {"name": "Ann", "amount": 5}
    assert completed.task_id == t.id


# ---------------------------------------------------------------------------------------------- script task


def test_script_task__computes_total_from_start_data(engine: Engine) -> None:
    iid = start(engine, "script_task", {"a": 1, "b": 2})

    t = task_by_element(engine, iid, "Task_check")
    assert open_elements(engine, iid) == ["Task_check"]
    assert engine.task_data(t.id) == {"a": 1, "b": 2, "total": 3}

    complete(engine, iid, "Task_check", {"ok": True}, user="alice")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"a": 1, "b": 2, "total": 3, "ok": True}
    events = engine.history(iid)
    assert events[0].type == "instance_started" and events[0].payload["data"] == {"a": 1, "b": 2}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_check"),
        ("task_completed", "alice", "Task_check"),
        ("instance_completed", "alice", None),
    ]


# ---------------------------------------------------------------------------------------------- exclusive gateway


@pytest.mark.parametrize(("amount", "taken", "not_taken", "role", "worker"), [
    (150, "Task_big", "Task_small", "manager", "carol"),
    (50, "Task_small", "Task_big", "staff", "bob"),
])
def test_exclusive_gateway__amount_chooses_one_branch(engine: Engine, amount: int, taken: str, not_taken: str,
                                                      role: str, worker: str) -> None:
    iid = start(engine, "exclusive_gateway")
    assert open_elements(engine, iid) == ["Task_amount"]

    complete(engine, iid, "Task_amount", {"amount": amount}, user="alice")

    assert open_elements(engine, iid) == [taken]
    t = task_by_element(engine, iid, taken)
    assert t.role == role
    assert t.candidate_groups == [role]
    assert t.assignee is None
    visible_to_worker = [x.id for x in engine.tasks(worker)]
    assert t.id in visible_to_worker
    if role == "manager":
        assert t.id not in [x.id for x in engine.tasks("alice")], "alice is not a manager"

    complete(engine, iid, taken, {"ok": True}, user=worker)

    assert_completed(engine, iid)
    assert data(engine, iid) == {"amount": amount, "ok": True}
    assert not_taken not in created_elements(engine, iid)
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_amount"),
        ("task_completed", "alice", "Task_amount"),
        ("task_created", None, taken),
        ("task_completed", worker, taken),
        ("instance_completed", worker, None),
    ]


# ---------------------------------------------------------------------------------------------- parallel gateway


def test_parallel_gateway__both_branches_join_before_script(engine: Engine) -> None:
    iid = start(engine, "parallel_gateway")
    assert open_elements(engine, iid) == ["Task_a", "Task_b"]

    complete(engine, iid, "Task_a", {"a_value": "x"}, user="alice")
    assert open_elements(engine, iid) == ["Task_b"], "the join waits for the other branch"

    complete(engine, iid, "Task_b", {"b_value": "y"}, user="bob")
    assert open_elements(engine, iid) == ["Task_done"]
    assert engine.task_data(task_by_element(engine, iid, "Task_done").id)["joined"] == "x+y"

    complete(engine, iid, "Task_done", {"ok": True}, user="carol")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"a_value": "x", "b_value": "y", "joined": "x+y", "ok": True}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_a"),
        ("task_created", None, "Task_b"),
        ("task_completed", "alice", "Task_a"),
        ("task_completed", "bob", "Task_b"),
        ("task_created", None, "Task_done"),
        ("task_completed", "carol", "Task_done"),
        ("instance_completed", "carol", None),
    ]


# ---------------------------------------------------------------------------------------------- parallel loop


@pytest.mark.parametrize("first_pass_order", [("Task_a", "Task_b"), ("Task_b", "Task_a")],
                         ids=["first_a_before_b", "first_b_before_a"])
@pytest.mark.parametrize("second_pass_order", [("Task_b", "Task_a"), ("Task_a", "Task_b")],
                         ids=["second_b_before_a", "second_a_before_b"])
def test_parallel_loop__second_pass_values_survive_the_join_in_any_order(
        engine: Engine, first_pass_order: tuple[str, str], second_pass_order: tuple[str, str]) -> None:
    """A submitted form value is never lost: whichever branch of the second pass is submitted
    first, both of its values are what the instance holds after the join."""
    first_values = {"Task_a": {"a_value": "a1"}, "Task_b": {"b_value": "b1"}}
    values = {"Task_a": ("a_value", "a2"), "Task_b": ("b_value", "b2")}
    iid = start(engine, "parallel_loop")
    assert open_elements(engine, iid) == ["Task_a", "Task_b"]
    first_ids = {t.id for t in open_tasks(engine, iid)}

    complete(engine, iid, first_pass_order[0], first_values[first_pass_order[0]], user="alice")
    complete(engine, iid, first_pass_order[1], first_values[first_pass_order[1]], user="bob")
    after_first = data(engine, iid)
    assert (after_first["a_value"], after_first["b_value"], after_first["round"]) == ("a1", "b1", 1)

    assert open_elements(engine, iid) == ["Task_a", "Task_b"], "the loop runs a second round"
    assert not first_ids & {t.id for t in open_tasks(engine, iid)}, "the second round has new tasks"
    assert status(engine, iid) == "running"

    first, second = second_pass_order
    field, value = values[first]
    complete(engine, iid, first, {field: value}, user="alice")
    assert open_elements(engine, iid) == [second]
    field2, value2 = values[second]
    complete(engine, iid, second, {field2: value2}, user="bob")

    assert_completed(engine, iid)
    final = data(engine, iid)
    assert final["a_value"] == "a2"
    assert final["b_value"] == "b2"
    assert final["round"] == 2
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_a"),
        ("task_created", None, "Task_b"),
        ("task_completed", "alice", first_pass_order[0]),
        ("task_completed", "bob", first_pass_order[1]),
        ("task_created", None, "Task_a"),
        ("task_created", None, "Task_b"),
        ("task_completed", "alice", first),
        ("task_completed", "bob", second),
        ("instance_completed", "bob", None),
    ]


# ---------------------------------------------------------------------------------------------- inclusive gateway


@pytest.mark.parametrize(("want_x", "want_y", "branches"), [
    (True, False, ["Task_x"]),
    (False, True, ["Task_y"]),
    (True, True, ["Task_x", "Task_y"]),
    (False, False, ["Task_none"]),
], ids=["x_only", "y_only", "both", "neither"])
def test_inclusive_gateway__takes_every_true_branch_or_the_default(engine: Engine, want_x: bool, want_y: bool,
                                                                   branches: list[str]) -> None:
    iid = start(engine, "inclusive_gateway")
    complete(engine, iid, "Task_choose", {"want_x": want_x, "want_y": want_y}, user="alice")

    assert open_elements(engine, iid) == branches
    for i, element in enumerate(branches):
        if i < len(branches) - 1:
            complete(engine, iid, element, {"ok": True}, user="bob")
            assert status(engine, iid) == "running", "the inclusive join waits for every taken branch"
        else:
            complete(engine, iid, element, {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"want_x": want_x, "want_y": want_y, "ok": True}
    assert created_elements(engine, iid) == ["Task_choose", *branches]
    expected = [("instance_started", "alice", None),
                ("task_created", None, "Task_choose"),
                ("task_completed", "alice", "Task_choose")]
    expected += [("task_created", None, b) for b in branches]
    expected += [("task_completed", "bob", b) for b in branches]
    expected += [("instance_completed", "bob", None)]
    assert path(engine, iid) == expected


# ---------------------------------------------------------------------------------------------- subprocess


def test_embedded_subprocess__inner_task_and_script_then_outer_task(engine: Engine) -> None:
    iid = start(engine, "subprocess")
    assert open_elements(engine, iid) == ["Task_inner"]

    complete(engine, iid, "Task_inner", {"name": "Ann"}, user="alice")

    assert open_elements(engine, iid) == ["Task_after"]
    assert engine.task_data(task_by_element(engine, iid, "Task_after").id)["greeting"] == "Hello, Ann"

    complete(engine, iid, "Task_after", {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"name": "Ann", "greeting": "Hello, Ann", "ok": True}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_inner"),
        ("task_completed", "alice", "Task_inner"),
        ("task_created", None, "Task_after"),
        ("task_completed", "bob", "Task_after"),
        ("instance_completed", "bob", None),
    ]


# ---------------------------------------------------------------------------------------------- call activity


def test_call_activity__child_task_runs_and_its_data_comes_back(engine: Engine) -> None:
    iid = start(engine, "call_parent", {"origin": "parent"})
    assert open_elements(engine, iid) == ["Task_child"]
    child = task_by_element(engine, iid, "Task_child")
    assert child.name == "Fill in the child form"
    assert engine.task_data(child.id)["origin"] == "parent", "camunda:in variables=all"

    complete(engine, iid, "Task_child", {"name": "from child"}, user="alice")

    assert open_elements(engine, iid) == ["Task_parent_after"]
    after = task_by_element(engine, iid, "Task_parent_after")
    assert engine.task_data(after.id)["name"] == "from child", "camunda:out variables=all"

    complete(engine, iid, "Task_parent_after", {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"origin": "parent", "name": "from child", "ok": True}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_child"),
        ("task_completed", "alice", "Task_child"),
        ("task_created", None, "Task_parent_after"),
        ("task_completed", "bob", "Task_parent_after"),
        ("instance_completed", "bob", None),
    ]


# ---------------------------------------------------------------------------------------------- multi-instance


def test_multi_instance__parallel_reviews_then_sequential_signatures(engine: Engine) -> None:
    reviewers = ["alice", "bob", "carol"]
    iid = start(engine, "multi_instance", actor="dora")

    reviews = [t for t in open_tasks(engine, iid) if t.element_id == "Task_review"]
    assert len(reviews) == 3
    assert open_elements(engine, iid) == ["Task_review"] * 3
    assert sorted(t.assignee for t in reviews) == reviewers
    for who in reviewers:
        mine = engine.tasks(who, scope="mine", instance_id=iid)
        assert [(t.element_id, t.assignee) for t in mine] == [("Task_review", who)]

    # Completed out of list order: each reviewer completes their own instance.
    for who in ["carol", "alice", "bob"]:
        t = engine.tasks(who, scope="mine", instance_id=iid)[0]
        engine.complete(t.id, who, {"approve": who != "bob"})
        assert_roundtrip(engine, iid)
        if who != "bob":
            assert "Task_sign" not in open_elements(engine, iid), "signing waits for every review"

    signers = []
    for _ in reviewers:
        open_now = open_tasks(engine, iid)
        assert [t.element_id for t in open_now] == ["Task_sign"], "sequential: one signature at a time"
        signer = open_now[0].assignee
        assert signer is not None
        signers.append(signer)
        complete(engine, iid, "Task_sign", {"ok": True}, user=signer)
    assert signers == reviewers, "sequential instances follow the collection's order"

    assert_completed(engine, iid)
    final = data(engine, iid)
    assert final["reviewers"] == reviewers
    assert path(engine, iid) == [
        ("instance_started", "dora", None),
        *[("task_created", None, "Task_review")] * 3,
        ("task_completed", "carol", "Task_review"),
        ("task_completed", "alice", "Task_review"),
        ("task_completed", "bob", "Task_review"),
        ("task_created", None, "Task_sign"),
        ("task_completed", "alice", "Task_sign"),
        ("task_created", None, "Task_sign"),
        ("task_completed", "bob", "Task_sign"),
        ("task_created", None, "Task_sign"),
        ("task_completed", "carol", "Task_sign"),
        ("instance_completed", "carol", None),
    ]
    created = [e for e in engine.history(iid) if e.type == "task_created"]
    assert [e.payload["assignee"] for e in created] == ["alice", "bob", "carol"] * 2


def test_multi_instance__submitted_values_become_process_variables(engine: Engine) -> None:
    """The submitted fields of a task become process variables (docs/CONVENTIONS.md, Forms), also
    for a multi-instance task: a submitted form value is never lost. Every instance submits the
    same value here, so the expectation holds whatever the merge order of the instances."""
    iid = start(engine, "multi_instance", actor="dora")
    for who in ["alice", "bob", "carol"]:
        t = engine.tasks(who, scope="mine", instance_id=iid)[0]
        engine.complete(t.id, who, {"approve": True})
        assert_roundtrip(engine, iid)

    assert open_elements(engine, iid) == ["Task_sign"]
    assert data(engine, iid).get("approve") is True, "the reviews' submitted 'approve' was dropped"

    while open_tasks(engine, iid):
        signer = open_tasks(engine, iid)[0].assignee
        complete(engine, iid, "Task_sign", {"ok": True}, user=signer)

    assert_completed(engine, iid)
    final = data(engine, iid)
    assert final.get("approve") is True
    assert final.get("ok") is True, "the signatures' submitted 'ok' was dropped"


# ---------------------------------------------------------------------------------------------- business rule


@pytest.mark.parametrize(("score", "grade", "task"), [
    (95, "A", "Task_reward"),
    (70, "B", "Task_ack"),
    (10, "C", "Task_ack"),
])
def test_business_rule__decision_table_grades_the_score(engine: Engine, score: int, grade: str, task: str) -> None:
    iid = start(engine, "business_rule")
    complete(engine, iid, "Task_score", {"score": score}, user="alice")

    assert open_elements(engine, iid) == [task]
    assert engine.task_data(task_by_element(engine, iid, task).id)["grade"] == grade

    complete(engine, iid, task, {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"score": score, "grade": grade, "ok": True}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_score"),
        ("task_completed", "alice", "Task_score"),
        ("task_created", None, task),
        ("task_completed", "bob", task),
        ("instance_completed", "bob", None),
    ]


# ---------------------------------------------------------------------------------------------- messages


def test_message_start__message_starts_instance_with_payload(engine: Engine) -> None:
    payload = {"customer": "Wu", "text": "late delivery"}

    result = engine.message("complaint", payload, actor="carol")

    assert list(result) == ["started"] and len(result["started"]) == 1
    iid = result["started"][0]
    assert_roundtrip(engine, iid)
    assert engine.instance(iid)["key"] == "message_start"
    assert open_elements(engine, iid) == ["Task_handle"]
    assert engine.task_data(task_by_element(engine, iid, "Task_handle").id) == payload
    assert data(engine, iid) == payload

    complete(engine, iid, "Task_handle", {"name": "handled"}, user="alice")

    assert_completed(engine, iid)
    assert data(engine, iid) == {**payload, "name": "handled"}
    assert path(engine, iid) == [
        ("instance_started", "carol", None),
        ("message_received", "carol", "StartEvent_complaint"),
        ("task_created", None, "Task_handle"),
        ("task_completed", "alice", "Task_handle"),
        ("instance_completed", "alice", None),
    ]
    events = engine.history(iid)
    assert events[0].payload["via"] == "message"
    received = [e for e in events if e.type == "message_received"][0]
    assert {k: v for k, v in received.payload.items() if k != "dir"} == {"name": "complaint", "data": payload}


def test_message_start__plain_start_of_message_process__is_refused(engine: Engine) -> None:
    before = engine.instances()
    with pytest.raises(InputError):
        engine.start("message_start", actor="alice")
    assert engine.instances() == before


def test_intermediate_message_catch__reply_payload_is_merged_into_data(engine: Engine) -> None:
    iid = start(engine, "message_catch")
    complete(engine, iid, "Task_submit", {"name": "request"}, user="alice")

    inst = engine.instance(iid)
    assert open_tasks(engine, iid) == []
    assert [w["element"] for w in inst["waiting"]] == ["Event_reply"]
    assert status(engine, iid) == "running"

    result = engine.message("reply", {"answer": "yes", "ref": 7}, actor="dora")

    assert result == {"delivered_to": iid}
    assert_roundtrip(engine, iid)
    assert engine.instance(iid)["waiting"] == []
    assert open_elements(engine, iid) == ["Task_read"]
    assert engine.task_data(task_by_element(engine, iid, "Task_read").id) == \
        {"name": "request", "answer": "yes", "ref": 7}

    complete(engine, iid, "Task_read", {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid) == {"name": "request", "answer": "yes", "ref": 7, "ok": True}
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_submit"),
        ("task_completed", "alice", "Task_submit"),
        ("message_received", "dora", "Event_reply"),
        ("task_created", None, "Task_read"),
        ("task_completed", "bob", "Task_read"),
        ("instance_completed", "bob", None),
    ]


def test_message__nobody_waiting__raises_not_found_and_changes_nothing(engine: Engine) -> None:
    iid = start(engine, "message_catch")
    before = engine.instance(iid)
    history_before = len(engine.history(iid))

    # The instance is not yet at its catch event: nobody waits for 'reply'.
    with pytest.raises(NotFound):
        engine.message("reply", {"answer": "too early"}, actor="dora")
    # A message no process knows at all.
    with pytest.raises(NotFound):
        engine.message("no_such_message", {}, actor="dora")

    assert engine.instance(iid) == before
    assert len(engine.history(iid)) == history_before
    assert [i["id"] for i in engine.instances()] == [iid], "no instance was started by the message"

    complete(engine, iid, "Task_submit", {"name": "request"}, user="alice")
    engine.message("reply", {"answer": "yes"}, actor="dora")
    assert_roundtrip(engine, iid)
    # Delivered once; the second one has nobody waiting any more.
    with pytest.raises(NotFound):
        engine.message("reply", {"answer": "again"}, actor="dora")
    assert "again" not in data(engine, iid).values()


# ---------------------------------------------------------------------------------------------- boundary events


@pytest.mark.parametrize(("process", "fail", "taken", "not_taken"), [
    ("error_boundary", True, "Task_recover", "Task_ok"),
    ("error_boundary", False, "Task_ok", "Task_recover"),
    ("escalation_boundary", True, "Task_escalated", "Task_ok"),
    ("escalation_boundary", False, "Task_ok", "Task_escalated"),
], ids=["error_thrown", "no_error", "escalated", "not_escalated"])
def test_boundary__error_or_escalation_end_event_is_caught_by_boundary(engine: Engine, process: str, fail: bool,
                                                                       taken: str, not_taken: str) -> None:
    iid = start(engine, process)
    assert open_elements(engine, iid) == ["Task_work"]

    complete(engine, iid, "Task_work", {"fail": fail}, user="alice")

    assert open_elements(engine, iid) == [taken]
    complete(engine, iid, taken, {"ok": True}, user="bob")

    assert_completed(engine, iid)
    assert data(engine, iid)["fail"] is fail
    assert data(engine, iid)["ok"] is True
    assert not_taken not in created_elements(engine, iid)
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_work"),
        ("task_completed", "alice", "Task_work"),
        ("task_created", None, taken),
        ("task_completed", "bob", taken),
        ("instance_completed", "bob", None),
    ]


# ---------------------------------------------------------------------------------------------- terminate end


def test_terminate_end__cancels_other_branch_and_completes_instance(engine: Engine) -> None:
    iid = start(engine, "terminate_end")
    assert open_elements(engine, iid) == ["Task_a", "Task_b"]
    task_b = task_by_element(engine, iid, "Task_b")

    complete(engine, iid, "Task_a", {"a_value": "done"}, user="alice")

    assert_completed(engine, iid)
    b = engine.task(task_b.id)
    assert b.state == "cancelled"
    assert b.completed_by is None
    with pytest.raises(Conflict):
        engine.complete(task_b.id, "bob", {"b_value": "late"})
    assert data(engine, iid)["a_value"] == "done"
    assert "b_value" not in data(engine, iid)
    assert path(engine, iid) == [
        ("instance_started", "alice", None),
        ("task_created", None, "Task_a"),
        ("task_created", None, "Task_b"),
        ("task_completed", "alice", "Task_a"),
        ("task_cancelled", "alice", "Task_b"),
        ("instance_completed", "alice", None),
    ]


# ---------------------------------------------------------------------------------------------- loop back


def test_loop_back__rejected_twice_then_approved(engine: Engine) -> None:
    iid = start(engine, "loop_back")

    for n, approve in enumerate([False, False, True], start=1):
        assert open_elements(engine, iid) == ["Task_draft"]
        complete(engine, iid, "Task_draft", {"text": f"draft {n}"}, user="alice")
        assert open_elements(engine, iid) == ["Task_review"]
        assert engine.task_data(task_by_element(engine, iid, "Task_review").id)["text"] == f"draft {n}"
        complete(engine, iid, "Task_review", {"approve": approve}, user="carol")
        if not approve:
            assert status(engine, iid) == "running"

    assert_completed(engine, iid)
    assert data(engine, iid) == {"text": "draft 3", "approve": True}
    expected = [("instance_started", "alice", None)]
    for _ in range(3):
        expected += [("task_created", None, "Task_draft"), ("task_completed", "alice", "Task_draft"),
                     ("task_created", None, "Task_review"), ("task_completed", "carol", "Task_review")]
    expected += [("instance_completed", "carol", None)]
    assert path(engine, iid) == expected


# ---------------------------------------------------------------------------------------------- cancel


def test_cancel__with_reason__cancels_instance_and_open_tasks(engine: Engine) -> None:
    iid = start(engine, "parallel_gateway")
    tasks_before = open_tasks(engine, iid)
    assert len(tasks_before) == 2

    engine.cancel(iid, "opened by mistake", actor="carol")
    assert_roundtrip(engine, iid)

    inst = engine.instance(iid)
    assert inst["status"] == "cancelled"
    assert inst["ended_at"] is not None
    assert open_tasks(engine, iid) == []
    for t in tasks_before:
        assert engine.task(t.id).state == "cancelled"
    events = engine.history(iid)
    cancelled = [e for e in events if e.type == "instance_cancelled"]
    assert len(cancelled) == 1
    assert cancelled[0].actor == "carol"
    assert cancelled[0].payload["reason"] == "opened by mistake"
    assert sorted(e.element_id for e in events if e.type == "task_cancelled") == ["Task_a", "Task_b"]
    assert "instance_completed" not in [e.type for e in events]
    with pytest.raises(Conflict):
        engine.complete(tasks_before[0].id, "alice", {"a_value": "x"})


def test_cancel__without_reason__is_refused(engine: Engine) -> None:
    iid = start(engine, "user_task")
    with pytest.raises(InputError):
        engine.cancel(iid, "  ", actor="carol")
    assert status(engine, iid) == "running"
    assert open_elements(engine, iid) == ["Task_fill"]


def test_cancel__instance_not_running__raises_conflict(engine: Engine) -> None:
    iid = start(engine, "user_task")
    engine.cancel(iid, "duplicate", actor="carol")
    n = len(engine.history(iid))
    with pytest.raises(Conflict):
        engine.cancel(iid, "again", actor="carol")
    assert len(engine.history(iid)) == n
    assert status(engine, iid) == "cancelled"


# ---------------------------------------------------------------------------------------------- deploy & versions


def test_deploy__same_folder_again__is_a_no_op(engine: Engine) -> None:
    before = engine.definitions()

    results = engine.deploy([BPMN])

    assert results, "every process of the folder is reported"
    assert all(r.created is False for r in results)
    assert all(r.version == 1 for r in results)
    assert engine.definitions() == before


def test_deploy__changed_diagram__new_version_while_running_instance_stays_on_old(
        engine: Engine, tmp_path: Path) -> None:
    old_iid = start(engine, "user_task")
    assert task_by_element(engine, old_iid, "Task_fill").name == "Fill in the form"

    (tmp_path / "forms").mkdir()
    shutil.copy(BPMN / "forms" / "simple.json", tmp_path / "forms" / "simple.json")
    text = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    assert text.count('name="Fill in the form"') == 1
    (tmp_path / "user_task.bpmn").write_text(text.replace('name="Fill in the form"', 'name="Fill in the new form"'),
                                             encoding="utf-8")

    results = engine.deploy([tmp_path / "user_task.bpmn"])

    assert [(r.key, r.version, r.created) for r in results] == [("user_task", 2, True)]
    versions = [(d["key"], d["version"]) for d in engine.definitions() if d["key"] == "user_task"]
    assert versions == [("user_task", 1), ("user_task", 2)]

    new_iid = start(engine, "user_task")
    assert engine.instance(new_iid)["version"] == 2
    assert task_by_element(engine, new_iid, "Task_fill").name == "Fill in the new form"

    assert engine.instance(old_iid)["version"] == 1
    old_task = task_by_element(engine, old_iid, "Task_fill")
    assert old_task.name == "Fill in the form"
    complete(engine, old_iid, "Task_fill", {"name": "old"}, user="alice")
    assert_completed(engine, old_iid)
    assert engine.instance(old_iid)["version"] == 1
    started = engine.history(old_iid)[0]
    assert started.payload["definition"] == {"key": "user_task", "version": 1}
    created = [e for e in engine.history(old_iid) if e.type == "task_created"]
    assert [e.payload["name"] for e in created] == ["Fill in the form"]

    complete(engine, new_iid, "Task_fill", {"name": "new"}, user="bob")
    assert_completed(engine, new_iid)
    assert engine.history(new_iid)[0].payload["definition"] == {"key": "user_task", "version": 2}

    # Deploying the changed file again is a no-op as well.
    again = engine.deploy([tmp_path / "user_task.bpmn"])
    assert [(r.key, r.version, r.created) for r in again] == [("user_task", 2, False)]
