"""Group commit: commands from concurrent callers share one durable transaction.

A command (complete a task, start an instance, deliver a message, claim a task) is cheap next to
the commit that makes it durable: SQLite's fsync under `synchronous=FULL`, PostgreSQL's WAL flush
and round trip. `GroupCommit.run(command)` hands the command to one committer thread and waits.
The committer takes every command waiting at that moment (up to `max_batch`), runs them one after
the other on its own Engine inside ONE transaction, commits it once, and only then answers each
caller. So:

- **Durable before answered.** No caller gets its answer (result or error) before the commit that
  holds its data has returned; with SQLite's `synchronous=FULL` that is one fsync for the batch.
- **Each command on its own.** Every transaction a command opens (`Engine._tx`) becomes a
  SAVEPOINT of the shared transaction. A command that fails (invalid form data, not the caller's
  task, a script error) is rolled back to its savepoint and answered with its own error; its
  history events are discarded and its workflow object is dropped, never cached. The others go on.
- **In order on one instance.** Commands run one at a time in arrival order, in one session, so a
  command sees what the commands before it in the batch did (the same instance included), exactly
  as if each had committed alone. Their history chain links on in that order.
- **After the commit** the engine does what it does after any commit: it caches the saved
  workflows and broadcasts the signals the batch threw.
- If the shared commit itself fails, nothing of the batch is stored and every command that had
  succeeded gets that error (a copy of it each).

Batches form by themselves: while the committer runs one batch (and waits for its fsync), the
next callers queue up and become the next batch. A lone caller's batch holds only its command.
On PostgreSQL two committers take turns (`committers`): while one waits for the server, the other
runs the next batch; their transactions are ordinary concurrent ones, so row locks order two
commands on one instance, and what happens within one batch is as above.

The library does not use this: the CLI, the worker and scripts commit each command alone. The
server (web/deps.py) sends its task completions, claims, starts and messages through it unless
it is turned off (`tigao serve --no-group-commit`, or TIGAO_GROUP_COMMIT=0).
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from . import history
from .core import Engine

T = TypeVar("T")
MAX_BATCH = 64  # commands in one shared transaction at most
PG_COMMITTERS = 2  # batches running at once on PostgreSQL (SQLite: one)
log = logging.getLogger("tigao.groupcommit")


class _Job(Generic[T]):
    __slots__ = ("command", "result", "error", "done")

    def __init__(self, command: Callable[[Engine], T]):
        self.command = command
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class _Batch:
    """The hook `Engine._tx` calls while a batch runs: each transaction becomes a savepoint."""

    def __init__(self, session: Session):
        self.session = session

    @contextmanager
    def savepoint(self, engine: Engine) -> Iterator[Session]:
        s = self.session
        mark = len(engine._saved_runs)
        nested = s.begin_nested()
        try:
            yield s
            history.flush_pending(s)  # this command's events, before its savepoint is released
            s.flush()
            nested.commit()
        except BaseException:
            history.discard_pending(s)  # (only this command's: each one flushes its own at the end)
            del engine._saved_runs[mark:]  # its workflows were changed in memory: never cache them
            if nested.is_active:
                nested.rollback()
            # The rollback expires the rows it touched; load what the commands before this one
            # saved while the session is open, for the cache update after the commit.
            for run in engine._saved_runs:
                _ = run.inst.version
            raise


class GroupCommit:
    """Committer threads, each with its own Engine; `run` hands one a command and waits for the commit.

    `committers`: how many batches may run at once. SQLite has one writer, so one (the default
    there); on PostgreSQL (default 2) a second committer computes while the first waits for the
    server, and row locks order the commands of two batches that touch the same instance.
    """

    def __init__(self, url: str | None, max_batch: int = MAX_BATCH, committers: int | None = None):
        from storage.db import normalise_url, sqlite_path

        if committers is None:
            committers = 1 if sqlite_path(normalise_url(url)) is not None else PG_COMMITTERS
        self.engines = [Engine(url) for _ in range(max(1, committers))]
        self.engine = self.engines[0]
        self.max_batch = max(1, max_batch)
        self.batches = 0  # shared transactions run (committed or not)
        self.commands = 0  # commands run in them
        self._running = [0] * len(self.engines)  # commands in the batch each committer runs now
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def running(self) -> int:
        """Commands in the batches running now."""
        return sum(self._running)

    def pending(self) -> int:
        """Commands waiting for the next batch (not counting the batches running now)."""
        return self._jobs.qsize()

    def run(self, command: Callable[[Engine], T]) -> T:
        """Run `command(engine)` in the next shared transaction; return its result once committed.

        `command` calls the Engine's public commands (e.g. `lambda e: e.complete(7, "alice", {})`).
        It runs on a committer's thread: it must not read anything of the caller's thread.
        Raises the command's own error, or the shared commit's.
        """
        job: _Job[T] = _Job(command)
        with self._lock:
            if self._closed:
                from .errors import StorageError

                raise StorageError("the server is shutting down; try again")
            if not self._threads:
                for i in range(len(self.engines)):
                    th = threading.Thread(target=self._loop, args=(i,), name=f"tigao-group-commit-{i}", daemon=True)
                    th.start()
                    self._threads.append(th)
            self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def close(self) -> None:
        """Finish the commands already handed over, stop the threads, close the Engines."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            for _ in threads:
                self._jobs.put(None)  # one stop for each committer
        for th in threads:
            th.join()
        for eng in self.engines:
            eng.close()

    # ------------------------------------------------------------------ the committer thread
    def _loop(self, i: int) -> None:
        stop = False
        while not stop:
            first = self._jobs.get()
            if first is None:
                return
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            try:
                self._run_batch(i, jobs)
            except BaseException as exc:  # noqa: BLE001 - a bug here must not leave callers waiting
                log.exception("group commit failed")
                for job in jobs:
                    if not job.done.is_set():
                        job.error = exc
                        job.done.set()

    def _run_batch(self, i: int, jobs: list[_Job[Any]]) -> None:
        eng = self.engines[i]
        self._running[i] = len(jobs)
        try:
            with eng._tx() as session:  # the shared transaction; commits once, then caches and signals
                eng._batch = _Batch(session)
                try:
                    for job in jobs:
                        try:
                            job.result = job.command(eng)
                        except Exception as exc:  # noqa: BLE001 - its own error; its savepoint is undone
                            job.error = exc
                finally:
                    eng._batch = None
        except BaseException as exc:  # noqa: BLE001 - the shared transaction failed: nothing of it is stored
            for job in jobs:  # those that succeeded in it, and those it never reached
                if job.error is None:
                    job.result = None
                    job.error = _copy(exc)
        finally:
            with self._lock:
                self.batches += 1
                self.commands += len(jobs)
            self._running[i] = 0
            for job in jobs:
                job.done.set()


def _copy(exc: BaseException) -> BaseException:
    """The same error for another caller (each caller raises its own object)."""
    try:
        new = copy.copy(exc)
    except Exception:  # noqa: BLE001
        from .errors import StorageError

        new = StorageError(f"the shared commit failed: {exc}")
    new.__cause__ = exc
    return new
