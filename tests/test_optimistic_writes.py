"""On SQLite a completion reads and runs SpiffWorkflow before it takes the write lock
(`Engine._tx(optimistic=True)`): its transaction begins deferred, and its first write either takes
the lock or fails at once when another writer came between; the command then runs again behind the
lock. These tests put another writer exactly there, between the completion's reads and its first
write, with a real second connection."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from conftest import BPMN, ORG, set_simulated
from engine import Engine
from engine.audit import Auditor
from engine.errors import Conflict

FORM = {"Task_a": {"a_value": "x"}, "Task_b": {"b_value": "y"}}


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = str(tmp_path / "tigao.db")
    Engine(path).init()
    set_simulated(path)
    eng = Engine(path)
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    eng.close()
    return path


def _open(eng: Engine, iid: int) -> dict[str, Any]:
    return {t.element_id: t for t in eng.tasks(scope="all", instance_id=iid)}


@contextmanager
def before_first_write(eng: Engine, act: Callable[[], None]) -> Iterator[list[str]]:
    """Run `act` once, when `eng` is about to send its first INSERT or UPDATE; yields the BEGINs
    its transactions sent."""
    eng._connect()
    begins: list[str] = []
    fired: list[bool] = []

    def on(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        head = statement.split(None, 1)[0].upper()
        if head == "BEGIN":
            begins.append(statement.strip())
        if head in ("INSERT", "UPDATE") and not fired:
            fired.append(True)
            act()

    event.listen(eng._sa, "before_cursor_execute", on)
    try:
        yield begins
    finally:
        event.remove(eng._sa, "before_cursor_execute", on)
    assert fired, "the completion never wrote"


def test_a_completion_begins_deferred_and_writes(url: str) -> None:
    eng = Engine(url)
    iid = eng.start("parallel_gateway", actor="alice")
    a = _open(eng, iid)["Task_a"]
    with before_first_write(eng, lambda: None) as begins:
        eng.complete(a.id, "alice", FORM["Task_a"])
    assert begins == ["BEGIN"]  # no write lock before its first write
    assert "Task_a" not in _open(eng, iid)


def test_overtaken_on_the_same_task__the_rerun_sees_it_done(url: str) -> None:
    eng, other = Engine(url), Engine(url)
    iid = eng.start("parallel_gateway", actor="alice")
    a = _open(eng, iid)["Task_a"]
    with before_first_write(eng, lambda: other.complete(a.id, "bob", FORM["Task_a"])) as begins:
        with pytest.raises(Conflict, match="already completed.*bob"):
            eng.complete(a.id, "alice", FORM["Task_a"])
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]  # overtaken, then run again behind the lock
    done = [e for e in eng.history(iid) if e.type == "task_completed"]
    assert [e.actor for e in done] == ["bob"]
    assert Auditor(eng).verify([iid])[1] == []


def test_overtaken_on_another_instance__both_complete(url: str) -> None:
    eng, other = Engine(url), Engine(url)
    first = eng.start("parallel_gateway", actor="alice")
    second = eng.start("parallel_gateway", actor="alice")
    a1, a2 = _open(eng, first)["Task_a"], _open(eng, second)["Task_a"]
    with before_first_write(eng, lambda: other.complete(a2.id, "bob", FORM["Task_a"])) as begins:
        eng.complete(a1.id, "alice", FORM["Task_a"])
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]
    assert "Task_a" not in _open(eng, first) and "Task_a" not in _open(eng, second)
    assert Auditor(eng).verify([first])[1] == [] and Auditor(eng).verify([second])[1] == []
    # The rerun had to load the instance again (its cached workflow was taken by the failed run)
    # and still ends where a run with nothing in between ends.
    b1 = _open(eng, first)["Task_b"]
    eng.complete(b1.id, "alice", FORM["Task_b"])
    assert set(_open(eng, first)) == {"Task_done"}


def test_a_writer_holding_the_lock__the_rerun_waits_for_it(url: str) -> None:
    eng = Engine(url)
    iid = eng.start("parallel_gateway", actor="alice")
    a = _open(eng, iid)["Task_a"]
    holder = sqlite3.connect(url, isolation_level=None, check_same_thread=False)
    released = threading.Event()

    def hold() -> None:  # another process's writer, mid-transaction, lets go a moment later
        holder.execute("BEGIN IMMEDIATE")
        threading.Thread(target=lambda: (time.sleep(0.3), holder.execute("COMMIT"), released.set())).start()

    with before_first_write(eng, hold) as begins:
        eng.complete(a.id, "alice", FORM["Task_a"])
    assert released.is_set()
    holder.close()
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]
    assert "Task_a" not in _open(eng, iid)
    assert Auditor(eng).verify([iid])[1] == []
