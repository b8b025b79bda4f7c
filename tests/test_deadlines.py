"""Deadlines: the engine's clock, due dates, BPMN timers, escalation and the worker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import BPMN, T0
from engine import Conflict, Engine, InputError, NotAllowed, Worker
from helpers import assert_roundtrip, complete, open_tasks, status, task_by_element
from storage.models import Event, Timer

ROOT = Path(__file__).parent.parent


def _events(engine: Engine, iid: int, type_: str) -> list[Event]:
    return [e for e in engine.history(iid) if e.type == type_]


# ----------------------------------------------------------------------------- clock
def test_clock__real_clock_database__cannot_be_set(db_url: str) -> None:
    eng = Engine(db_url)
    with pytest.raises(NotAllowed):
        eng.set_clock(T0)
    with pytest.raises(NotAllowed):
        eng.advance_clock(timedelta(days=1))


def test_clock__simulated__moves_forward_only(engine: Engine) -> None:
    assert engine.now() == T0
    engine.advance_clock(timedelta(days=2))
    assert engine.now() == T0 + timedelta(days=2)
    with pytest.raises(InputError):
        engine.set_clock(T0)
    assert engine.now() == T0 + timedelta(days=2)


def test_clock__is_shared_by_every_engine_on_the_database(engine: Engine, db_url: str) -> None:
    engine.set_clock(T0 + timedelta(hours=5))
    other = Engine(db_url)
    assert other.now() == T0 + timedelta(hours=5)
    other.close()


# ----------------------------------------------------------------------------- due dates
def test_due_date__iso_duration__counts_from_task_creation(engine: Engine) -> None:
    engine.advance_clock(timedelta(hours=1))
    iid = engine.start("timers", actor="alice")
    t = task_by_element(engine, iid, "Task_wait")
    assert t.due_at == T0 + timedelta(hours=1, days=3)


def test_due_date__in_the_past_at_creation__task_is_overdue_at_once(engine: Engine, tmp_path: Path) -> None:
    text = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    text = text.replace('id="Task_fill"', 'id="Task_fill" camunda:dueDate="2000-01-01T00:00:00Z"', 1)
    assert 'camunda:dueDate="2000' in text
    (tmp_path / "user_task.bpmn").write_text(text, encoding="utf-8")
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "simple.json").write_text((BPMN / "forms" / "simple.json").read_text())
    engine.deploy([tmp_path / "user_task.bpmn"])
    iid = engine.start("user_task", actor="alice")
    t = task_by_element(engine, iid, "Task_fill")
    assert t.overdue
    assert [x.id for x in engine.tasks(scope="all", overdue=True)] == [t.id]
    assert len(_events(engine, iid, "task_overdue")) == 1


# ----------------------------------------------------------------------------- escalation
def test_overdue_task__notifies_then_escalates_to_the_leader_then_the_office(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    t = task_by_element(engine, iid, "Task_wait")
    engine.claim(t.id, "alice")
    worker = Worker(engine)
    assert worker.run_once() == []  # nothing due yet

    engine.advance_clock(timedelta(days=3, minutes=1))
    fired = worker.run_once()
    assert [f.kind for f in fired] == ["due"]
    overdue = _events(engine, iid, "task_overdue")
    assert overdue[0].payload["responsible"] == ["alice"] and overdue[0].payload["leader"] == "carol"
    assert [n.kind for n in engine.notifications("alice")] == ["overdue"]
    assert [n.kind for n in engine.notifications("carol")] == ["overdue_leader"]
    assert [x.id for x in engine.tasks(scope="all", overdue=True)] == [t.id]

    engine.advance_clock(timedelta(days=1))
    assert [f.kind for f in worker.run_once()] == ["escalate"]
    esc = _events(engine, iid, "task_escalated")
    assert esc[0].payload["level"] == 1 and esc[0].payload["to_user"] == "carol"
    assert esc[0].payload["responsible"] == ["alice"] and esc[0].payload["leader"] == "carol"
    # The leader can now act on the task; it stays with alice.
    assert "carol" in engine.task(t.id).candidate_users


def test_escalation__level_two__goes_to_the_office_role(engine: Engine) -> None:
    iid = engine.start("loop_back", actor="alice")  # no boundary timer to interfere
    t = task_by_element(engine, iid, "Task_draft")
    # Give the task a due date through the projection's timer, as a diagram would.
    engine.claim(t.id, "alice")
    with engine._tx() as s:
        from storage.models import HumanTask

        row = s.get(HumanTask, t.id)
        row.due_at = T0 + timedelta(hours=1)
        s.add(Timer(instance_id=iid, kind="due", task_id=t.id, element_id=t.element_id, due_at=row.due_at,
                    state="pending"))
    worker = Worker(engine)
    engine.advance_clock(timedelta(days=5))
    kinds = []
    for _ in range(4):
        kinds += [f.kind for f in worker.run_once()]
        engine.advance_clock(timedelta(days=2))
    assert kinds == ["due", "escalate", "escalate"]
    levels = [e.payload["level"] for e in _events(engine, iid, "task_escalated")]
    assert levels == [1, 2]
    assert "efficiency_office" in engine.task(t.id).candidate_groups
    assert any(n.kind == "escalated" for n in engine.notifications("dora"))


def test_completed_task__its_deadline_rows_are_cancelled(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    complete(engine, iid, "Task_wait", {"ok": True})
    engine.advance_clock(timedelta(days=10))
    kinds = [f.kind for f in Worker(engine).run_once()]
    assert "due" not in kinds and "escalate" not in kinds
    assert _events(engine, iid, "task_overdue") == []


# ----------------------------------------------------------------------------- BPMN timers
def test_boundary_timer__interrupting__fires_at_its_time(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    worker = Worker(engine)
    engine.advance_clock(timedelta(days=4, hours=23))
    worker.run_once()
    assert [t.element_id for t in open_tasks(engine, iid)] == ["Task_wait"]
    engine.advance_clock(timedelta(hours=2))
    worker.run_once()
    assert [t.element_id for t in open_tasks(engine, iid)] == ["Task_late"]
    fired = _events(engine, iid, "timer_fired")
    assert len(fired) == 1 and fired[0].element_id == "Boundary_timeout" and fired[0].payload["trigger"]
    assert_roundtrip(engine, iid)


def test_intermediate_timer__date__waits_until_then(engine: Engine) -> None:
    iid = engine.start("timers", actor="alice")
    complete(engine, iid, "Task_wait", {"ok": True})
    assert status(engine, iid) == "running"
    worker = Worker(engine)
    engine.set_clock(datetime(2029, 12, 31, 15, 59, tzinfo=timezone.utc))
    worker.run_once()
    assert status(engine, iid) == "running"
    engine.set_clock(datetime(2029, 12, 31, 16, 0, tzinfo=timezone.utc))  # 2030-01-01T00:00+08:00
    worker.run_once()
    assert status(engine, iid) == "completed"


def test_timer_duration__from_an_expression(engine: Engine) -> None:
    iid = engine.start("timer_only", {"wait": "PT2H"}, actor="alice")
    with engine._tx() as s:
        due = s.scalar(select(Timer.due_at).where(Timer.instance_id == iid, Timer.state == "pending"))
    assert due == T0 + timedelta(hours=2)
    engine.advance_clock(timedelta(hours=2))
    Worker(engine).run_once()
    assert status(engine, iid) == "completed"


def test_cycle_boundary__after_downtime__fires_once_per_missed_occurrence_in_order(engine: Engine) -> None:
    iid = engine.start("cycle_boundary", actor="alice")
    engine.set_clock(datetime(2012, 12, 1, tzinfo=timezone.utc))  # three quarters missed
    Worker(engine).run_once()
    inspections = [t for t in open_tasks(engine, iid) if t.element_id == "Task_inspect"]
    assert len(inspections) == 3
    dues = [e.payload["due_at"] for e in _events(engine, iid, "timer_fired")]
    assert dues == ["2012-03-31T16:00:00+00:00", "2012-06-30T16:00:00+00:00", "2012-09-30T16:00:00+00:00"]
    # Nothing more is due: a second pass fires nothing.
    assert [f for f in Worker(engine).run_once() if f.instance_id == iid] == []
    assert_roundtrip(engine, iid)


def test_timer_start_cycle__starts_one_instance_per_occurrence(engine: Engine) -> None:
    assert engine.instances(key="timer_cycle") == []
    engine.set_clock(datetime(2012, 8, 1, tzinfo=timezone.utc))
    fired = Worker(engine).run_once()
    starts = [f for f in fired if f.kind == "start"]
    assert [f.due_at for f in starts] == [datetime(2012, 3, 31, 16, 0, tzinfo=timezone.utc),
                                          datetime(2012, 6, 30, 16, 0, tzinfo=timezone.utc)]
    insts = engine.instances(key="timer_cycle")
    assert len(insts) == 2 and all(i["open_tasks"] == 1 for i in insts)
    engine.set_clock(datetime(2013, 6, 1, tzinfo=timezone.utc))
    Worker(engine).run_once()
    assert len(engine.instances(key="timer_cycle")) == 3  # R3: three in all, never more


def test_redeploy__replaces_pending_start_timers(engine: Engine, tmp_path: Path) -> None:
    text = (BPMN / "timer_cycle.bpmn").read_text(encoding="utf-8").replace("R3/", "R2/")
    (tmp_path / "timer_cycle.bpmn").write_text(text, encoding="utf-8")
    (tmp_path / "forms").mkdir()
    (tmp_path / "forms" / "ack.json").write_text((BPMN / "forms" / "ack.json").read_text())
    assert engine.deploy([tmp_path / "timer_cycle.bpmn"])[0].version == 2
    with engine._tx() as s:
        pending = s.scalar(select(func.count()).select_from(Timer).where(Timer.kind == "start",
                                                                          Timer.state == "pending"))
    assert pending == 1


# ----------------------------------------------------------------------------- workers
def test_sqlite__second_worker__is_refused_while_the_first_holds_the_lease(tmp_path: Path) -> None:
    url = str(tmp_path / "w.db")
    Engine(url).init()
    a, b = Worker(Engine(url), name="a"), Worker(Engine(url), name="b")
    assert a.acquire_lease()
    assert not b.acquire_lease()
    with pytest.raises(Conflict):
        b.run_once()  # a library pass is refused too, not only the command line's loop
    assert a.run_once() == []
    a.release_lease()
    assert b.acquire_lease()
    assert b.run_once() == []
    b.release_lease()
    assert Worker(Engine(url), name="c").run_once() == []  # a pass gives back a lease it took itself
    assert Worker(Engine(url), name="d").acquire_lease()


def test_cli_worker__sqlite__a_second_worker_says_so_and_exits(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import main

    url = str(tmp_path / "w.db")
    Engine(url).init()
    assert Worker(Engine(url), name="other").acquire_lease()
    result = CliRunner().invoke(main, ["--db", url, "worker", "--once"])
    assert result.exit_code == 8  # a conflict with the other worker, not bad input
    assert "another worker" in result.output


_WORKER_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from engine import Engine, Worker
w = Worker(Engine({url!r}), name=sys.argv[1])
while True:
    fired = w.run_once(limit=20)
    if not fired:
        break
    time.sleep(0.001)
"""


