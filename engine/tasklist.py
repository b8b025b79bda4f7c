"""The task-list query: every filter of `Engine.tasks` served by an index in display order.

The list is shown due tasks first (earliest first), then by priority, then by id; the indexes of
migration 0003 hold human tasks in that order per state, per assignee and per instance. So a page
is read by walking one index in order and stopping at the page's end: no sort over all open
tasks. A candidate filter is a primary-key probe of `task_candidates` for each row walked, so its
cost follows the page too. (An uncorrelated `id IN (SELECT task_id ...)` reads every candidate
row of the user's groups first: at 200k open tasks it took 8x longer for "available".) A filter
that matches few tasks still walks the index until it finds a page, or reaches its end.

The query is built with SQLAlchemy Core on the tables of `storage.schema`, so that a reader that
only lists tasks (`engine.reader`, behind `tigao tasks`) needs no ORM; `task_list_query` gives the
same statement selecting the ORM class, for the Engine's sessions.

A statement is built once per shape (which filters are given, one group or several, which
columns) with named parameters, and kept: `task_list_statement` returns it with this list's
values. Building it anew for every list cost about half of a short list's time (the statement's
construction, then SQLAlchemy's walk of it for its cache key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functools import lru_cache

from sqlalchemy import Integer, Select, and_, bindparam, case, false, func, literal_column, or_, select

from storage.schema import human_tasks, instances, task_candidates

from .assignment import Directory
from .taskview import SCOPES, TaskView, check_scope  # noqa: F401 - TaskView is part of this module's API

def _probe(*conditions: Any) -> Any:
    """EXISTS (SELECT 1 ... WHERE conditions OFFSET 0): a probe by primary key for each row walked.

    The OFFSET keeps PostgreSQL from turning the EXISTS into a hashed subplan, which it does when
    it costs the list as reading every open task (it does not count on the LIMIT stopping the walk):
    the hash is built of every task the user's groups are candidates of, 55k rows at 1M open
    tasks, 18 ms instead of 2.5 ms (bench/bench_tasklist.py). SQLite probes either way.
    """
    return select(literal_column("1")).where(*conditions).offset(0).exists()


def _candidate_of(*conditions: Any) -> Any:
    return _probe(task_candidates.c.task_id == human_tasks.c.id, or_(*conditions))


def _is_candidate(kind: str, name: str, several: bool) -> Any:
    """A candidate row of `kind` whose value is the parameter `name` (a list if `several`)."""
    if not several:
        return and_(task_candidates.c.kind == kind, task_candidates.c.value == bindparam(name))
    return and_(task_candidates.c.kind == kind, task_candidates.c.value.in_(bindparam(name, expanding=True)))


def task_list_query(d: Directory, now: datetime, user: str | None = None, scope: str = "available",
                    group: str | None = None, instance_id: int | None = None, overdue: bool = False,
                    state: str = "open", department: str | None = None, limit: int | None = 500,
                    due_before: datetime | None = None, unassigned: bool = False, process_key: str | None = None,
                    offset: int = 0) -> Select[Any]:
    """`task_list_select` selecting the ORM class `storage.models.HumanTask` (for a Session)."""
    from storage.models import HumanTask

    return task_list_select(d, now, user, scope, group, instance_id, overdue, state, department, limit,
                            due_before, unassigned, process_key, offset, columns=(HumanTask,))


def task_list_select(d: Directory, now: datetime, user: str | None = None, scope: str = "available",
                     group: str | None = None, instance_id: int | None = None, overdue: bool = False,
                     state: str = "open", department: str | None = None, limit: int | None = 500,
                     due_before: datetime | None = None, unassigned: bool = False, process_key: str | None = None,
                     offset: int = 0, columns: tuple[Any, ...] = (human_tasks,)) -> Select[Any]:
    """The SELECT of human tasks for one task list (see `Engine.tasks` for the filters): rows of
    the Core table, of some of its `columns`, or of the ORM class mapped onto it, with this list's
    values bound. With `limit` None the query is unordered and unbounded: the base of a count.
    """
    q, params = task_list_statement(d, now, user, scope, group, instance_id, overdue, state, department, limit,
                                    due_before, unassigned, process_key, offset, columns)
    return q.params(params)


def task_list_statement(d: Directory, now: datetime, user: str | None = None, scope: str = "available",
                        group: str | None = None, instance_id: int | None = None, overdue: bool = False,
                        state: str = "open", department: str | None = None, limit: int | None = 500,
                        due_before: datetime | None = None, unassigned: bool = False,
                        process_key: str | None = None, offset: int = 0, columns: tuple[Any, ...] = (human_tasks,),
                        count: bool = False) -> tuple[Select[Any], dict[str, Any]]:
    """The statement of `task_list_select` (kept per shape) and its parameters for this list. With
    `count`, a statement counting what the list (up to `limit`, if given) holds."""
    check_scope(scope, user)
    groups = d.groups_of(user or "") if scope == "available" else []
    members = d.staff(department) if department else []
    params: dict[str, Any] = {}
    if instance_id is not None:
        params["instance_id"] = instance_id
    if state != "any":
        params["state"] = state
    if scope in ("mine", "available"):
        params["user"] = user
    if scope == "available":
        params["cand_user"] = user or ""
        params["groups"] = groups[0] if len(groups) == 1 else (groups or [""])
    if group:
        params["group"] = group
    if overdue:
        params["now"] = now
    if due_before is not None:
        params["due_before"] = due_before
    if department:
        params["members"] = members or [""]
        params["department"] = department
    if process_key:
        params["process_key"] = process_key
    if limit is not None:
        params["limit"], params["offset"] = limit, offset
    shape = (scope, instance_id is not None, state != "any", len(groups) == 1, bool(group), overdue,
             due_before is not None, unassigned, bool(department), bool(process_key), limit is not None, columns,
             count)
    return _statement(*shape), params


@lru_cache(maxsize=512)
def _statement(scope: str, by_instance: bool, by_state: bool, one_group: bool, by_group: bool, overdue: bool,
               by_due: bool, unassigned: bool, by_department: bool, by_process: bool, ordered: bool,
               columns: tuple[Any, ...], count: bool) -> Select[Any]:
    t = human_tasks.c
    q = select(*columns)
    if by_instance:
        q = q.where(t.instance_id == bindparam("instance_id"))
    if by_state:
        q = q.where(t.state == bindparam("state"))
    if scope == "mine":
        q = q.where(t.assignee == bindparam("user"))
    elif scope == "available":
        cand = _candidate_of(_is_candidate("user", "cand_user", False), _is_candidate("group", "groups", not one_group))
        # One condition on the row, not an OR of two indexable ones: with statistics (ANALYZE),
        # SQLite otherwise reads the user's tasks and all unassigned ones through two index
        # searches and sorts them (MULTI-INDEX OR, a temporary B-tree over every unassigned task).
        q = q.where(case((t.assignee.is_(None), cand), else_=t.assignee == bindparam("user")))
    if by_group:
        q = q.where(_candidate_of(_is_candidate("group", "group", False)))
    if overdue:
        # Written as the index's own expression, so the walk starts at the first due task.
        q = q.where(t.due_at.is_(None) == false(), t.due_at < bindparam("now"))
    if by_due:
        q = q.where(t.due_at.is_(None) == false(), t.due_at < bindparam("due_before"))
    if unassigned:
        q = q.where(t.assignee.is_(None))
    if by_department:
        q = q.where(or_(t.assignee.in_(bindparam("members", expanding=True)),
                        _candidate_of(_is_candidate("group", "department", False))))
    if by_process:
        # A probe of the task's instance for each row walked (its primary key), so the cost follows
        # the page: `instance_id IN (SELECT id ... WHERE process_key = ?)` first read every instance
        # of the process (at 1M open tasks 40x the time of 10k, bench/bench_tasklist.py).
        q = q.where(_probe(instances.c.id == t.instance_id, instances.c.process_key == bindparam("process_key")))
    if ordered:
        order = [t.due_at, t.priority.desc(), t.id]
        if not overdue and not by_due:  # (only due tasks listed: the first key is constant there)
            order.insert(0, t.due_at.is_(None))
        q = q.order_by(*order).offset(bindparam("offset", type_=Integer)).limit(bindparam("limit", type_=Integer))
    if count:
        return select(func.count()).select_from(q.subquery())
    return q
