"""CPU-time and memory bounds for one script evaluation, held by a per-thread trace function.

`sys.settrace` installs a trace function for the calling thread only, so each evaluation is bounded
on its own thread: a script looping in one request of a threaded server stops within its bound
while the other threads go on. The trace function is called for frames of script code only (other
frames are not traced), and it reads the thread's CPU clock and the process's resident memory once
every `CHECK_EVERY` events, which keeps its cost small.

What it cannot interrupt is one long C call; the operations that can take long or allocate much in
one call (`**`, `*`, `<<`, padding widths, `range`, `str.join`, ...) are refused before they run
by the guarded operations of `engine.guards`, against the size bounds.

Memory is the growth of the process's resident set during the evaluation: in a threaded server
another thread's allocations count too, so the bound is set well above what any script needs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .limits import Limits

SCRIPT_FILENAME = "<process script>"
CHECK_EVERY = 500  # trace events between two looks at the clock and the memory
FIRST_CHECK = 16  # events before the first look (which reads the starting CPU time and memory)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_local = threading.local()


class BoundExceeded(BaseException):
    """A script hit a bound. A BaseException, so that no `except Exception` in a script catches it
    (the policy refuses bare `except:` and `except BaseException`)."""

    def __init__(self, bound: str, detail: str):
        super().__init__(f"{bound} exceeded: {detail}")
        self.bound = bound
        self.detail = detail


def _rss_reader() -> Callable[[], int]:
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        import resource

        # No /proc: the peak resident set only grows, a weaker but still bounding measure.
        return lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def read() -> int:
        return int(os.pread(fd, 64, 0).split()[1]) * _PAGE

    return read


rss = _rss_reader()


class _Budget:
    """One thread's budget, reused from one evaluation to the next (no allocation per evaluation)."""

    __slots__ = ("limits", "count", "deadline", "rss_ceiling", "tripped", "active", "tracer")

    def __init__(self) -> None:
        self.active = False
        self.tracer = _make_tracer(self)

    def reset(self, limits: Limits) -> None:
        self.limits = limits
        # The clocks are first read at the first check, FIRST_CHECK events in: most evaluations (a
        # condition) end before it and never pay for a system call. What the first events use
        # (each operation size-bounded) is not counted.
        self.count = FIRST_CHECK
        self.deadline = -1.0
        self.rss_ceiling = -1
        self.tripped: BoundExceeded | None = None

    def check(self) -> None:
        if self.tripped is not None:
            raise self.tripped
        now = time.thread_time()
        if self.deadline < 0:
            self.deadline = now + self.limits.cpu_seconds
            self.rss_ceiling = rss() + int(self.limits.memory_mb * 1024 * 1024)
            return
        if now > self.deadline:
            self.tripped = BoundExceeded("CPU time bound", f"ran longer than {self.limits.cpu_seconds:g} s of CPU "
                                         "time (TIGAO_SCRIPT_CPU, process property tigao.script.cpu)")
            raise self.tripped
        if rss() > self.rss_ceiling:
            self.tripped = BoundExceeded("memory bound", f"used more than {self.limits.memory_mb:g} MB "
                                         "(TIGAO_SCRIPT_MEMORY, process property tigao.script.memory)")
            raise self.tripped


def _make_tracer(budget: _Budget) -> Callable[[FrameType, str, Any], Any]:
    def local(frame: FrameType, event: str, arg: Any) -> Any:
        budget.count -= 1
        if budget.count <= 0:
            budget.count = 1 if budget.tripped is not None else CHECK_EVERY  # once tripped, stop at every event
            budget.check()
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != SCRIPT_FILENAME:
            return None  # guards, helpers, the engine: not traced
        return local(frame, event, arg)

    return global_


def enter(limits: Limits) -> tuple[_Budget, Any] | None:
    """Start bounding this thread's script frames; None when an outer evaluation already does."""
    budget: _Budget | None = getattr(_local, "budget", None)
    if budget is None:
        budget = _local.budget = _Budget()
    elif budget.active:
        return None
    budget.reset(limits)
    previous = sys.gettrace()
    budget.active = True
    sys.settrace(budget.tracer)
    return budget, previous


def leave(token: tuple[_Budget, Any] | None) -> None:
    """Stop bounding (the token of `enter`); raise the bound if the script swallowed it somewhere."""
    if token is None:
        return
    budget, previous = token
    sys.settrace(previous)
    budget.active = False
    if budget.tripped is not None:
        raise budget.tripped


@contextmanager
def bounded(limits: Limits) -> Iterator[None]:
    """Run the body under `limits`' CPU-time and memory bounds on this thread."""
    token = enter(limits)
    try:
        yield
    finally:
        leave(token)
