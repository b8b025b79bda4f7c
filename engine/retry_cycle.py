"""`camunda:failedJobRetryTimeCycle`: how often a failing service task is tried, and how long apart.

Camunda Modeler writes it in the task's extension elements:

    <camunda:failedJobRetryTimeCycle>R3/PT5M</camunda:failedJobRetryTimeCycle>

`Rn/DURATION` means at most n attempts, each due DURATION after the failure before it (on the
engine's clock); `PT1M,PT5M,PT30M` (a list) means one attempt more than there are intervals, each
interval waited in turn. As in Camunda, the count includes the first attempt: with `R3/PT5M` the
third failure opens an incident.

* **In-process handlers** (engine/handlers.py): a failed attempt rolls back, is recorded
  (`handler_failed` with the retries left and when the next attempt is due) and the worker runs
  the step again when it is due; the last one opens an incident. Without a cycle the first failure
  opens the incident.
* **External tasks**: a worker's `failure` report that gives no `retries` takes them from the cycle,
  and one that gives no (or a zero) `retryTimeout` waits the cycle's interval before the task may
  be fetched again. What a worker states explicitly wins, as in Camunda's REST API.

A cycle that cannot be read is refused at deployment, naming the element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .timeutil import add_iso_duration, is_duration

_REPEAT = re.compile(r"^R(\d+)/(P\S+)$", re.IGNORECASE)
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class RetryCycle:
    """At most `attempts` attempts; `intervals[i]` is waited after failure i + 1."""

    text: str
    attempts: int
    intervals: tuple[str, ...]

    def left_after_failure(self, retries: int | None) -> int:
        """The retries left once an attempt failed, given the retries recorded before it (None: the
        first attempt failed)."""
        before = self.attempts if retries is None else retries
        return max(before - 1, 0)

    def interval_after(self, left: int) -> str:
        """The wait before the next attempt, when `left` retries are left after this failure."""
        index = min(max(self.attempts - left - 1, 0), len(self.intervals) - 1)
        return self.intervals[index]

    def next_due(self, now: datetime, left: int) -> datetime:
        return add_iso_duration(now, self.interval_after(left))


def parse(text: str) -> RetryCycle:
    """A cycle from its text; ValueError saying what is wrong."""
    raw = " ".join((text or "").split())
    if not raw:
        raise ValueError("camunda:failedJobRetryTimeCycle is empty; write e.g. R3/PT5M")
    m = _REPEAT.match(raw)
    if m:
        attempts, interval = int(m.group(1)), m.group(2).upper()
        if not is_duration(interval):
            raise ValueError(f"retry cycle '{raw}': '{interval}' is not an ISO 8601 duration (e.g. PT5M)")
        intervals: tuple[str, ...] = (interval,)
    else:
        parts = [p.strip().upper() for p in raw.split(",")]
        bad = [p for p in parts if not is_duration(p)]
        if bad:
            raise ValueError(f"retry cycle '{raw}' is neither Rn/DURATION (R3/PT5M) nor a list of ISO 8601 "
                             f"durations (PT1M,PT5M): '{bad[0]}' is not a duration")
        attempts, intervals = len(parts) + 1, tuple(parts)
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"retry cycle '{raw}': the number of attempts must be 1 to {MAX_ATTEMPTS}")
    return RetryCycle(raw, attempts, intervals)


def of_spec(task_spec: Any) -> RetryCycle | None:
    """The retry cycle of a service task's spec (its implementation's, engine/services.py)."""
    meta = getattr(task_spec, "tigao_service", None)  # engine/services.py attaches it
    text = getattr(meta, "retry_cycle", None) if meta is not None else None
    return parse(text) if text else None


def of_element(built: Any, element_id: str) -> RetryCycle | None:
    """The retry cycle of element `element_id` in a built definition (any of its processes)."""
    for spec in [built.spec, *built.subprocess_specs.values()]:
        for ts in spec.task_specs.values():
            if getattr(ts, "bpmn_id", None) == element_id:
                return of_spec(ts)
    return None
