"""A completion reads the clock, the directory stamp, its task, its candidates and its instance in
one statement (engine/tasks.py `_open_task_with_siblings`, `Engine._tx(fold_settings=True)`): it
names the user's groups from the directory it cached, then checks the stamp read with the row. These
tests change what another Engine cached, between two of its commands, and see that it notices."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest

from engine import Engine
from engine.errors import NotAllowed, NotFound

from conftest import ORG

ORG_TEXT = ORG.read_text(encoding="utf-8")


def _task(engine: Engine, iid: int, element: str) -> Any:
    return next(t for t in engine.tasks(scope="all", instance_id=iid, state="any") if t.element_id == element)


def _directory(tmp_path: Path, alice_roles: str) -> Path:
    text = ORG_TEXT.replace('[users.alice]\nname = "Alice"\ndepartment = "ops"\nroles = ["staff"]',
                            f'[users.alice]\nname = "Alice"\ndepartment = "hq"\nroles = {alice_roles}')
    assert text != ORG_TEXT
    path = tmp_path / "org.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def other(make_engine: Callable[..., Engine], engine: Engine) -> Engine:
    return make_engine()


def _started(engine: Engine) -> int:
    return engine.start("parallel_gateway", actor="alice")


def test_a_group_lost_in_another_process__is_noticed(engine: Engine, other: Engine, tmp_path: Path) -> None:
    iid = _started(engine)
    a = _task(engine, iid, "Task_a")
    engine.tasks("alice")  # the directory is cached, alice in staff
    other.load_directory(_directory(tmp_path, "[]"))  # alice leaves staff (and ops)
    with pytest.raises(NotAllowed, match="alice is not a candidate"):
        engine.complete(a.id, "alice", {"a_value": "x"})
    assert _task(engine, iid, "Task_a").state == "open"


def test_a_group_gained_in_another_process__is_noticed(engine: Engine, other: Engine, tmp_path: Path) -> None:
    other.load_directory(_directory(tmp_path, "[]"))
    iid = other.start("parallel_gateway", actor="bob")
    a = _task(engine, iid, "Task_a")
    with pytest.raises(NotAllowed):
        engine.complete(a.id, "alice", {"a_value": "x"})  # the engine caches a directory without alice in staff
    other.load_directory(ORG)  # alice is staff again
    engine.complete(a.id, "alice", {"a_value": "x"})
    assert _task(engine, iid, "Task_a").state == "completed"


def test_the_clock_moved_by_another_process__is_the_completions_time(engine: Engine, other: Engine) -> None:
    iid = _started(engine)
    a = _task(engine, iid, "Task_a")
    engine.tasks("alice")
    moved = other.advance_clock(timedelta(days=3))
    engine.complete(a.id, "alice", {"a_value": "x"})
    done = next(e for e in engine.history(iid) if e.type == "task_completed")
    assert done.at == moved
    assert _task(engine, iid, "Task_a").completed_at == moved


def test_an_unknown_task_and_an_unknown_user__answer_as_before(engine: Engine, other: Engine) -> None:
    iid = _started(engine)
    a = _task(engine, iid, "Task_a")
    engine.tasks("alice")
    moved = other.advance_clock(timedelta(hours=1))
    with pytest.raises(NotFound, match="no task 999999"):
        engine.complete(999999, "alice", {"a_value": "x"})
    assert engine.clock.now() == moved  # the settings were read on that path too
    with pytest.raises(NotAllowed, match="unknown user 'mallory'"):
        engine.complete(a.id, "mallory", {"a_value": "x"})
    with pytest.raises(NotAllowed, match="unknown user 'mallory'"):
        engine.complete(999999, "mallory", {"a_value": "x"})


def test_a_completion_of_a_cached_engine__is_one_statement_before_its_writes(engine: Engine) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from statements import StatementCounter

    iid = _started(engine)
    a = _task(engine, iid, "Task_a")
    engine.tasks("alice")
    counter = StatementCounter(engine)
    with counter.counting() as statements:
        engine.complete(a.id, "alice", {"a_value": "x"})
    counter.close()
    reads = [s for s in statements if s.startswith("SELECT")]
    # PostgreSQL locks the instance first, in a statement of its own (one lock order everywhere).
    assert len(reads) == (1 if engine.dialect == "sqlite" else 2), statements
