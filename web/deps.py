"""Engines for request handlers: a small pool, one Engine per request at a time.

An Engine is not thread-safe (it caches workflows and the directory between calls), and FastAPI
runs plain `def` handlers in a thread pool. Each request borrows one Engine for its whole life and
gives it back; a request never shares its Engine with another. The pool grows up to `size` and
then makes requests wait, which also bounds the database connections one server opens.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from engine import Engine
from engine.identity import Identity

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

    def borrow(self) -> Engine:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) < self.size:
                e = Engine(self.url)
                self._made.append(e)
                return e
        return self._idle.get(timeout=BORROW_TIMEOUT)

    def give_back(self, engine: Engine) -> None:
        self._idle.put(engine)

    def close(self) -> None:
        with self._lock:
            for e in self._made:
                e.close()


def _engine(request: Request) -> Iterator[Engine]:
    pool: EnginePool = request.app.state.pool
    eng = pool.borrow()
    try:
        yield eng
    finally:
        pool.give_back(eng)


EngineDep = Annotated[Engine, Depends(_engine)]


def _identity(engine: EngineDep) -> Identity:
    return Identity(engine)


IdentityDep = Annotated[Identity, Depends(_identity)]
