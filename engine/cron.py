"""Quartz cron expressions in `timeCycle`, as Camunda 7 accepts them (`0 0 9 ? * MON-FRI`).

A Quartz expression has 6 or 7 fields: seconds, minutes, hours, day of month, month, day of week
and an optional year. It is read in the display time zone (`TIGAO_TZ`) and runs forever, one
occurrence after another, like Camunda's cron timers. What croniter can compute is accepted:
`*`, `?`, lists, ranges, steps (`0/5`), month and day names, `L` (last day of the month), `nW`
(nearest weekday), `nL` (last weekday n of the month) and `n#k` (k-th weekday n). The rest (`LW`,
`L-n`, a day of month and a day of week both given) is refused at deployment with the reason.

Quartz numbers the days of the week 1-7 from Sunday; croniter 0-6: numeric days are shifted.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

from croniter import croniter
from croniter import CroniterError

from .timeutil import display_tz

_DOW_NUMBER = re.compile(r"(?<![#/\w])([1-7])(?![\w])")


def is_quartz(text: str | None) -> bool:
    """Whether a timer value is a cron expression (6 or 7 fields, not an ISO 8601 interval)."""
    if not text:
        return False
    fields = text.split()
    return len(fields) in (6, 7) and not text.strip().upper().startswith(("R", "P"))


@lru_cache(maxsize=256)
def to_croniter(text: str) -> str:
    """The croniter expression (seconds first) for a Quartz expression; ValueError saying why not."""
    fields = text.split()
    if len(fields) not in (6, 7):
        raise ValueError(f"'{text}' is not a Quartz cron expression: it needs 6 or 7 fields "
                         "(seconds minutes hours day-of-month month day-of-week [year])")
    sec, minute, hour, dom, month, dow = (f.upper() for f in fields[:6])
    year = fields[6] if len(fields) == 7 else None
    if dom not in ("?", "*") and dow not in ("?", "*"):
        raise ValueError(f"'{text}': give either a day of month or a day of week and '?' for the other "
                         "(Quartz does not support both)")
    if dom in ("LW",) or dom.startswith("L-"):
        raise ValueError(f"'{text}': day of month '{dom}' ('LW', 'L-n') is not supported; use L or nW")
    dow = _shift_days(dow, text)
    out = [sec, minute, hour, dom, month, dow] + ([year] if year else [])
    expr = " ".join(out)
    try:
        croniter(expr, datetime(2000, 1, 1), second_at_beginning=True).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"'{text}' is not a cron expression Tigao can run: {exc}") from exc
    return expr


def _shift_days(dow: str, text: str) -> str:
    if dow in ("?", "*"):
        return dow
    last = re.fullmatch(r"([1-7])L", dow)
    if last:
        return f"L{int(last.group(1)) - 1}"  # Quartz 6L (last Friday) is croniter's L5
    if "L" in dow:
        raise ValueError(f"'{text}': day of week '{dow}' is not supported; use nL, n#k, names or numbers")
    return _DOW_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), dow)


def next_after(text: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after` (an aware datetime), in the display time zone."""
    tz = display_tz()
    local = after.astimezone(tz).replace(tzinfo=None)
    nxt = croniter(to_croniter(text), local, second_at_beginning=True).get_next(datetime)
    return nxt.replace(tzinfo=tz)


_LAST: dict[tuple[str, datetime], tuple[int, datetime]] = {}


def occurrence(text: str, anchor: datetime, n: int) -> datetime:
    """The n-th occurrence (0-based) after `anchor`. A schedule asks for n, n+1, ... in turn, so the
    last answer per schedule is remembered and the next one is one step from it."""
    done, when = _LAST.get((text, anchor), (-1, anchor))
    if done > n:
        done, when = -1, anchor
    for _ in range(n - done):
        when = next_after(text, when)
    if len(_LAST) > 1000:
        _LAST.clear()
    _LAST[(text, anchor)] = (n, when)
    return when
