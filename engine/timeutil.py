"""ISO 8601 dates, durations and repeating intervals, and the display time zone.

Stored times are UTC. Naive inputs and date-only values are read in the display time zone
(`TIGAO_TZ`, default Asia/Shanghai), which is also what every table shows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InputError

DEFAULT_TZ = "Asia/Shanghai"
_DURATION = re.compile(r"^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                       r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$")


def display_tz(name: str | None = None) -> ZoneInfo:
    """The zone every time shown to people is in: `name`, else TIGAO_TZ, else Asia/Shanghai."""
    return _zone(name or os.environ.get("TIGAO_TZ") or DEFAULT_TZ)


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:  # cached by the resolved name, so a changed TIGAO_TZ is seen
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # Bad input (exit 3), not an internal error: the user named a zone that does not exist.
        raise InputError(f"unknown time zone '{name}' (TIGAO_TZ); use an IANA name like Asia/Shanghai") from exc


def zone_name() -> str:
    """The display time zone's IANA name, shown next to every time a person reads."""
    return display_tz().key


def _timer_definition() -> Any:
    # SpiffWorkflow's duration arithmetic, imported on first use: showing a time needs none of it.
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    return TimerEventDefinition


def is_duration(text: str) -> bool:
    return bool(_DURATION.match(text.strip().upper()))


def parse_duration_parts(text: str) -> dict[str, float]:
    text = text.strip().upper()
    if not is_duration(text):
        raise ValueError(f"'{text}' is not an ISO 8601 duration (e.g. P3D, PT4H, P1M)")
    return _timer_definition().parse_iso_duration(text)


def add_iso_duration(start: datetime, text: str) -> datetime:
    """start + duration, counting months and years on the local calendar: the start's own offset,
    or the display time zone for a UTC start (P3M from 1 April 00:00 +08:00 is 1 July 00:00 +08:00)."""
    return _add_parts(start, parse_duration_parts(text))


def _add_parts(start: datetime, parts: dict[str, float]) -> datetime:
    local = start.astimezone(display_tz()) if start.utcoffset() == timedelta(0) else start
    result = local + _timer_definition().get_timedelta_from_start(dict(parts), local)
    if isinstance(local.tzinfo, ZoneInfo):
        # Same wall-clock time across a daylight-saving change.
        result = (local.replace(tzinfo=None) + (result - local)).replace(tzinfo=local.tzinfo)
    return result.astimezone(start.tzinfo)


def parse_datetime(text: str, end_of_day: bool = False, keep_offset: bool = False) -> datetime:
    """An ISO date-time (with `Z` or an offset; naive means display time zone) or a date.

    A date alone means the start of that day, or its last second with `end_of_day`.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty date")
    try:
        if len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
            d = date.fromisoformat(raw)
            t = time(23, 59, 59) if end_of_day else time(0, 0)
            return datetime.combine(d, t, display_tz()).astimezone(timezone.utc)
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'{raw}' is not an ISO 8601 date or date-time (e.g. 2012-04-30T18:00:00+08:00)") \
            from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=display_tz())
    return dt if keep_offset else dt.astimezone(timezone.utc)


def due_from(text: str, created: datetime) -> datetime:
    """A due/follow-up date: a duration from `created`, a date (end of day) or a date-time."""
    raw = text.strip()
    if raw.upper().startswith("P"):
        return add_iso_duration(created, raw)
    return parse_datetime(raw, end_of_day=True)


@dataclass(frozen=True)
class Cycle:
    repetitions: int  # -1: unbounded
    start: datetime
    interval_text: str

    def occurrence(self, n: int) -> datetime:
        """The n-th firing time (0-based), counting months on the calendar."""
        parts = parse_duration_parts(self.interval_text)
        if n and not parts.get("years") and not parts.get("months"):
            return _add_parts(self.start, {key: v * n for key, v in parts.items()})  # no stepping one by one
        when = self.start
        for _ in range(n):
            when = add_iso_duration(when, self.interval_text)
        return when


def skip_past(when: datetime, interval: str, now: datetime) -> tuple[int, datetime]:
    """From occurrence `when` of a cycle, the number of occurrences due by `now` (`when` included)
    and the first occurrence after `now`; without stepping a year of `PT1S` one second at a time."""
    parts = parse_duration_parts(interval)
    skipped = 0
    if not parts.get("years") and not parts.get("months"):
        one = _add_parts(when, parts) - when
        if one > timedelta(0) and now - when > one * 4:
            k = int((now - when) / one) - 2  # land just before now, then step
            when = _add_parts(when, {key: v * k for key, v in parts.items()})
            skipped = k
    while when <= now:
        nxt = _add_parts(when, parts)
        if nxt <= when:
            raise ValueError(f"the interval '{interval}' does not advance")
        when, skipped = nxt, skipped + 1
    return skipped, when


def parse_cycle(text: str, now: datetime) -> Cycle:
    """`R4/2012-04-01T00:00:00+08:00/P3M`, `R/P1D` (from now), `R3/P1W/2012-12-31T00:00:00Z`."""
    raw = text.strip().upper()
    parts = raw.split("/")
    if not parts[0].startswith("R") or len(parts) not in (2, 3):
        raise ValueError(f"'{text}' is not an ISO 8601 repeating interval (e.g. R4/2012-04-01T00:00:00+08:00/P3M)")
    reps_text = parts[0][1:]
    if reps_text and not reps_text.isdigit():
        raise ValueError(f"'{text}': the repetition count after R must be a whole number")
    reps = int(reps_text) if reps_text else -1
    if len(parts) == 2:
        interval = parts[1]
        parse_duration_parts(interval)
        return Cycle(reps, add_iso_duration(now, interval), interval)
    first, second = parts[1], parts[2]
    if is_duration(second) and not is_duration(first):
        return Cycle(reps, parse_datetime(first, keep_offset=True), second)
    if is_duration(first) and not is_duration(second):
        end = parse_datetime(second, keep_offset=True)
        if reps < 0:
            raise ValueError(f"'{text}': an interval that ends at a date needs a repetition count")
        parts_ = parse_duration_parts(first)
        span = _timer_definition().get_timedelta_from_end(dict(parts_), end)
        return Cycle(reps, end - span * max(reps - 1, 0), first)
    raise ValueError(f"'{text}' is not a repeating interval: give R<n>/<start>/<duration>")


def check_timer_literal(kind: str, text: str) -> None:
    """Raise ValueError if a literal timer value of this kind ("date", "duration", "cycle") is bad."""
    now = datetime(2000, 1, 1, tzinfo=timezone.utc)
    if kind == "date":
        parse_datetime(text)
    elif kind == "duration":
        parse_duration_parts(text)
    else:
        parse_cycle(text, now)


def fmt(dt: datetime | None, seconds: bool = False, zone: bool = False) -> str:
    """A time for people: in the display time zone, to the minute; `zone` names the zone after it
    (in running text; tables name it once in the column heading)."""
    if dt is None:
        return ""
    local = dt.astimezone(display_tz())
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {zone_name()}" if zone else text

