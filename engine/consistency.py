"""Projections against the history: the human task rows that task lists read must say what the
task_* events say.

Task lists, the worker and the reports read the projection tables, never the history, so a row
edited by hand (another `completed_by`, an extra candidate) would change what people see while the
chain still holds. `check_tasks` derives each task's state, assignee, completed_by and candidates
from the events and names the event a row contradicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .chain import EventRecord, Failure


@dataclass
class _Derived:
    created_seq: int
    state: str = "open"
    assignee: str | None = None
    completed_by: str | None = None
    candidates: set[tuple[str, str]] = field(default_factory=set)
    seq: dict[str, int] = field(default_factory=dict)  # field -> the event that last set it


def derive_tasks(events: list[EventRecord]) -> dict[int, _Derived]:
    """Each human task's projection as the history defines it."""
    tasks: dict[int, _Derived] = {}
    for e in events:
        if e.task_id is None or not e.type.startswith("task_"):
            continue
        p = e.payload or {}
        if e.type == "task_created":
            t = _Derived(e.seq, assignee=p.get("assignee"),
                         candidates={("user", u) for u in p.get("candidate_users") or []}
                         | {("group", g) for g in p.get("candidate_groups") or []})
            t.seq = dict.fromkeys(("state", "assignee", "completed_by", "candidates"), e.seq)
            tasks[e.task_id] = t
            continue
        t = tasks.get(e.task_id)
        if t is None:
            continue  # reported by check_tasks: an event for a task that was never created
        if e.type == "task_claimed":
            t.assignee, t.seq["assignee"] = p.get("assignee"), e.seq
        elif e.type == "task_unclaimed":
            t.assignee, t.seq["assignee"] = None, e.seq
        elif e.type == "task_delegated":
            t.assignee, t.seq["assignee"] = p.get("to"), e.seq
        elif e.type == "task_escalated":
            if p.get("to_user"):
                t.candidates.add(("user", p["to_user"]))
            if p.get("to_group"):
                t.candidates.add(("group", p["to_group"]))
            t.seq["candidates"] = e.seq
        elif e.type == "task_completed":
            t.state, t.completed_by = "completed", e.actor
            t.seq["state"] = t.seq["completed_by"] = e.seq
            if t.assignee is None:  # completing an unclaimed task makes its completer the assignee
                t.assignee, t.seq["assignee"] = e.actor, e.seq
        elif e.type == "task_cancelled":
            t.state, t.seq["state"] = "cancelled", e.seq
    return tasks


def check_tasks(instance_id: int, events: list[EventRecord], rows: list[Any],
                candidates: dict[int, set[tuple[str, str]]]) -> Failure | None:
    """The first human task row of the instance that disagrees with its history, or None.

    Args:
        instance_id: the instance.
        events: its (verified) events in order.
        rows: its human task rows (objects with id, state, assignee, completed_by).
        candidates: task id -> {(kind, value)} from the candidate table.
    """
    derived = derive_tasks(events)
    first_for: dict[int, int] = {}
    for e in events:
        if e.task_id is not None and e.type.startswith("task_"):
            first_for.setdefault(e.task_id, e.seq)
    for tid, seq in first_for.items():
        if tid not in derived:
            return Failure(instance_id, seq, "projection mismatch", f"task {tid} has events but no task_created event")
    by_id = {r.id: r for r in rows}
    for tid, d in sorted(derived.items()):
        row = by_id.get(tid)
        if row is None:
            return Failure(instance_id, d.created_seq, "projection mismatch",
                           f"task {tid} was created at seq {d.created_seq}, but its row is gone")
        for name, want in (("state", d.state), ("assignee", d.assignee), ("completed_by", d.completed_by)):
            have = getattr(row, name)
            if have != want:
                return Failure(instance_id, d.seq[name], "projection mismatch",
                               f"task {tid}'s {name} is {have!r}, but the history says {want!r}")
        have_c = candidates.get(tid, set())
        if have_c != d.candidates:
            extra = sorted(f"{k} {v}" for k, v in have_c - d.candidates)
            lost = sorted(f"{k} {v}" for k, v in d.candidates - have_c)
            return Failure(instance_id, d.seq["candidates"], "projection mismatch",
                           f"task {tid}'s candidates differ from the history"
                           + (f"; not in the history: {', '.join(extra)}" if extra else "")
                           + (f"; missing: {', '.join(lost)}" if lost else ""))
    for tid in sorted(set(by_id) - set(derived)):
        return Failure(instance_id, None, "projection mismatch", f"task {tid} has a row but no history")
    return None
