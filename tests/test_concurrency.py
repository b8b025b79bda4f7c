"""Two people completing the same task at once: exactly one succeeds, the other gets Conflict.

Run with threads (one engine each) and with separate processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from typing import Any

import pytest

from engine import Conflict, Engine
from helpers import assert_roundtrip, task_by_element


def _complete_as(url: str, task_id: int, user: str, barrier: Any, results: Any) -> None:
    eng = Engine(url)
    try:
        eng.directory()  # connect and warm up before the race
        barrier.wait(timeout=30)
        eng.complete(task_id, user, {"name": f"by {user}"})
        results.put(("ok", user))
    except Conflict as exc:
        results.put(("conflict", exc.message))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        eng.close()


def _race_setup(engine: Engine) -> tuple[int, int]:
    iid = engine.start("user_task", actor="alice")
    t = task_by_element(engine, iid, "Task_fill")
    return iid, t.id


def _check(engine: Engine, iid: int, outcomes: list[tuple[str, str]]) -> None:
    kinds = sorted(k for k, _ in outcomes)
    assert kinds == ["conflict", "ok"], outcomes
    winner = next(u for k, u in outcomes if k == "ok")
    inst = engine.instance(iid)
    assert inst["status"] == "completed"
    assert inst["data"]["name"] == f"by {winner}"
    completed = [e for e in engine.history(iid) if e.type == "task_completed"]
    assert len(completed) == 1 and completed[0].actor == winner
    assert_roundtrip(engine, iid)


def _race_threads(db_url: str, task_id: int) -> list[tuple[str, str]]:
    """alice and bob complete the task at the same moment, each from a thread with its own engine."""
    results: queue.Queue[tuple[str, str]] = queue.Queue()
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_complete_as, args=(db_url, task_id, u, barrier, results))
               for u in ("alice", "bob")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return [results.get_nowait() for _ in range(2)]


def test_complete__same_task_from_two_threads__exactly_one_wins(engine: Engine, db_url: str) -> None:
    iid, task_id = _race_setup(engine)
    _check(engine, iid, _race_threads(db_url, task_id))


def test_complete__same_task_from_two_processes__exactly_one_wins(engine: Engine, db_url: str) -> None:
    iid, task_id = _race_setup(engine)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_complete_as, args=(db_url, task_id, u, barrier, results))
             for u in ("alice", "bob")]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(2)]
    for p in procs:
        p.join(60)
    _check(engine, iid, outcomes)


@pytest.mark.parametrize("rounds", [5])
def test_complete__many_races__never_two_winners(engine: Engine, db_url: str, rounds: int) -> None:
    for _ in range(rounds):
        iid, task_id = _race_setup(engine)
        _check(engine, iid, _race_threads(db_url, task_id))
