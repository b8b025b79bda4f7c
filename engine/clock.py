"""The engine's only source of "now".

SpiffWorkflow's own timer definitions read the wall clock; the engine replaces them with
subclasses that ask a Clock (see `timers.py`), so a simulated year, a deadline test and a replay
all run on the time they are given.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .errors import InputError


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise InputError(f"time '{dt.isoformat()}' has no time zone; add one, e.g. +08:00 or Z")
    return dt.astimezone(timezone.utc)


class Clock:
    """The wall clock."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SettableClock(Clock):
    """A clock that only moves when told to, and never backwards.

    Used for simulated databases, tests and replay.
    """

    simulated = True

    def __init__(self, start: datetime):
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        when = utc(when)
        if when < self._now:
            from .timeutil import fmt  # times for people: the display zone, named

            raise InputError(f"the clock cannot go back: it is {fmt(self._now, seconds=True, zone=True)}, "
                             f"asked for {fmt(when, seconds=True, zone=True)}")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise InputError("the clock cannot go back; give a positive duration")
        self._now = self._now + delta

    def force(self, when: datetime) -> None:
        """Set the time without the monotonic check (replay moves through recorded times)."""
        self._now = utc(when)
