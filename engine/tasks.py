"""Human tasks: the task list and one task, claim, unclaim, delegate, complete; notifications
(mixed into Engine)."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from storage.models import HumanTask, Instance, Notification, TaskCandidate

from . import history
from .assignment import Directory
from .base import settings_columns
from .errors import Conflict, InputError, NotAllowed, NotFound, ScriptError
from .reader import task_views, view_columns
from .retry import retrying
from .tasklist import task_list_statement
from .taskview import TaskView
from .values import check_data

# What a list shows of a task: always the same tuple, so the list's statement is kept per shape.
_VIEW_COLUMNS = view_columns()

if TYPE_CHECKING:
    from .core import Engine


class TaskApi:
    """tasks, task_count, task, task_data, task_form, claim, unclaim, delegate, complete, notifications."""

    def tasks(self: Engine, user: str | None = None, scope: str = "available", group: str | None = None,
              instance_id: int | None = None, overdue: bool = False, state: str = "open",
              department: str | None = None, limit: int = 500, due_before: datetime | None = None,
              unassigned: bool = False, offset: int = 0, process_key: str | None = None) -> list[TaskView]:
        """Task list from the projection tables.

        scope: "available" (assigned to the user, or unassigned with the user a candidate),
        "mine" (assigned to the user), "all" (every task).
        """
        with self._tx(read=True) as s:
            # Core rows of the shown columns, on the session's connection: no ORM objects to build;
            # the statement of this shape of list is built once (engine/tasklist.py).
            now = self.clock.now()
            q, params = task_list_statement(self._check_actor(s, user, acting=False), now, user, scope, group,
                                            instance_id, overdue, state, department, limit, due_before, unassigned,
                                            process_key, offset, columns=_VIEW_COLUMNS)
            return task_views(s.connection(), q, now, params)

    def task_count(self: Engine, user: str | None = None, scope: str = "available", group: str | None = None,
                   instance_id: int | None = None, overdue: bool = False, state: str = "open",
                   department: str | None = None, due_before: datetime | None = None, unassigned: bool = False,
                   process_key: str | None = None, cap: int | None = None) -> int:
        """How many tasks `tasks` would list with the same filters and no limit.

        With `cap`, counting stops after `cap` + 1 tasks (a page shows "99+"), so its cost
        follows the cap, not the number of open tasks.
        """
        with self._tx(read=True) as s:
            d = self._check_actor(s, user, acting=False)
            # With a cap the list's own index is walked, in display order, and left past the cap.
            q, params = task_list_statement(d, self.clock.now(), user, scope, group, instance_id, overdue, state,
                                            department, None if cap is None else cap + 1, due_before, unassigned,
                                            process_key, columns=(HumanTask.__table__.c.id,), count=True)
            return int(s.connection().execute(q, params).scalar() or 0)

    def task(self: Engine, task_id: int) -> TaskView:
        with self._tx(read=True) as s:
            views = self._task_views(s, select(HumanTask).where(HumanTask.id == task_id))
            if not views:
                raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
            return views[0]

    def task_data(self: Engine, task_id: int) -> dict[str, Any]:
        """The data a task sees (its process variables), for filling its form."""
        with self._tx(read=True) as s:
            row = self._task_row(s, task_id)
            if row.state == "completed" and row.completed_data is not None:
                return self.serializer.data_from_text(row.completed_data)
            inst = s.get(Instance, row.instance_id)
            version = inst.version
            cached = self._wf_cache.get(row.instance_id)
            if cached is not None and cached[0] == version:
                t = cached[1].get_task_from_id(UUID(row.spiff_id))
                return deepcopy(t.data) if t is not None else {}
            # Only the task's own branch of the stored state is read, not the whole workflow.
            return self.serializer.task_data(inst.state, row.spiff_id) or {}

    def task_form(self: Engine, task_id: int) -> dict[str, Any] | None:
        with self._tx(read=True) as s:
            row = self._task_row(s, task_id)
            built = self._instance_built(s, row.instance_id)[2]
            return built.forms.get(row.form_key) if row.form_key else None

    def _task_views(self: Engine, s: Session, q: Any) -> list[TaskView]:
        # The same row building as the quick reader of `tigao tasks` (engine/reader.py).
        return task_views(s.connection(), q.with_only_columns(*_VIEW_COLUMNS), self.clock.now())

    def _task_row(self: Engine, s: Session, task_id: int, lock: bool = False) -> HumanTask:
        q = select(HumanTask).where(HumanTask.id == task_id)
        if lock:  # read again under the lock: what an earlier read of this session saw may be stale
            q = q.with_for_update().execution_options(populate_existing=True)
        row = s.scalar(q)
        if row is None:
            raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
        return row

    @staticmethod
    def _lock_instance(s: Session, instance_id: int) -> None:
        s.execute(select(Instance.id).where(Instance.id == instance_id).with_for_update())

    def _candidates(self: Engine, s: Session, task_id: int) -> tuple[list[str], list[str]]:
        users, groups = [], []
        for c in s.scalars(select(TaskCandidate).where(TaskCandidate.task_id == task_id)):
            (users if c.kind == "user" else groups).append(c.value)
        return users, groups

    def _may_work(self: Engine, s: Session, d: Directory, row: HumanTask, user: str,
                  candidate: bool | None = None) -> bool:
        """`user` may work on `row`: its assignee, or a candidate (`candidate`, if already read)."""
        if row.assignee is not None:
            return row.assignee == user
        if candidate is not None:
            return candidate
        users, groups = self._candidates(s, row.id)
        return user in users or bool(set(groups) & set(d.groups_of(user)))

    def _open_task(self: Engine, s: Session, task_id: int, user: str | None) -> tuple[HumanTask, Directory]:
        if not user:
            raise InputError("say who you are with --as USER")
        d = self._check_actor(s, user)
        # One lock order everywhere (the instance, then its task and timer rows), so that a user and
        # the worker, which locks the instance before it touches its tasks, cannot deadlock.
        # (SQLite has no row locks: a writer holds the whole database from BEGIN IMMEDIATE.)
        if s.get_bind().dialect.name != "sqlite":
            self._lock_instance(s, self._task_row(s, task_id).instance_id)
        row = self._task_row(s, task_id, lock=True)
        if row.state != "open":
            raise Conflict(f"task {task_id} is already {row.state}"
                           + (f" (by {row.completed_by})" if row.completed_by else ""))
        return row, d

    def _open_task_with_siblings(self: Engine, s: Session, task_id: int, user: str | None) \
            -> tuple[HumanTask, Directory, list[HumanTask], bool | None, Instance | None]:
        """As `_open_task`, with the instance's open tasks read (and locked) in the same query, so
        the completion does not read them again when it projects the tasks; with them, whether
        `user` is a candidate of the task (None: not known, ask `_may_work`), the instance row and,
        when the transaction folded them (`Engine._tx`), the settings: one statement for all."""
        if not user:
            raise InputError("say who you are with --as USER")
        folded = self._settings_pending
        # With the settings folded, the cached directory names the user's groups; the stamp read
        # with the row says whether it still holds (if not, the candidates are read again below).
        guess = self._directory if folded else self._check_actor(s, user)
        assert guess is not None
        # The instance first, then its rows: the one lock order (see _open_task). SQLite has no row
        # locks (a writer holds the whole database from BEGIN IMMEDIATE), so it needs no statement.
        if s.get_bind().dialect.name != "sqlite":
            s.execute(_instance_lock_of_task(), {"task_id": task_id})
        groups = guess.groups_of(user)
        q = _task_with_siblings(folded)
        found = s.execute(q, {"task_id": task_id, "user": user, "groups": groups or [""]}).all()
        if folded:
            if found:
                self._use_settings(found[0])
            else:
                self._sync_clock(s)
        d = self._check_actor(s, user) if folded else guess
        rows = [r[0] for r in found]
        hit = next((r for r in found if r[0].id == task_id), None)
        if hit is None:
            raise NotFound(f"no task {task_id}; 'tigao tasks --as USER' lists yours")
        row = hit[0]
        if row.state != "open":
            raise Conflict(f"task {task_id} is already {row.state}"
                           + (f" (by {row.completed_by})" if row.completed_by else ""))
        return row, d, rows, (bool(hit.may) if d is guess else None), hit[2]

    @retrying
    def claim(self: Engine, task_id: int, user: str) -> None:
        with self._tx() as s:
            row, d = self._open_task(s, task_id, user)
            if row.assignee == user:
                return
            if row.assignee is not None:
                raise Conflict(f"task {task_id} is already claimed by {row.assignee}")
            if not self._may_work(s, d, row, user):
                raise NotAllowed(f"{user} is not a candidate for task {task_id} ({row.name}); "
                                 "only its candidate users and groups may claim it")
            row.assignee = user
            row.claimed_at = self.clock.now()
            self._task_event(s, row, "task_claimed", user, {"assignee": user})

    @retrying
    def unclaim(self: Engine, task_id: int, user: str) -> None:
        with self._tx() as s:
            row, _ = self._open_task(s, task_id, user)
            if row.assignee != user:
                raise NotAllowed(f"task {task_id} is not claimed by {user}"
                                 + (f" but by {row.assignee}" if row.assignee else ""))
            if not s.scalar(select(func.count()).select_from(TaskCandidate).where(TaskCandidate.task_id == row.id)):
                raise Conflict(f"task {task_id} was assigned by the process and has no candidates to return to; "
                               "delegate it instead")
            row.assignee = None
            row.claimed_at = None
            self._task_event(s, row, "task_unclaimed", user, {})

    @retrying
    def delegate(self: Engine, task_id: int, user: str, to_user: str) -> None:
        with self._tx() as s:
            row, d = self._open_task(s, task_id, user)
            if to_user not in d.users:
                raise NotFound(f"no user '{to_user}' in the directory")
            if not self._may_work(s, d, row, user):
                raise NotAllowed(f"{user} may not delegate task {task_id}: it is "
                                 + (f"assigned to {row.assignee}" if row.assignee else "not theirs"))
            previous = row.assignee
            row.assignee = to_user
            row.claimed_at = self.clock.now()
            self._task_event(s, row, "task_delegated", user, {"from": previous, "to": to_user})

    def _task_event(self: Engine, s: Session, row: HumanTask, type_: str, actor: str, payload: dict[str, Any]) -> None:
        inst = s.scalar(select(Instance).where(Instance.id == row.instance_id).with_for_update())
        assert inst is not None
        history.append(s, inst, type_, self.clock.now(), actor, {"spiff_id": row.spiff_id, **payload},
                       element_id=row.element_id, task_id=row.id)

    @retrying
    def complete(self: Engine, task_id: int, user: str, data: dict[str, Any] | None = None) -> None:
        """Complete a human task as `user` with form `data`; one transaction."""
        from SpiffWorkflow.util.task import TaskState

        from . import forms as formsmod
        from .formview import with_defaults

        data = check_data(data)
        instance_id = None
        try:
            with self._tx(fold_settings=True, optimistic=True) as s:
                row, d, open_rows, candidate, inst = self._open_task_with_siblings(s, task_id, user)
                instance_id = row.instance_id
                if not self._may_work(s, d, row, user, candidate):
                    if row.assignee:
                        raise NotAllowed(f"task {task_id} ({row.name}) is assigned to {row.assignee}, not {user}")
                    raise NotAllowed(f"{user} is not a candidate for task {task_id} ({row.name})")
                run = self._load_run(s, row.instance_id, inst=inst)
                run.open_rows = open_rows
                t = run.wf.get_task_from_id(UUID(row.spiff_id))
                if t is None or t.state != TaskState.READY:
                    raise Conflict(f"task {task_id} is no longer waiting for input")
                if row.form_key:
                    schema = run.built.forms.get(row.form_key)
                    if schema is not None:  # values already on the task count: no need to send them again
                        formsmod.validate(row.form_key, schema, with_defaults(schema, t.data, data))
                now = self.clock.now()
                row.state = "completed"
                row.completed_at = now
                row.completed_by = user
                # What the task completed with stays on its row: pruning may cut it from the tree.
                row.completed_data = self.serializer.data_text({**t.data, **data})
                if row.due_at is not None or row.follow_up_at is not None:
                    run.closed_task_ids.append(row.id)  # (only a task with a deadline has timers to void)
                if row.assignee is None:
                    row.assignee = user
                run.event("task_completed", user, {"spiff_id": row.spiff_id, "data": data},
                          element_id=row.element_id, task_id=row.id)
                run.apply("task_completed", {"spiff_id": row.spiff_id, "data": data})
                run.finish(user)
        except ScriptError as exc:
            if instance_id is not None:
                self._record_failure(instance_id, user, exc)
            raise

    def notifications(self: Engine, user: str, unread_only: bool = False) -> list[Notification]:
        with self._tx(read=True) as s:
            self._check_actor(s, user, acting=False)
            q = select(Notification).where(Notification.recipient == user)
            if unread_only:
                q = q.where(Notification.read_at.is_(None))
            return list(s.scalars(q.order_by(Notification.at, Notification.id)))

    def mark_notification_read(self: Engine, notification_id: int, user: str) -> Notification:
        """Mark one of `user`'s notifications read (idempotent); NotFound for anyone else's."""
        with self._tx() as s:
            n = s.get(Notification, notification_id)
            if n is None or n.recipient != user:
                raise NotFound(f"no notification {notification_id} for {user}")
            if n.read_at is None:
                n.read_at = self.clock.now()
            return n



# The statements of a completion's first read, built once: a statement object keeps its cache key
# and finds its compiled form at once, where one built per call costs as much as running it.
_STATEMENTS: dict[Any, Any] = {}


def _instance_lock_of_task() -> Any:
    q = _STATEMENTS.get("lock")
    if q is None:
        of_instance = select(HumanTask.instance_id).where(HumanTask.id == bindparam("task_id")).scalar_subquery()
        q = _STATEMENTS["lock"] = select(Instance.id).where(Instance.id == of_instance).with_for_update()
    return q


def _task_with_siblings(folded: bool) -> Any:
    """The task row (`task_id`) and its instance's open rows, each with whether `user` (or one of
    `groups`) is a candidate, the instance row and, if `folded`, the settings (`Engine._tx`)."""
    q = _STATEMENTS.get(("siblings", folded))
    if q is None:
        c = TaskCandidate
        task_id = bindparam("task_id")
        of_instance = select(HumanTask.instance_id).where(HumanTask.id == task_id).scalar_subquery()
        may = exists().where(c.task_id == HumanTask.id, or_(
            and_(c.kind == "user", c.value == bindparam("user")),
            and_(c.kind == "group", c.value.in_(bindparam("groups", expanding=True)))))
        q = (select(HumanTask, may.label("may"), Instance, *(settings_columns() if folded else ()))
             .join(Instance, Instance.id == HumanTask.instance_id)
             .where(or_(HumanTask.id == task_id, and_(HumanTask.instance_id == of_instance, HumanTask.state == "open")))
             .with_for_update(of=HumanTask))
        _STATEMENTS[("siblings", folded)] = q
    return q