@pytest.mark.postgres
def test_postgres__four_workers_2000_timers__each_fires_exactly_once_even_if_one_is_killed(pg_url: str,
                                                                                           tmp_path: Path) -> None:
    from conftest import ORG, set_simulated

    set_simulated(pg_url)
    eng = Engine(pg_url)
    eng.load_directory(ORG)
    eng.deploy([BPMN / "timer_only.bpmn"])
    n = 2000
    for i in range(n):
        eng.start("timer_only", {"wait": f"PT{1 + i % 50}M"}, actor="alice")
    eng.advance_clock(timedelta(hours=2))
    script = tmp_path / "w.py"
    script.write_text(_WORKER_SCRIPT.format(root=str(ROOT), url=pg_url))
    procs = [subprocess.Popen([sys.executable, str(script), f"w{k}"]) for k in range(4)]

    def fired_count() -> int:
        with eng._tx() as s:
            return s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "fired")) or 0

    deadline = time.monotonic() + 300
    while fired_count() < n // 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    procs[0].send_signal(signal.SIGKILL)  # dies mid-pass, maybe mid-transaction
    for p in procs[1:]:
        p.wait(timeout=600)
    procs[0].wait(timeout=30)
    Worker(eng, name="final").run_once()  # whatever the killed worker left is taken over

    with eng._tx() as s:
        states = dict(s.execute(select(Timer.state, func.count()).group_by(Timer.state)).all())
        per_instance = s.execute(select(Event.instance_id, func.count()).where(Event.type == "timer_fired")
                                 .group_by(Event.instance_id)).all()
    assert states == {"fired": n}
    assert len(per_instance) == n and all(c == 1 for _, c in per_instance)
    assert all(i["status"] == "completed" for i in eng.instances(limit=n + 10))
    eng.close()


def test_cli_worker__sigterm__stops_cleanly_after_the_transaction_in_flight(tmp_path: Path) -> None:
    url = str(tmp_path / "w.db")
    from conftest import ORG, set_simulated

    Engine(url).init()
    set_simulated(url)
    eng = Engine(url)
    eng.load_directory(ORG)
    eng.deploy([BPMN / "timer_only.bpmn"])
    iid = eng.start("timer_only", {"wait": "PT1H"}, actor="alice")
    eng.advance_clock(timedelta(hours=2))
    tigao = Path(sys.executable).parent / "tigao"
    proc = subprocess.Popen([str(tigao), "--db", url, "worker", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while status(eng, iid) != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping after the transaction in flight" in err
    assert "worker done: 1 fired" in out
    assert status(eng, iid) == "completed"
    # The lease is released: another worker may start at once.
    assert Worker(Engine(url), name="next").acquire_lease()
