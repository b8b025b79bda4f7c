"""Overdue work and its escalation: who answers for a task and their leader, the notifications,
and the escalation one level up after the grace period (see engine/deadlines.py for the policy)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from storage.models import Definition, HumanTask, Instance, Notification, TaskCandidate, Timer

from . import history
from .timeutil import add_iso_duration, fmt

if TYPE_CHECKING:
    from .core import Engine

DEFAULT_GRACE = "P1D"
DEFAULT_OFFICE = "efficiency_office"


def policy_of(engine: Engine, s: Session, inst: Instance, row: HumanTask) -> dict[str, str]:
    d = s.get(Definition, inst.definition_id)
    assert d is not None
    built = engine._built(d)
    props: dict[str, str] = {}
    info = built.analysis.processes.get(inst.process_key)
    if info is not None:
        props.update(info.properties)
    for (_owner, eid), meta in built.task_meta.items():
        if eid == row.element_id:
            props.update(meta.properties)
            break
    return {
        "enabled": props.get("escalation", "on").strip().lower(),
        "grace": props.get("escalation.grace", DEFAULT_GRACE).strip(),
        "office": props.get("escalation.office", DEFAULT_OFFICE).strip(),
    }


def responsible(engine: Engine, s: Session, row: HumanTask) -> tuple[list[str], str | None]:
    """Who answers for the task, and their leader."""
    directory = engine._dir(s)
    if row.assignee:
        return [row.assignee], directory.superior_of(row.assignee)
    users, groups = engine._candidates(s, row.id)
    people = list(users)
    for g in groups:
        people.extend(directory.group_members(g))
    people = list(dict.fromkeys(people))
    leader = None
    for g in groups:
        if g in directory.departments:
            leader = directory.head_of(g)
            break
    if leader is None and people:
        leader = directory.superior_of(people[0])
    return people, leader


def notify(s: Session, recipients: list[str], at: datetime, kind: str, row: HumanTask, message: str) -> None:
    for r in dict.fromkeys(x for x in recipients if x):
        s.add(Notification(recipient=r, at=at, kind=kind, task_id=row.id, instance_id=row.instance_id,
                           message=message))


def mark_overdue(engine: Engine, s: Session, inst: Instance, row: HumanTask, now: datetime) -> None:
    row.overdue_since = now
    people, leader = responsible(engine, s, row)
    policy = policy_of(engine, s, inst, row)
    msg = f"task {row.id} '{row.name}' was due {fmt(row.due_at, zone=True)} and is overdue"
    notify(s, people[:50], now, "overdue", row, msg)
    if leader:
        notify(s, [leader], now, "overdue_leader",
                row, f"{msg}; responsible: {', '.join(people[:5]) or 'nobody'} (you are their leader)")
    history.append(s, inst, "task_overdue", now, "system",
                   {"spiff_id": row.spiff_id, "due_at": row.due_at.isoformat() if row.due_at else None,
                    "responsible": people[:50], "leader": leader},
                   element_id=row.element_id, task_id=row.id)
    if policy["enabled"] not in ("off", "false", "no", "0"):
        s.add(Timer(instance_id=inst.id, kind="escalate", task_id=row.id, element_id=row.element_id,
                    due_at=add_iso_duration(now, policy["grace"]), state="pending", payload={"level": 1}))


def escalate(engine: Engine, s: Session, inst: Instance, row: HumanTask, level: int, now: datetime) -> None:
    directory = engine._dir(s)
    people, leader = responsible(engine, s, row)
    policy = policy_of(engine, s, inst, row)
    if level == 1 and leader:
        target_user, target_group = leader, None
    else:
        level = max(level, 2)
        target_user, target_group = None, policy["office"]
    if target_user and not s.get(TaskCandidate, (row.id, "user", target_user)):
        s.add(TaskCandidate(task_id=row.id, kind="user", value=target_user))
    if target_group and not s.get(TaskCandidate, (row.id, "group", target_group)):
        s.add(TaskCandidate(task_id=row.id, kind="group", value=target_group))
    row.escalation_level = level
    to = target_user or f"role {target_group}"
    msg = (f"task {row.id} '{row.name}' (due {fmt(row.due_at, zone=True)}) escalated to {to}; responsible: "
           f"{', '.join(people[:5]) or 'nobody'}; their leader: {leader or 'none'}")
    recipients = [target_user] if target_user else directory.role_members(target_group or "")
    notify(s, recipients + people[:50] + ([leader] if leader else []), now, "escalated", row, msg)
    history.append(s, inst, "task_escalated", now, "system",
                   {"spiff_id": row.spiff_id, "level": level, "to_user": target_user, "to_group": target_group,
                    "responsible": people[:50], "leader": leader},
                   element_id=row.element_id, task_id=row.id)
    if level < 2:
        s.add(Timer(instance_id=inst.id, kind="escalate", task_id=row.id, element_id=row.element_id,
                    due_at=add_iso_duration(now, policy["grace"]), state="pending", payload={"level": level + 1}))
