"""Read-only task lists with SQLAlchemy Core: what `tigao tasks` runs, without the Engine.

A command line pays for every module it imports before it does any work: the ORM and the mapped
classes cost a task list more than its query does (see bench/bench_cli.py). This reader connects
with Core (`storage.db`), reads the clock and the directory from their tables and runs the same
query as `Engine.tasks` (`engine.tasklist`) in one read transaction (SQLite deferred, PostgreSQL
READ COMMITTED READ ONLY), so it never imports `sqlalchemy.orm`, Alembic, SpiffWorkflow, lxml or
jsonschema.

It answers only the ordinary case: a database at this release's schema revision and a user on
file (or none, for --all). Anything else (an older schema, not a Tigao database, a database
error, an unknown user) returns None, and the caller asks the Engine, which gives the usual
answer or message: one place for every rule and every error text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import json

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import Text

from storage import db as dbmod
from storage import schema

from .assignment import Dept, Directory, Person
from .errors import StorageError
from .tasklist import task_list_select
from .taskview import VIEW_COLUMNS, TaskView

SETTINGS = ("clock", "sim_now", "directory_version")


def list_tasks(url: str | None, user: str | None = None, scope: str = "available", group: str | None = None,
               instance_id: int | None = None, overdue: bool = False, state: str = "open",
               limit: int = 500) -> list[TaskView] | None:
    """`Engine(url).tasks(user, scope, group, instance_id, overdue, state, limit)`, or None when
    the Engine must answer (see the module's docstring). Bad filters raise the Engine's InputError."""
    full = dbmod.normalise_url(url)
    try:
        dbmod.check_exists(full)
        sa = dbmod.make_engine(full)
    except dbmod.DatabaseProblem as exc:
        raise StorageError(str(exc)) from exc
    try:
        # One process, one list: caching compiled statements would cost more than it saves.
        with dbmod.read_only(sa).execution_options(compiled_cache=None).connect() as conn, conn.begin():
            if dbmod.schema_revision(conn) != schema.SCHEMA_REVISION:
                return None
            now, directory = _clock_and_directory(conn)
            if user is not None and user not in directory.users:
                return None  # unknown (refused), or allowed before the first directory load
            q = task_list_select(directory, now, user, scope, group, instance_id, overdue, state, limit=limit,
                                 columns=view_columns())
            return task_views(conn, q, now)
    except (SQLAlchemyError, OverflowError, UnicodeError):
        return None  # the Engine names the problem (an id out of range, bad text, a database error)
    finally:
        sa.dispose()


def _clock_and_directory(conn: Any) -> tuple[datetime, Directory]:
    """The command's "now" and the directory, as `Engine._sync_clock` and `Engine._dir` read them."""
    st = schema.settings.c
    rows = dict(conn.execute(select(st.key, st.value).where(st.key.in_(SETTINGS))).all())
    now = (datetime.fromisoformat(rows["sim_now"]) if rows.get("clock") == "simulated"
           else datetime.now(timezone.utc))
    ur = schema.user_roles.c
    roles_of: dict[str, list[str]] = {}
    for uid, rid in conn.execute(select(ur.user_id, ur.role_id).order_by(ur.role_id)):
        roles_of.setdefault(uid, []).append(rid)
    u, d, r = schema.users.c, schema.departments.c, schema.roles.c
    users = [Person(row.id, row.name, row.department, roles_of.get(row.id, []))
             for row in conn.execute(select(u.id, u.name, u.department))]
    depts = [Dept(row.id, row.name, row.head, row.parent)
             for row in conn.execute(select(d.id, d.name, d.head, d.parent))]
    roles = {row.id: row.name for row in conn.execute(select(r.id, r.name))}
    return now, Directory(users, depts, roles)


class _CandidatesJson(ColumnElement[str]):
    """A task row's candidates as one JSON array of [kind, value] pairs (NULL or [] for none), read
    in the row's own statement: a correlated subquery on `task_candidates`' primary key."""

    type = Text()
    _traverse_internals: list[Any] = []  # nothing of its own: its cache key is its class
    inherit_cache = True


@compiles(_CandidatesJson, "sqlite")
def _candidates_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return ("(SELECT json_group_array(json_array(task_candidates.kind, task_candidates.value)) "
            "FROM task_candidates WHERE task_candidates.task_id = human_tasks.id)")


@compiles(_CandidatesJson)
def _candidates_other(element: Any, compiler: Any, **kw: Any) -> str:  # PostgreSQL
    return ("(SELECT CAST(json_agg(json_build_array(task_candidates.kind, task_candidates.value)) AS TEXT) "
            "FROM task_candidates WHERE task_candidates.task_id = human_tasks.id)")


# What a TaskView needs besides its row's columns, read in the list's own statement: its
# candidates and its process key (one statement per list instead of three).
VIEW_EXTRAS = (
    _CandidatesJson().label("candidates_json"),
    select(schema.instances.c.process_key).where(schema.instances.c.id == schema.human_tasks.c.instance_id)
    .scalar_subquery().label("process_key"),
)


def view_columns() -> tuple[Any, ...]:
    """The columns of a task list statement whose rows `task_views` turns into TaskViews."""
    return (*(schema.human_tasks.c[name] for name in VIEW_COLUMNS), *VIEW_EXTRAS)


def task_views(conn: Any, q: Any, now: datetime, params: dict[str, Any] | None = None) -> list[TaskView]:
    """The rows of a `task_list_select` of `view_columns()` (or of a `task_list_statement` with its
    `params`) as TaskViews, with their candidates and process keys."""
    rows = conn.execute(q, params).all() if params is not None else conn.execute(q).all()
    cands: dict[int, tuple[list[str], list[str]]] = {}
    for r in rows:
        users: list[str] = []
        groups: list[str] = []
        for kind, value in json.loads(r.candidates_json or "[]"):
            (users if kind == "user" else groups).append(value)
        cands[r.id] = (sorted(users), sorted(groups))
    return [TaskView(r.id, r.instance_id, r.element_id, r.name, r.role, r.assignee, cands[r.id][0],
                     cands[r.id][1], r.state, r.priority, r.form_key, r.created_at, r.due_at, r.follow_up_at,
                     r.completed_at, r.completed_by,
                     bool(r.due_at and (r.completed_at or now) > r.due_at), r.process_key)
            for r in rows]
