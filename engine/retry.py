"""Retrying a transaction that lost a race for locks: deadlocks, serialization failures, a busy SQLite.

Every command is one transaction, and a transaction the database aborted for contention changed
nothing, so running the whole command again is safe. This is what Camunda's job executor does
with an optimistic-locking failure and what PostgreSQL's documentation asks of applications that
meet SQLSTATE 40001/40P01: retry the transaction, with a randomised, growing pause so that the
contenders do not collide again in step.

What is retried is decided by the database's own error code, never by guessing: PostgreSQL
``40P01`` (deadlock detected), ``40001`` (serialization failure), ``55P03`` (lock not available).
SQLite has one writer at a time and every transaction waits for it (the busy timeout) before it
begins, so a command that still finds it ``database is locked`` has waited already: that is
`Busy`, a storage error the user sees (exit 9), which only the worker retries. The exception
is a command that ran optimistically (`Overtaken`): it began deferred, met another writer at its
first write, and runs again at once, this time waiting for the lock from the start.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .errors import Conflict, StorageError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("tigao.retry")
RETRY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
SQLITE_BUSY_TEXT = ("database is locked", "database table is locked")
COMMAND_ATTEMPTS = 5  # a user's command: about 1.5 s of pauses in all before it reports Contention
BASE_PAUSE = 0.05
MAX_PAUSE = 2.0


class Contention(Conflict):
    """The database aborted the transaction because another one held what it needed; it changed nothing.

    A command reports it only after it was retried a few times; the message says to try again.
    """


class Overtaken(Contention):
    """An optimistic SQLite command (begun deferred) found another writer at its first write; it
    wrote nothing and runs again at once, behind the write lock."""


class Busy(StorageError):
    """SQLite's one writer held the database for longer than the busy timeout; nothing changed."""


def is_contention(exc: BaseException) -> bool:
    """Whether a database error means "lost a race for locks" (safe to retry the whole transaction)."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state in RETRY_SQLSTATES


def is_bad_value(exc: BaseException) -> bool:
    """Whether the database refused a value the user gave (SQLSTATE class 22: out of range, NUL, ...)."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None) or ""
    return state.startswith("22") or "cannot contain nul" in str(orig).lower()


def is_busy(exc: BaseException) -> bool:
    """Whether a database error is SQLite's SQLITE_BUSY/SQLITE_LOCKED after its busy timeout."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(t in text for t in SQLITE_BUSY_TEXT)


def pause(attempt: int, base: float = BASE_PAUSE, cap: float = MAX_PAUSE) -> float:
    """Seconds to wait before attempt `attempt` + 1: exponential with full jitter (AWS's advice)."""
    return random.uniform(base / 2, min(cap, base * (2 ** attempt)))


def retrying(fn: F) -> F:
    """Run a command again (up to COMMAND_ATTEMPTS times) when its transaction lost a race for locks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(COMMAND_ATTEMPTS):
            try:
                return fn(*args, **kwargs)
            except Contention as exc:
                if attempt == COMMAND_ATTEMPTS - 1:
                    # (A SQLite still locked after its busy timeout is `Busy`, exit 9, not retried here.)
                    raise Contention(f"{exc.message}; it was tried {COMMAND_ATTEMPTS} times, try again "
                                     "in a moment") from exc
                wait = 0.0 if isinstance(exc, Overtaken) else pause(attempt)
                log.info("%s lost a race for locks (%s); retrying in %.2f s", fn.__name__, exc.message, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    return cast(F, wrapper)
