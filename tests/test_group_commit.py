"""Group commit in the server (engine/groupcommit.py): a real uvicorn server in this process, real
SQLite and PostgreSQL, real HTTP clients on threads.

To put several commands into one shared transaction for certain, a test holds the database's
write lock from a second connection (SQLite: BEGIN IMMEDIATE; PostgreSQL: an EXCLUSIVE lock on
`instances`): the committer's first batch waits for it, the other requests queue up behind it, and
the test lets go once the committer reports them waiting. COMMITs are counted with a SQLAlchemy
event listener on the committer's connections.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import create_engine, event, select
from web_support import free_port, prepare

from engine import Engine
from engine.audit import Auditor
from engine.groupcommit import GroupCommit
from storage.db import normalise_url, sqlite_path
from storage.models import Event, HumanTask
from web.app import create_app

API = "/api/v1"
WAIT = float(__import__("os").environ.get("GC_WAIT", "60"))  # seconds a test waits for the server to reach a state before it fails

DIVIDE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_gc_divide"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="gc_divide" name="Divide" isExecutable="true">
    <bpmn:laneSet id="LaneSet_gc">
      <bpmn:lane id="Lane_staff" name="staff">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_enter</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Script_divide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_ack</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>EndEvent_1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_enter" name="Enter a divisor">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="Script_divide" name="Divide" scriptFormat="python">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>quotient = 100 / divisor</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="Task_ack" name="Acknowledge">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent_1" targetRef="Task_enter" />
    <bpmn:sequenceFlow id="f2" sourceRef="Task_enter" targetRef="Script_divide" />
    <bpmn:sequenceFlow id="f3" sourceRef="Script_divide" targetRef="Task_ack" />
    <bpmn:sequenceFlow id="f4" sourceRef="Task_ack" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    base: str
    app: Any
    eng: Engine  # the test's own library Engine (its own connections)
    commits: list[float] = field(default_factory=list)  # monotonic times of the committer's COMMITs

    @property
    def group(self) -> GroupCommit:
        group = self.app.state.group
        assert isinstance(group, GroupCommit)
        return group

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.tokens[user]}"},
                            timeout=WAIT)

    def open_task(self, key: str, user: str = "alice", data: dict[str, Any] | None = None) -> tuple[int, int]:
        """Start `key` through the library; (instance id, its one open task id)."""
        iid = self.eng.start(key, data or {}, actor=user)
        [t] = self.eng.tasks(scope="all", instance_id=iid)
        return iid, t.id

    def row(self, task_id: int) -> tuple[str, str | None]:
        """(state, completed_by) of a task, read through a connection of its own."""
        sa = create_engine(normalise_url(self.url))
        try:
            with sa.connect() as c:
                r = c.execute(select(HumanTask.state, HumanTask.completed_by).where(HumanTask.id == task_id)).one()
                return r.state, r.completed_by
        finally:
            sa.dispose()


def _serve(url: str, tokens: dict[str, str], group_commit: bool, committers: int | None = None) -> Iterator[Served]:
    app = create_app(url, worker=False, group_commit=group_commit)
    if committers is not None:  # one committer: the tests that hold a lock count its batches
        app.state.group.close()
        app.state.group = GroupCommit(url, committers=committers)
    app.state.pool.size = 16  # room for every request of a test at once (each holds an Engine while it waits)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    eng = Engine(url)
    served = Served(url, tokens, f"http://127.0.0.1:{port}", app, eng)
    if group_commit:
        for committer in served.group.engines:
            event.listen(committer._connect(), "commit", lambda _conn: served.commits.append(time.monotonic()))
    try:
        for user in tokens:  # each token's first use records it (a write): done before any test holds a lock
            with served.client(user) as c:
                assert c.get(f"{API}/tasks").status_code in (200, 403)
        yield served
    finally:
        server.should_exit = True
        thread.join(WAIT)
        eng.close()


def _prepared(db_url: str, tmp_path: Path) -> dict[str, str]:
    tokens, _org = prepare(db_url, tmp_path)
    (tmp_path / "gc_divide.bpmn").write_text(DIVIDE, encoding="utf-8")
    setup = Engine(db_url)
    setup.deploy([tmp_path / "gc_divide.bpmn"], actor="ada")
    setup.close()
    return tokens


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    """The server with one committer thread."""
    yield from _serve(db_url, _prepared(db_url, tmp_path), group_commit=True, committers=1)


@pytest.fixture
def served_default(db_url: str, tmp_path: Path) -> Iterator[Served]:
    """The server as `tigao serve` makes it (on PostgreSQL: two committers)."""
    yield from _serve(db_url, _prepared(db_url, tmp_path), group_commit=True)


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Hold the database's write lock (SQLite) or the `instances` table (PostgreSQL) until the block ends."""
    path = sqlite_path(normalise_url(url))
    if path is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as pg:
        pg.execute("LOCK TABLE instances IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def _until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() >= deadline:
            import faulthandler, sys
            faulthandler.dump_traceback(sys.stderr)
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


@dataclass
class Call:
    user: str
    path: str
    body: dict[str, Any]
    status: int = 0
    answer: Any = None
    answered_at: float = 0.0
    on_answer: Callable[[Call], None] | None = None


def _send(served: Served, call: Call) -> threading.Thread:
    def go() -> None:
        with served.client(call.user) as c:
            r = c.post(call.path, json=call.body)
            call.answered_at = time.monotonic()
            call.status = r.status_code
            call.answer = r.json() if r.content else None
            if call.on_answer is not None:
                call.on_answer(call)

    th = threading.Thread(target=go)
    th.start()
    return th


def in_one_batch(served: Served, plug: Call, calls: list[Call]) -> None:
    """Send `plug`, wait until the committer runs it (held), send `calls`, wait until they all wait
    for the next batch, then let go: `calls` share one transaction."""
    group = served.group
    batches = group.batches
    with writes_held(served.url):
        threads = [_send(served, plug)]
        _until(lambda: group.running == 1, "the committer runs the first command")
        threads += [_send(served, c) for c in calls]
        _until(lambda: group.pending() == len(calls), f"{len(calls)} commands wait for the next batch")
    for th in threads:
        th.join(WAIT)
    assert group.batches == batches + 2


def _complete(task_id: int, user: str, data: dict[str, Any]) -> Call:
    return Call(user, f"{API}/tasks/{task_id}/complete", {"data": data})


def _verified(served: Served, instance_ids: list[int]) -> None:
    n, failures = Auditor(served.eng).verify(instance_ids)
    assert n == len(instance_ids) and failures == [], failures


# --------------------------------------------------------------------------------------------- tests
def test_concurrent_completions__share_commits__every_chain_verifies(served: Served) -> None:
    users = ["alice", "bob", "carol", "dora"]
    opened = [served.open_task("user_task") for _ in range(9)]
    plug, *rest = [_complete(t, users[i % 4], {"name": f"n{i}", "amount": i}) for i, (_, t) in enumerate(opened)]
    commits = len(served.commits)
    in_one_batch(served, plug, rest)
    calls = [plug, *rest]
    assert [c.status for c in calls] == [200] * 9, [c.answer for c in calls if c.status != 200]
    assert len(served.commits) - commits == 2 < len(calls)  # the 9 completions: two COMMITs in all
    for i, ((iid, t), c) in enumerate(zip(opened, calls)):
        assert c.answer["state"] == "completed" and c.answer["completed_by"] == users[i % 4]
        assert served.row(t) == ("completed", users[i % 4])
        assert served.eng.instance(iid)["status"] == "completed"
        assert served.eng.instance(iid)["data"]["amount"] == i
    _verified(served, [iid for iid, _ in opened])


def test_many_clients__complete_start_claim_message__all_succeed_and_verify(served_default: Served) -> None:
    """Clients on threads, each with its own instances, without any lock held: whatever batches
    form (two committers at once on PostgreSQL), every command succeeds and every chain verifies."""
    served = served_default
    users = ["alice", "bob", "carol", "dora"]
    errors: list[str] = []
    started: list[int] = []

    def client(user: str) -> None:
        with served.client(user) as c:
            for _ in range(3):
                r = c.post(f"{API}/processes/user_task/instances", json={"data": {}})
                if r.status_code != 201:
                    errors.append(r.text)
                    continue
                inst = r.json()
                started.append(inst["id"])
                task = inst["open_tasks"][0]["id"]
                r = c.post(f"{API}/tasks/{task}/claim")
                if r.status_code != 200 or r.json()["assignee"] != user:
                    errors.append(r.text)
                r = c.post(f"{API}/tasks/{task}/complete", json={"data": {"name": user}})
                if r.status_code != 200:
                    errors.append(r.text)
                r = c.post(f"{API}/processes/message_catch/instances", json={"data": {}})
                if r.status_code != 201:
                    errors.append(r.text)
                    continue
                iid = r.json()["id"]
                started.append(iid)
                submit = r.json()["open_tasks"][0]["id"]
                r = c.post(f"{API}/tasks/{submit}/complete", json={"data": {"name": user}})
                if r.status_code != 200:
                    errors.append(r.text)
                r = c.post(f"{API}/messages", json={"name": "reply", "instance": iid, "data": {"by": user}})
                if r.status_code != 200 or r.json() != {"delivered_to": iid}:
                    errors.append(r.text)

    threads = [threading.Thread(target=client, args=(u,)) for u in users * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT * 4)
    assert errors == []
    assert len(started) == 2 * 3 * len(threads)
    assert served.group.commands >= 6 * 3 * len(threads)
    _verified(served, started)
    for iid in started:
        events = [e.type for e in served_default.eng.history(iid)]
        assert events.count("instance_started") == 1
        assert "task_completed" in events


def test_failing_commands_in_a_batch__get_their_own_errors__the_others_are_stored(served: Served) -> None:
    good = [served.open_task("user_task") for _ in range(3)]
    _, bad_form = served.open_task("user_task")
    _, theirs = served.open_task("user_task")
    served.eng.claim(theirs, "alice")
    divide_iid, divide = served.open_task("gc_divide")
    twice_iid, twice = served.open_task("user_task")
    plug = _complete(good[0][1], "alice", {"name": "first"})
    calls = {
        "good1": _complete(good[1][1], "bob", {"name": "second"}),
        "bad form": _complete(bad_form, "alice", {"name": "x", "amount": "lots"}),
        "not yours": _complete(theirs, "bob", {"name": "mine?"}),
        "script": _complete(divide, "carol", {"divisor": 0}),
        "twice a": _complete(twice, "alice", {"name": "a"}),
        "twice b": _complete(twice, "bob", {"name": "b"}),
        "good2": _complete(good[2][1], "dora", {"name": "third"}),
        "no task": _complete(10**9, "dora", {"name": "nobody"}),
    }
    commits = len(served.commits)
    in_one_batch(served, plug, list(calls.values()))
    assert len(served.commits) - commits == 2
    status = {k: c.status for k, c in calls.items()}
    assert plug.status == 200
    assert status["good1"] == status["good2"] == 200
    assert status["bad form"] == 422 and "$.amount" in calls["bad form"].answer["detail"] + str(calls["bad form"].answer)
    assert status["not yours"] == 403 and "assigned to alice" in calls["not yours"].answer["detail"]
    assert status["script"] == 422 and "Script_divide" in calls["script"].answer["detail"]
    assert status["no task"] == 404
    assert sorted([status["twice a"], status["twice b"]]) == [200, 409]
    winner = "alice" if status["twice a"] == 200 else "bob"
    # What succeeded is stored; what failed left its task open.
    assert [served.row(t) for _, t in good] == [("completed", "alice"), ("completed", "bob"), ("completed", "dora")]
    assert served.row(bad_form) == ("open", None)
    assert served.row(theirs) == ("open", None)
    assert served.row(divide) == ("open", None)
    assert served.row(twice) == ("completed", winner)
    divide_events = [e.type for e in served.eng.history(divide_iid)]
    assert divide_events[-1] == "script_failed" and "task_completed" not in divide_events
    assert sum(e.type == "task_completed" for e in served.eng.history(twice_iid)) == 1
    # The failed script's workflow was not kept: the task completes now with a good divisor.
    with served.client("carol") as c:
        r = c.post(f"{API}/tasks/{divide}/complete", json={"data": {"divisor": 4}})
    assert r.status_code == 200, r.text
    assert served.eng.instance(divide_iid)["data"]["quotient"] == 25
    _verified(served, sorted({served.eng.task(t).instance_id for t in
                              [*(t for _, t in good), bad_form, theirs, divide, twice]}))


def test_commands_on_one_instance_in_a_batch__run_in_order(served: Served) -> None:
    iid = served.eng.start("parallel_gateway", {}, actor="alice")
    tasks = {t.element_id: t.id for t in served.eng.tasks(scope="all", instance_id=iid)}
    _, plug_task = served.open_task("user_task")
    in_one_batch(served, _complete(plug_task, "alice", {"name": "plug"}),
                 calls := [_complete(tasks["Task_a"], "alice", {"a_value": "x"}),
                           _complete(tasks["Task_b"], "bob", {"b_value": "y"})])
    assert [c.status for c in calls] == [200, 200], [c.answer for c in calls]
    [done] = [t for t in served.eng.tasks(scope="all", instance_id=iid) if t.state == "open"]
    assert done.element_id == "Task_done"
    assert served.eng.instance(iid)["data"]["joined"] in ("x+y",)
    _verified(served, [iid])


def test_two_tasks_of_one_instance_completed_at_once__both_count(served_default: Served) -> None:
    """Branches A and B of parallel_gateway instances completed at the same moment: in one batch
    they run in order; in two (two committers on PostgreSQL) the instance's row lock orders them."""
    served = served_default
    calls: list[Call] = []
    instances = []
    for _ in range(4):
        iid = served.eng.start("parallel_gateway", {}, actor="alice")
        instances.append(iid)
        tasks = {t.element_id: t.id for t in served.eng.tasks(scope="all", instance_id=iid)}
        calls += [_complete(tasks["Task_a"], "alice", {"a_value": f"a{iid}"}),
                  _complete(tasks["Task_b"], "bob", {"b_value": f"b{iid}"})]
    threads = [_send(served, c) for c in calls]
    for th in threads:
        th.join(WAIT)
    assert [c.status for c in calls] == [200] * len(calls), [c.answer for c in calls if c.status != 200]
    for iid in instances:
        [done] = [t for t in served.eng.tasks(scope="all", instance_id=iid) if t.state == "open"]
        assert done.element_id == "Task_done"
        assert served.eng.instance(iid)["data"]["joined"] == f"a{iid}+b{iid}"
    _verified(served, instances)


def test_an_answer_comes_after_its_commit(served_default: Served) -> None:
    """As soon as each answer arrives, a connection of the test's own sees the completion, and a
    committer's COMMIT came before the answer."""
    served = served_default
    opened = [served.open_task("user_task") for _ in range(8)]
    seen: dict[int, tuple[str, str | None]] = {}

    def check(call: Call) -> None:
        seen[int(call.path.split("/")[-2])] = served.row(int(call.path.split("/")[-2]))

    users = ["alice", "bob", "carol", "dora"]
    calls = [_complete(t, users[i % 4], {"name": "n"}) for i, (_, t) in enumerate(opened)]
    for c in calls:
        c.on_answer = check
    threads = [_send(served, c) for c in calls]
    for th in threads:
        th.join(WAIT)
    assert [c.status for c in calls] == [200] * 8
    assert seen == {t: ("completed", users[i % 4]) for i, (_, t) in enumerate(opened)}
    for c in calls:
        assert any(at <= c.answered_at for at in served.commits)


def test_group_commit_off__each_command_commits_alone(db_url: str, tmp_path: Path) -> None:
    tokens, _org = prepare(db_url, tmp_path)
    for served in _serve(db_url, tokens, group_commit=False):
        assert served.app.state.group is None
        _, t = served.open_task("user_task")
        with served.client("bob") as c:
            r = c.post(f"{API}/tasks/{t}/complete", json={"data": {"name": "solo"}})
        assert r.status_code == 200 and r.json()["state"] == "completed"
        assert served.row(t) == ("completed", "bob")


def test_group_commit_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = str(tmp_path / "t.db")
    Engine(url).init()
    monkeypatch.setenv("TIGAO_GROUP_COMMIT", "0")
    assert create_app(url, worker=False).state.group is None
    assert create_app(url, worker=False, group_commit=True).state.group is not None
    monkeypatch.delenv("TIGAO_GROUP_COMMIT")
    assert create_app(url, worker=False).state.group is not None


def test_group_commit_in_the_library__a_failing_command_leaves_no_trace(db_url: str) -> None:
    """GroupCommit without the server: a batch of commands given directly."""
    from conftest import ORG, BPMN, set_simulated

    set_simulated(db_url)
    eng = Engine(db_url)
    eng.load_directory(ORG)
    eng.deploy([BPMN], actor="alice")
    group = GroupCommit(db_url)
    try:
        iid = group.run(lambda e: e.start("user_task", {}, actor="alice"))
        [t] = eng.tasks(scope="all", instance_id=iid)
        with pytest.raises(Exception) as info:
            group.run(lambda e: e.complete(t.id, "alice", {"amount": -1}))
        assert "amount" in str(info.value)
        assert eng.task(t.id).state == "open"
        group.run(lambda e: e.complete(t.id, "alice", {"name": "ok"}))
        assert eng.task(t.id).state == "completed"
        with eng._tx(read=True) as s:
            types = list(s.scalars(select(Event.type).where(Event.instance_id == iid).order_by(Event.seq)))
        assert types.count("task_completed") == 1
        assert Auditor(eng).verify([iid])[1] == []
    finally:
        group.close()
        eng.close()
