"""Engines for request handlers: a small pool, one Engine per request at a time.

An Engine is not thread-safe (it caches workflows and the directory between calls), and FastAPI
runs plain `def` handlers in a thread pool. Each request borrows one Engine for its whole life and
gives it back; a request never shares its Engine with another. The pool grows up to `size` and
then makes requests wait, which also bounds the database connections one server opens.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from engine import Engine, StorageError
from engine.groupcommit import GroupCommit
from engine.identity import Identity

T = TypeVar("T")

DEFAULT_POOL = 8
BORROW_TIMEOUT = 30.0


class EnginePool:
    """Up to `size` Engines on one database URL, lent to one borrower at a time."""

    def __init__(self, url: str | None, size: int = DEFAULT_POOL):
        self.url = url
        self.size = size
        self._idle: queue.LifoQueue[Engine] = queue.LifoQueue()
        self._made: list[Engine] = []
        self._lock = threading.Lock()

    def idle(self) -> Engine | None:
        """An idle Engine at once, or None (then `borrow`, which may make one or wait)."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return None

    def borrow(self) -> Engine:
        e = self.idle()
        if e is not None:
            return e
        with self._lock:
            if len(self._made) < self.size:
                e = Engine(self.url)
                self._made.append(e)
                return e
        try:
            return self._idle.get(timeout=BORROW_TIMEOUT)
        except queue.Empty:
            raise StorageError(f"the server is busy: all {self.size} database sessions stayed in use for "
                               f"{BORROW_TIMEOUT:.0f} s; try again") from None

    def give_back(self, engine: Engine) -> None:
        self._idle.put(engine)

    def close(self) -> None:
        with self._lock:
            for e in self._made:
                e.close()


# The dependencies below are `async def` because they do not block: FastAPI runs a plain `def`
# dependency in its thread pool, and each such hop cost more than the dependency itself.
async def _engine(request: Request) -> AsyncIterator[Engine]:
    pool: EnginePool = request.app.state.pool
    eng = pool.idle()
    if eng is None:  # making an Engine, or waiting for one, happens off the event loop
        eng = await run_in_threadpool(pool.borrow)
    try:
        yield eng
    finally:
        pool.give_back(eng)


EngineDep = Annotated[Engine, Depends(_engine)]


async def _identity(engine: EngineDep) -> Identity:
    return Identity(engine)


IdentityDep = Annotated[Identity, Depends(_identity)]


class Commands:
    """How a handler runs a command that changes state: `commands.run(lambda e: e.complete(...))`.

    With group commit on (the default; engine/groupcommit.py), the command joins the server's
    next shared transaction and `run` returns once that transaction is on disk; off, it runs on
    the request's own Engine in a transaction of its own. Either way the handler reads what it
    answers with (the task, the instance) afterwards, on its own Engine, once the data is stored.
    """

    def __init__(self, engine: Engine, group: GroupCommit | None):
        self.engine = engine
        self.group = group

    def run(self, command: Callable[[Engine], T]) -> T:
        if self.group is None:
            return command(self.engine)
        return self.group.run(command)


async def _commands(request: Request, engine: EngineDep) -> Commands:
    return Commands(engine, getattr(request.app.state, "group", None))


CommandsDep = Annotated[Commands, Depends(_commands)]


def group_commit_enabled(setting: bool | None = None) -> bool:
    """Whether the server shares commits: `setting` when given, else TIGAO_GROUP_COMMIT (default on)."""
    if setting is not None:
        return setting
    return os.environ.get("TIGAO_GROUP_COMMIT", "1").strip().lower() not in ("0", "false", "no", "off")
