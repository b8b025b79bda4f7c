"""What a task list shows of one task (`TaskView`), and the checks of a list's scope: a module that
imports nothing heavy, shared by the Engine (engine/tasklist.py, SQLAlchemy) and the quick reader
of `tigao tasks` on SQLite (engine/quickread.py, the standard library's sqlite3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .errors import InputError

SCOPES = ("available", "mine", "all")


@dataclass
class TaskView:
    id: int
    instance_id: int
    element_id: str
    name: str | None
    role: str | None
    assignee: str | None
    candidate_users: list[str]
    candidate_groups: list[str]
    state: str
    priority: int
    form_key: str | None
    created_at: datetime
    due_at: datetime | None
    follow_up_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None
    overdue: bool
    process_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat()
        return d

# The columns of human_tasks a TaskView shows (the list's order and filters use others too).
VIEW_COLUMNS = ("id", "instance_id", "element_id", "name", "role", "assignee", "state", "priority", "form_key",
                "created_at", "due_at", "follow_up_at", "completed_at", "completed_by")


def check_scope(scope: str, user: str | None) -> None:
    """The scope is one of SCOPES, and one other than "all" names its user."""
    if scope not in SCOPES:
        raise InputError(f"unknown task scope '{scope}'; use available, mine or all")
    if scope != "all" and not user:
        raise InputError("say who you are with --as USER (or use --all)")
