"""`tigao tasks` on the embedded SQLite database with the standard library's sqlite3 alone.

A command line pays for every module it imports before it does any work, and importing
SQLAlchemy alone takes longer than the quarter second a task list may take (bench/bench_cli.py).
So on a SQLite file this reader answers the task list with `sqlite3`: it checks the schema
revision, reads the clock and the user's groups, and runs the same SELECT that
`engine.tasklist.task_list_select` builds (the same WHERE shape and ORDER BY, so the same indexes
serve it), in one deferred read transaction (under WAL it never waits for a writer). It departs
from "storage is SQLAlchemy" for this one read-only list on the default database;
tests/test_cli_quick.py holds it to the Engine's answer over every filter combination, and its
plan to the index walk (tests/test_task_list_plans.py does the same for the Core query).

It answers only the ordinary case: a SQLite file at this release's schema revision and a user on
file (or none, for --all). Anything else (PostgreSQL, no such file, an older schema, a database
error, an unknown user) returns None, and the caller asks `engine.reader` and then the Engine,
which give the usual answer or message: one place for every rule and every error text.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from storage.basics import DEFAULT_DB, SCHEMA_REVISION

from .taskview import VIEW_COLUMNS, TaskView, check_scope

BUSY_MS = 5000  # a reader waits this long at most for a database being recovered or checkpointed
MMAP_BYTES = 1 << 30  # storage.db.SQLITE_MMAP_BYTES (not imported: storage.db imports SQLAlchemy)
_COLUMNS = ", ".join(f"human_tasks.{c}" for c in VIEW_COLUMNS)


def sqlite_file(url: str | None) -> str | None:
    """The file of a SQLite database URL or path (as `storage.db.normalise_url` reads it), else None."""
    url = url or os.environ.get("TIGAO_DB") or DEFAULT_DB
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):].split("?", 1)[0]
        return path or None
    if "://" in url or url == ":memory:":
        return None
    return url


def list_tasks(url: str | None, user: str | None = None, scope: str = "available", group: str | None = None,
               instance_id: int | None = None, overdue: bool = False, state: str = "open",
               limit: int = 500) -> list[TaskView] | None:
    """`Engine(url).tasks(user, scope, group, instance_id, overdue, state, limit)`, or None when
    another reader must answer (see the module's docstring). Bad filters raise the Engine's InputError."""
    check_scope(scope, user)
    path = sqlite_file(url)
    if path is None or not Path(path).is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, isolation_level=None,
                              timeout=BUSY_MS / 1000)
    except sqlite3.Error:
        return None
    try:
        con.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        con.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # as storage.db sets it (see there why)
        con.execute("BEGIN")  # deferred: a snapshot for every statement below, and no write lock
        try:
            return _list(con, user, scope, group, instance_id, overdue, state, limit)
        finally:
            con.execute("COMMIT")
    except (sqlite3.Error, OverflowError, ValueError):
        return None  # the Engine names the problem (a database error, an id out of range, bad text)
    finally:
        con.close()


def _list(con: sqlite3.Connection, user: str | None, scope: str, group: str | None, instance_id: int | None,
          overdue: bool, state: str, limit: int) -> list[TaskView] | None:
    row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    if row is None or row[0] != SCHEMA_REVISION:
        return None
    settings = dict(con.execute("SELECT key, value FROM settings WHERE key IN ('clock', 'sim_now')"))
    now = (datetime.fromisoformat(settings["sim_now"]) if settings.get("clock") == "simulated"
           else datetime.now(timezone.utc)).astimezone(timezone.utc)
    groups: list[str] = []
    if user is not None:
        person = con.execute("SELECT department FROM users WHERE id = ?", (user,)).fetchone()
        if person is None:
            return None  # unknown (refused), or allowed before the first directory load
        # `Directory.groups_of`: the user's roles (in role id order), then the department.
        groups = [r for (r,) in con.execute("SELECT role_id FROM user_roles WHERE user_id = ? ORDER BY role_id",
                                            (user,))]
        if person[0]:
            groups.append(person[0])
    sql, params = select_sql(now, user, scope, group, instance_id, overdue, state, limit, groups)
    rows = con.execute(sql, params).fetchall()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    cands: dict[int, tuple[list[str], list[str]]] = {i: ([], []) for i in ids}
    marks = ", ".join("?" * len(ids))
    for task_id, kind, value in con.execute(f"SELECT task_id, kind, value FROM task_candidates "
                                            f"WHERE task_id IN ({marks}) ORDER BY value", ids):
        cands[task_id][0 if kind == "user" else 1].append(value)
    inst_ids = sorted({r[1] for r in rows})
    keys = dict(con.execute(f"SELECT id, process_key FROM instances WHERE id IN ({', '.join('?' * len(inst_ids))})",
                            inst_ids))
    views = []
    for r in rows:
        (tid, iid, element, name, role, assignee, st, priority, form_key, created, due, follow, completed,
         completed_by) = r
        due_at, completed_at = _when(due), _when(completed)
        views.append(TaskView(tid, iid, element, name, role, assignee, cands[tid][0], cands[tid][1], st, priority,
                              form_key, _when(created), due_at, _when(follow), completed_at, completed_by,
                              bool(due_at and (completed_at or now) > due_at), keys.get(iid)))
    return views


def select_sql(now: datetime, user: str | None, scope: str, group: str | None, instance_id: int | None,
               overdue: bool, state: str, limit: int, groups: list[str]) -> tuple[str, list[Any]]:
    """The SELECT of `engine.tasklist.task_list_select` for these filters, as SQLite text."""
    where: list[str] = []
    params: list[Any] = []
    if instance_id is not None:
        where.append("human_tasks.instance_id = ?")
        params.append(instance_id)
    if state != "any":
        where.append("human_tasks.state = ?")
        params.append(state)
    if scope == "mine":
        where.append("human_tasks.assignee = ?")
        params.append(user)
    elif scope == "available":
        user_cond, user_params = _is_candidate("user", [user or ""])
        group_cond, group_params = _is_candidate("group", groups)
        # One condition on the row, as tasklist.py writes it (see there why not an OR).
        where.append("CASE WHEN (human_tasks.assignee IS NULL) THEN EXISTS (SELECT 1 FROM task_candidates "
                     f"WHERE task_candidates.task_id = human_tasks.id AND ({user_cond} OR {group_cond}) "
                     "LIMIT -1 OFFSET 0) ELSE human_tasks.assignee = ? END = 1")
        params += [*user_params, *group_params, user]
    if group:
        cond, cond_params = _is_candidate("group", [group])
        where.append("(EXISTS (SELECT 1 FROM task_candidates WHERE task_candidates.task_id = human_tasks.id AND "
                     f"{cond} LIMIT -1 OFFSET 0))")
        params += cond_params
    if overdue:
        # The index's own expression, so the walk starts at the first due task (as tasklist.py).
        where.append("(human_tasks.due_at IS NULL) = 0 AND human_tasks.due_at < ?")
        params.append(_stored(now))
    order = "human_tasks.due_at, human_tasks.priority DESC, human_tasks.id"
    if not overdue:
        order = "human_tasks.due_at IS NULL, " + order
    sql = (f"SELECT {_COLUMNS} FROM human_tasks" + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY {order} LIMIT ? OFFSET 0")
    return sql, [*params, limit]


def _is_candidate(kind: str, values: list[str]) -> tuple[str, list[Any]]:
    if len(values) == 1:
        return "task_candidates.kind = ? AND task_candidates.value = ?", [kind, values[0]]
    values = values or [""]
    return (f"task_candidates.kind = ? AND task_candidates.value IN ({', '.join('?' * len(values))})",
            [kind, *values])


def _stored(when: datetime) -> str:
    """A UTC time as `storage.schema.UTCDateTime` stores it in SQLite (naive UTC, microseconds)."""
    return when.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _when(text: str | None) -> datetime | None:
    """A stored UTC time as `UTCDateTime` returns it: an aware UTC datetime."""
    if text is None:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
