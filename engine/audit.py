"""Reading the history: summaries for people."""

from __future__ import annotations

import json
from typing import Any

from storage.models import Event


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(e: Event) -> str:
    """One line on what an event changed."""
    p = e.payload or {}
    t = e.type
    if t == "instance_started":
        how = p.get("via", "start")
        extra = f" by message {p.get('message')}" if how == "message" else f" by timer" if how == "timer" else ""
        return f"started v{p.get('definition', {}).get('version', '?')}{extra}" + (
            f"; data {_short(p.get('data'))}" if p.get("data") else "")
    if t == "task_created":
        who = p.get("assignee") or ",".join(p.get("candidate_users", []) + [f"@{g}" for g in p.get("candidate_groups", [])])
        return f"task {e.task_id} '{p.get('name')}' for {who or 'nobody'}" + (
            f", due {p['due_at'][:16]}" if p.get("due_at") else "")
    if t == "task_completed":
        return f"task {e.task_id}: {_short(p.get('data', {}))}"
    if t == "task_claimed":
        return f"task {e.task_id} claimed"
    if t == "task_unclaimed":
        return f"task {e.task_id} returned"
    if t == "task_delegated":
        return f"task {e.task_id}: {p.get('from') or '-'} -> {p.get('to')}"
    if t == "task_cancelled":
        return f"task {e.task_id} withdrawn"
    if t == "message_received":
        return f"message {p.get('name')}: {_short(p.get('data', {}))}"
    if t == "timer_fired":
        return f"timer due {str(p.get('due_at', ''))[:16]}"
    if t == "task_overdue":
        return f"task {e.task_id} overdue; responsible {','.join(p.get('responsible', [])[:3])}; leader {p.get('leader')}"
    if t == "task_escalated":
        return (f"task {e.task_id} escalated (level {p.get('level')}) to {p.get('to_user') or '@' + str(p.get('to_group'))};"
                f" leader {p.get('leader')}")
    if t == "instance_cancelled":
        return f"reason: {p.get('reason')}"
    if t == "script_failed":
        return _short(p.get("error", ""), 80)
    if t == "instance_completed":
        return "completed"
    return _short(p)
