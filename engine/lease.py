"""The SQLite worker lease: one worker at a time, kept alive by a heartbeat, taken over from the dead.

SQLite has one writer at a time, so two workers on one file would only queue behind each other;
the lease keeps a second one out (correctness never depends on it: every firing re-checks its row
inside its own transaction). The lease is the row ``settings.worker_lease``; its value is JSON:
the holder's name, host and PID, and the wall-clock time of its last heartbeat. The holder
renews it every HEARTBEAT seconds. Another worker may take it over when

* the holder's process is gone (same host, its PID no longer exists): at once, so a SIGKILLed
  worker's replacement starts within a heartbeat instead of waiting out a long lease; or
* its heartbeat is older than STALE (a hung holder, or a holder on another host).

Wall-clock time on purpose: this is about processes, not about the engine's (maybe simulated) clock.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from storage.models import Setting

KEY = "worker_lease"
HEARTBEAT = timedelta(seconds=1)
STALE = timedelta(seconds=10)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def parse(value: str) -> dict[str, Any]:
    """The holder recorded in a lease value; the old `name|until` form is read as well."""
    try:
        holder = json.loads(value)
        if isinstance(holder, dict) and isinstance(holder.get("name"), str):
            return holder
    except ValueError:
        pass
    name, _, until = value.partition("|")
    try:
        beat = (datetime.fromisoformat(until) - timedelta(seconds=30) + STALE).isoformat()
    except ValueError:
        beat = datetime.min.replace(tzinfo=timezone.utc).isoformat()
    return {"name": name, "host": None, "pid": None, "beat": beat}


def holder_alive(holder: dict[str, Any], wall: datetime, host: str | None = None) -> bool:
    """Whether the recorded holder still counts as running at wall-clock time `wall`."""
    try:
        beat = datetime.fromisoformat(str(holder.get("beat")))
    except ValueError:
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=timezone.utc)
    if wall - beat > STALE:
        return False
    pid = holder.get("pid")
    if holder.get("host") == (host or socket.gethostname()) and isinstance(pid, int):
        return pid_alive(pid)
    return True


class Lease:
    """One worker's side of the lease: take it, renew it (the heartbeat), give it back."""

    def __init__(self, name: str):
        self.name = name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._last_beat = float("-inf")

    def beat_due(self) -> bool:
        return time.monotonic() - self._last_beat >= HEARTBEAT.total_seconds()

    def take(self, s: Session) -> bool:
        """Take or renew the lease inside transaction `s`; False while another live worker holds it."""
        wall = datetime.now(timezone.utc)
        row = s.get(Setting, KEY)
        if row is not None:
            holder = parse(row.value)
            if holder["name"] != self.name and holder_alive(holder, wall, self.host):
                return False
        value = json.dumps({"name": self.name, "host": self.host, "pid": self.pid, "beat": wall.isoformat()})
        s.merge(Setting(key=KEY, value=value))
        self._last_beat = time.monotonic()
        return True

    def give_back(self, s: Session) -> None:
        row = s.get(Setting, KEY)
        if row is not None and parse(row.value)["name"] == self.name:
            s.delete(row)
        self._last_beat = float("-inf")
