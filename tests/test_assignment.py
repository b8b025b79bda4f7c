"""Who is offered a task and who may claim, unclaim, delegate and complete it."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Conflict, Engine, InputError, NotAllowed, NotFound
from helpers import assert_roundtrip, complete, open_tasks, status, task_by_element

UNKNOWN_TASK = 987654


def ids(tasks: list[Any]) -> list[int]:
    return [t.id for t in tasks]


def snapshot(engine: Engine, iid: int) -> tuple[dict[str, Any], list[tuple[int, str, str | None]]]:
    """Everything a refused command must leave unchanged: the instance (status, data, tasks with
    their assignees and candidates, event count) and its history."""
    return engine.instance(iid), [(e.seq, e.type, e.hash) for e in engine.history(iid)]


def start_user_task(engine: Engine, actor: str = "alice") -> tuple[int, Any]:
    iid = engine.start("user_task", actor=actor)
    assert_roundtrip(engine, iid)
    return iid, task_by_element(engine, iid, "Task_fill")


def start_big_amount(engine: Engine) -> tuple[int, Any]:
    """An instance whose open task (Task_big) is offered to the manager role only."""
    iid = engine.start("exclusive_gateway", actor="alice")
    complete(engine, iid, "Task_amount", {"amount": 150}, user="alice")
    return iid, task_by_element(engine, iid, "Task_big")


# ---------------------------------------------------------------------------------------------- candidates


def test_lane_role__task_is_offered_to_role_members_only(engine: Engine) -> None:
    iid, t = start_user_task(engine)

    assert t.role == "staff"
    assert t.candidate_groups == ["staff"]
    assert t.candidate_users == []
    assert t.assignee is None
    for member in ["alice", "bob", "carol", "dora"]:
        assert t.id in ids(engine.tasks(member)), f"{member} is staff"
    assert t.id not in ids(engine.tasks("erin")), "erin is an auditor, not staff"


SEVERAL_CANDIDATES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_several" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="several_candidates" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_offered" camunda:candidateUsers="dora, bob" camunda:candidateGroups="staff,manager">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="Task_assigned" camunda:assignee="carol"><bpmn:incoming>f2</bpmn:incoming></bpmn:userTask>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Task_offered" />
    <bpmn:sequenceFlow id="f2" sourceRef="Task_offered" targetRef="Task_assigned" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_candidates__several_users_and_groups__every_view_lists_them_sorted(engine: Engine, tmp_path: Any) -> None:
    """A task's candidates and process key come with its row (one statement per list): the same
    in a list, in the task's own view and in the instance's tasks; a task with none has none."""
    path = tmp_path / "several.bpmn"
    path.write_text(SEVERAL_CANDIDATES)
    engine.deploy([path], actor="alice")
    iid = engine.start("several_candidates", actor="alice")
    [listed] = [t for t in engine.tasks("bob") if t.instance_id == iid]
    for view in (listed, engine.task(listed.id), *engine.tasks(scope="all", instance_id=iid)):
        assert (view.candidate_users, view.candidate_groups) == (["bob", "dora"], ["manager", "staff"])
        assert view.process_key == "several_candidates"
    engine.complete(listed.id, "bob", {})
    [nxt] = engine.tasks("carol", scope="mine", instance_id=iid)
    assert (nxt.candidate_users, nxt.candidate_groups, nxt.assignee) == ([], [], "carol")
    assert engine.task(listed.id).candidate_users == ["bob", "dora"]  # a completed task keeps its own


def test_lane_role__manager_lane__offered_to_managers_only(engine: Engine) -> None:
    iid, t = start_big_amount(engine)

    assert t.candidate_groups == ["manager"]
    assert t.id in ids(engine.tasks("carol"))
    assert t.id in ids(engine.tasks("dora"))
    assert t.id not in ids(engine.tasks("alice"))
    assert t.id not in ids(engine.tasks("bob"))


# ---------------------------------------------------------------------------------------------- claim / unclaim


def test_claim__candidate_claims__task_becomes_theirs_and_leaves_others_lists(engine: Engine) -> None:
    iid, t = start_user_task(engine)

    engine.claim(t.id, "alice")

    claimed = engine.task(t.id)
    assert claimed.assignee == "alice"
    assert claimed.state == "open"
    assert ids(engine.tasks("alice", scope="mine")) == [t.id]
    assert t.id in ids(engine.tasks("alice"))
    assert t.id not in ids(engine.tasks("bob")), "a claimed task is no longer available to other candidates"
    last = engine.history(iid)[-1]
    assert (last.type, last.actor, last.task_id, last.payload["assignee"]) == ("task_claimed", "alice", t.id, "alice")

    # Claiming again as the same user changes nothing.
    n = len(engine.history(iid))
    engine.claim(t.id, "alice")
    assert len(engine.history(iid)) == n


def test_claim__already_claimed_by_someone_else__raises_conflict(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")
    before = snapshot(engine, iid)

    with pytest.raises(Conflict):
        engine.claim(t.id, "bob")

    assert snapshot(engine, iid) == before
    assert engine.task(t.id).assignee == "alice"


def test_claim__not_a_candidate__is_refused(engine: Engine) -> None:
    iid, t = start_big_amount(engine)
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.claim(t.id, "alice")

    assert snapshot(engine, iid) == before
    assert engine.task(t.id).assignee is None


def test_unclaim__by_claimer__returns_task_to_candidates(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")

    engine.unclaim(t.id, "alice")

    assert engine.task(t.id).assignee is None
    assert engine.tasks("alice", scope="mine") == []
    assert t.id in ids(engine.tasks("bob"))
    last = engine.history(iid)[-1]
    assert (last.type, last.actor, last.task_id) == ("task_unclaimed", "alice", t.id)

    complete(engine, iid, "Task_fill", {"name": "after unclaim"}, user="bob")
    assert status(engine, iid) == "completed"


def test_unclaim__by_someone_else__is_refused(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.unclaim(t.id, "bob")

    assert snapshot(engine, iid) == before


def test_unclaim__task_assigned_by_process__raises_conflict(engine: Engine) -> None:
    iid = engine.start("multi_instance", actor="dora")
    t = engine.tasks("alice", scope="mine", instance_id=iid)[0]
    before = snapshot(engine, iid)

    with pytest.raises(Conflict):
        engine.unclaim(t.id, "alice")

    assert snapshot(engine, iid) == before


# ---------------------------------------------------------------------------------------------- delegate


def test_delegate__claimer_hands_task_to_another_user(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")

    engine.delegate(t.id, "alice", "bob")

    assert engine.task(t.id).assignee == "bob"
    assert ids(engine.tasks("bob", scope="mine")) == [t.id]
    assert engine.tasks("alice", scope="mine") == []
    last = engine.history(iid)[-1]
    assert (last.type, last.actor, last.payload["from"], last.payload["to"]) == \
        ("task_delegated", "alice", "alice", "bob")

    with pytest.raises(NotAllowed):
        engine.complete(t.id, "alice", {"name": "no longer mine"})
    complete(engine, iid, "Task_fill", {"name": "bob did it"}, user="bob")
    assert status(engine, iid) == "completed"
    assert engine.task(t.id).completed_by == "bob"


def test_delegate__to_unknown_user__raises_not_found(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")
    before = snapshot(engine, iid)

    with pytest.raises(NotFound):
        engine.delegate(t.id, "alice", "zed")

    assert snapshot(engine, iid) == before
    assert engine.task(t.id).assignee == "alice"


def test_delegate__task_assigned_to_someone_else__is_refused(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.delegate(t.id, "bob", "carol")

    assert snapshot(engine, iid) == before


# ---------------------------------------------------------------------------------------------- complete


def test_complete__not_assignee__is_refused_and_changes_nothing(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.claim(t.id, "alice")
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.complete(t.id, "bob", {"name": "bob's attempt"})

    assert snapshot(engine, iid) == before
    after = engine.task(t.id)
    assert (after.state, after.assignee, after.completed_by) == ("open", "alice", None)
    assert_roundtrip(engine, iid)

    complete(engine, iid, "Task_fill", {"name": "alice's"}, user="alice")
    assert engine.instance(iid)["data"] == {"name": "alice's"}


def test_complete__not_a_candidate__is_refused_and_changes_nothing(engine: Engine) -> None:
    iid, t = start_big_amount(engine)
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.complete(t.id, "alice", {"ok": True})

    assert snapshot(engine, iid) == before
    assert engine.task(t.id).state == "open"

    complete(engine, iid, "Task_big", {"ok": True}, user="carol")
    assert status(engine, iid) == "completed"


def test_complete__twice__raises_conflict(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    engine.complete(t.id, "alice", {"name": "first"})
    before = snapshot(engine, iid)

    with pytest.raises(Conflict):
        engine.complete(t.id, "alice", {"name": "second"})

    assert snapshot(engine, iid) == before
    assert engine.instance(iid)["data"] == {"name": "first"}


def test_complete__unknown_user__is_refused(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.complete(t.id, "mallory", {"name": "x"})

    assert snapshot(engine, iid) == before


def test_unknown_task_id__raises_not_found(engine: Engine) -> None:
    start_user_task(engine)

    with pytest.raises(NotFound):
        engine.task(UNKNOWN_TASK)
    with pytest.raises(NotFound):
        engine.task_data(UNKNOWN_TASK)
    with pytest.raises(NotFound):
        engine.complete(UNKNOWN_TASK, "alice", {"name": "x"})
    with pytest.raises(NotFound):
        engine.claim(UNKNOWN_TASK, "alice")
    with pytest.raises(NotFound):
        engine.unclaim(UNKNOWN_TASK, "alice")
    with pytest.raises(NotFound):
        engine.delegate(UNKNOWN_TASK, "alice", "bob")


# ---------------------------------------------------------------------------------------------- task lists


def test_tasks__scope_mine_and_group_filter(engine: Engine) -> None:
    _, fill = start_user_task(engine)   # staff
    _, big = start_big_amount(engine)   # manager

    assert sorted(ids(engine.tasks("carol"))) == sorted([fill.id, big.id])
    assert ids(engine.tasks("carol", group="manager")) == [big.id]
    assert ids(engine.tasks("carol", group="staff")) == [fill.id]
    assert ids(engine.tasks("alice", group="manager")) == []
    assert ids(engine.tasks(scope="all", group="manager")) == [big.id]
    assert ids(engine.tasks(scope="all", group="staff")) == [fill.id]
    assert engine.tasks("carol", scope="mine") == []

    engine.claim(big.id, "carol")

    assert ids(engine.tasks("carol", scope="mine")) == [big.id]
    assert ids(engine.tasks("carol", scope="mine", group="manager")) == [big.id]
    assert engine.tasks("carol", scope="mine", group="staff") == []
    assert engine.tasks("dora", scope="mine") == []
    assert big.id not in ids(engine.tasks("dora")), "claimed by carol"
    assert ids(engine.tasks(scope="all", group="manager")) == [big.id], "'all' still lists claimed tasks"


def test_tasks__bad_arguments__raise_input_error(engine: Engine) -> None:
    with pytest.raises(InputError):
        engine.tasks(scope="mine")
    with pytest.raises(InputError):
        engine.tasks("alice", scope="everything")


# ---------------------------------------------------------------------------------------------- multi-instance


def test_multi_instance_assignee_expression__each_reviewer_gets_own_task(engine: Engine) -> None:
    iid = engine.start("multi_instance", actor="dora")
    assert_roundtrip(engine, iid)

    reviews = {}
    for who in ["alice", "bob", "carol"]:
        mine = engine.tasks(who, scope="mine", instance_id=iid)
        assert len(mine) == 1
        assert (mine[0].element_id, mine[0].assignee) == ("Task_review", who)
        assert ids(engine.tasks(who, instance_id=iid)) == [mine[0].id], "no one else's review is offered"
        reviews[who] = mine[0]
    assert len({t.id for t in reviews.values()}) == 3
    assert engine.tasks("dora", instance_id=iid) == []

    before = snapshot(engine, iid)
    with pytest.raises(NotAllowed):
        engine.complete(reviews["bob"].id, "alice", {"approve": True})
    assert snapshot(engine, iid) == before

    engine.complete(reviews["bob"].id, "bob", {"approve": True})
    assert_roundtrip(engine, iid)
    assert engine.task(reviews["bob"].id).completed_by == "bob"
    assert engine.task(reviews["alice"].id).state == "open"
    assert engine.task(reviews["carol"].id).state == "open"


# ---------------------------------------------------------------------------------------------- auditor


def test_auditor__cannot_start(engine: Engine) -> None:
    before = engine.instances()

    with pytest.raises(NotAllowed):
        engine.start("user_task", actor="erin")

    assert engine.instances() == before


def test_auditor__cannot_complete_claim_or_cancel(engine: Engine) -> None:
    iid, t = start_user_task(engine)
    before = snapshot(engine, iid)

    with pytest.raises(NotAllowed):
        engine.complete(t.id, "erin", {"name": "x"})
    with pytest.raises(NotAllowed):
        engine.claim(t.id, "erin")
    with pytest.raises(NotAllowed):
        engine.cancel(iid, "auditor tried", actor="erin")

    assert snapshot(engine, iid) == before
    assert engine.task(t.id).state == "open"
    assert open_tasks(engine, iid)[0].id == t.id

