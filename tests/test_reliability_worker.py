"""The deadline worker under contention: it keeps working, and users' commands never fail for it.

Real SQLite files and a real PostgreSQL; the worker, the users and a clock run in threads, each
with its own engine (its own connections), against the same tasks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import BPMN, ORG, set_simulated
from engine import Engine, Worker
from engine.errors import Conflict
from helpers import task_by_element
from storage.models import Event, HumanTask, Setting

ROOT = Path(__file__).resolve().parent.parent


def _setup(url: str, n: int) -> tuple[Engine, list[int]]:
    if "://" not in url:
        Engine(url).init()
    set_simulated(url)
    eng = Engine(url)
    eng.load_directory(ORG)
    eng.deploy([BPMN / "timers.bpmn"])
    ids = [eng.start("timers", actor="alice") for _ in range(n)]
    return eng, [task_by_element(eng, iid, "Task_wait").id for iid in ids]


@pytest.mark.slow
def test_worker_against_users__same_tasks__no_command_fails(db_url: str) -> None:
    """The worker marks tasks overdue and escalates them while their users claim and complete them.

    Every task is due (P3D) when the race starts and the clock moves on during it, so due dates
    and escalations fire on the very rows the users lock. No user command and no worker pass may
    fail: a deadlock or a busy database is waited for or retried, never reported.
    """
    eng, tasks = _setup(db_url, 40)
    eng.advance_clock(timedelta(days=3, minutes=1))
    errors: list[tuple[str, str]] = []
    done = {"user": 0, "fired": 0}
    stop = threading.Event()
    racing = threading.Event()  # set at the worker's first firing: the users start on its heels
    start = threading.Barrier(4)

    def worker() -> None:
        w = Worker(Engine(db_url), name="contender")
        assert w.acquire_lease()  # as `tigao worker` does: held for the whole run, not per pass
        start.wait(timeout=60)
        try:
            while not stop.is_set():
                fired = w.run_once(limit=1)
                done["fired"] += len(fired)
                if fired:
                    racing.set()
                else:
                    time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(("worker", f"{type(exc).__name__}: {exc}"))
        finally:
            w.release_lease()
            w.engine.close()

    def clock() -> None:
        e = Engine(db_url)
        start.wait(timeout=60)
        try:
            for _ in range(6):  # up to 4d13h: every escalation falls due, the P5D boundary does not
                time.sleep(0.05)
                e.advance_clock(timedelta(hours=5))
        except Exception as exc:  # noqa: BLE001
            errors.append(("clock", f"{type(exc).__name__}: {exc}"))
        finally:
            e.close()

    def user(name: str, mine: list[int]) -> None:
        e = Engine(db_url)
        start.wait(timeout=60)
        racing.wait(timeout=60)
        try:
            for tid in mine:
                for what, call in (("claim", lambda: e.claim(tid, name)),
                                   ("complete", lambda: e.complete(tid, name, {"ok": True}))):
                    try:
                        call()
                        done["user"] += 1
                    except Exception as exc:  # noqa: BLE001
                        errors.append((f"{name} {what} {tid}", f"{type(exc).__name__}: {exc}"))
        finally:
            e.close()

    threads = [threading.Thread(target=worker), threading.Thread(target=clock),
               threading.Thread(target=user, args=("alice", tasks[0::2])),
               threading.Thread(target=user, args=("bob", tasks[1::2]))]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join(timeout=600)
    stop.set()
    threads[0].join(timeout=120)
    assert errors == []
    assert done["user"] == 2 * len(tasks)
    with eng._tx() as s:
        states = set(s.scalars(select(HumanTask.state).where(HumanTask.id.in_(tasks))))
        kinds = set(s.scalars(select(Event.type)))
    assert states == {"completed"}
    assert "task_overdue" in kinds  # the worker did race the users on these tasks
    eng.close()


# ----------------------------------------------------------------------------- the SQLite lease
_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from engine import Engine, Worker
w = Worker(Engine({url!r}), name="doomed")
assert w.acquire_lease()
print("held", flush=True)
w.idle(3600)
"""


def test_sqlite_lease__holder_sigkilled__taken_over_at_once(tmp_path: Path) -> None:
    url = str(tmp_path / "w.db")
    Engine(url).init()
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER.format(root=str(ROOT), url=url))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        other = Worker(Engine(url), name="replacement")
        assert not other.acquire_lease()  # alive and beating: refused
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert other.acquire_lease()  # its PID is gone: no waiting for the lease to run out
        other.release_lease()
    finally:
        proc.kill()
        proc.wait()


def _write_lease(url: str, value: str) -> None:
    eng = Engine(url)
    with eng._tx() as s:
        s.merge(Setting(key="worker_lease", value=value))
    eng.close()


def test_sqlite_lease__stale_heartbeat__taken_over_fresh_one_refused(tmp_path: Path) -> None:
    import json
    from datetime import datetime, timezone

    url = str(tmp_path / "w.db")
    Engine(url).init()
    wall = datetime.now(timezone.utc)
    far = {"name": "elsewhere", "host": "another-host", "pid": 1}
    _write_lease(url, json.dumps({**far, "beat": (wall - timedelta(seconds=2)).isoformat()}))
    w = Worker(Engine(url), name="here")
    assert not w.acquire_lease()  # another host's worker beat 2 s ago: it is alive
    _write_lease(url, json.dumps({**far, "beat": (wall - timedelta(seconds=11)).isoformat()}))
    assert w.acquire_lease()  # no heartbeat for 11 s: dead or hung
    with w.engine._tx() as s:
        held = json.loads(s.get(Setting, "worker_lease").value)
    assert (held["name"], held["pid"]) == ("here", os.getpid())
    w.release_lease()


def test_sqlite__a_command_waits_for_a_writer_instead_of_failing(tmp_path: Path) -> None:
    """A transaction holding the write lock for a while delays a user's command; it does not fail it."""
    import sqlite3

    url = str(tmp_path / "w.db")
    eng, tasks = _setup(url, 1)
    holder = sqlite3.connect(url, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(1.5, holder.commit).start()
    eng.claim(tasks[0], "alice")  # waits about 1.5 s for the lock
    holder.close()
    assert eng.task(tasks[0]).assignee == "alice"
    eng.close()


def test_worker__contention__is_retried_never_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that meets a busy database waits and tries again; it does not end the worker."""
    import sqlite3

    from storage import db as dbmod

    url = str(tmp_path / "w.db")
    eng, _ = _setup(url, 3)
    eng.advance_clock(timedelta(days=3, minutes=1))
    eng.close()
    monkeypatch.setattr(dbmod, "SQLITE_BUSY_SECONDS", 0.05)  # meet "database is locked" at once
    monkeypatch.setattr(dbmod, "SQLITE_BEGIN_ATTEMPTS", 1)
    w = Worker(Engine(url), name="patient")
    assert w.acquire_lease()
    holder = sqlite3.connect(url, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(1.0, holder.commit).start()
    try:
        fired = w.run_once()
    finally:
        holder.close()
    assert len(fired) == 3
    assert w.contended > 0
    w.release_lease()
    w.engine.close()
