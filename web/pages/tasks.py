"""Staff pages: the task list, one task with its form, notifications."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.errors import EngineError, FormError, NotFound

from .. import formrender
from .common import Page
from .deps import require_csrf, run_command, signed_in

router = APIRouter()
PAGE_SIZE = 50
# Counts per filter stop here ("99+"): their cost follows the cap, not the open tasks. At 1M open
# tasks a count to 999 walked some 28k rows of the list (25 ms), and the page shows one per filter.
COUNT_CAP = 99
FILTERS = ("available", "mine", "overdue", "today", "week")


def _filter_args(page: Page, f: str, group: str | None, process: str | None) -> dict[str, Any]:
    assert page.me is not None and page.now is not None
    args: dict[str, Any] = {"user": page.me.user, "scope": "mine" if f == "mine" else "available"}
    if group:
        args["group"] = group
    if process:
        args["process_key"] = process
    if f == "overdue":
        args["overdue"] = True
    local = page.now.astimezone(page.tz)
    if f == "today":
        args["due_before"] = datetime.combine(local.date() + timedelta(days=1), time(0), page.tz)
    elif f == "week":
        start = local.date() - timedelta(days=local.weekday())
        args["due_before"] = datetime.combine(start + timedelta(days=7), time(0), page.tz)
    return args


@router.get("/tasks", name="tasks_page")
def tasks_page(request: Request, f: str = "available", group: str | None = None, process: str | None = None,
               cursor: str | None = None, page: Page = Depends(signed_in)) -> Response:
    if f not in FILTERS:
        f = "available"
    page.now = page.engine.now()
    args = _filter_args(page, f, group or None, process or None)
    offset = int(cursor) if cursor and cursor.isdigit() and len(cursor) < 9 else 0
    rows = page.engine.tasks(**args, limit=offset + PAGE_SIZE + 1)[offset:]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    counts = {name: _shown_count(page.engine.task_count(**_filter_args(page, name, group or None, process or None),
                                                        cap=COUNT_CAP)) for name in FILTERS}
    me = page.me
    assert me is not None
    groups = page.engine.directory().groups_of(me.user)
    processes = page.engine.process_keys()
    return page.render("tasks.html", section="tasks", tasks=rows, f=f, group=group or "", process=process or "",
                       counts=counts, groups=groups, processes=processes,
                       next_cursor=str(offset + PAGE_SIZE) if more else None,
                       prev_cursor=str(max(0, offset - PAGE_SIZE)) if offset else None)


def _shown_count(n: int) -> str:
    return f"{COUNT_CAP}+" if n > COUNT_CAP else str(n)


def _task_context(page: Page, task_id: int) -> dict[str, Any]:
    e = page.engine
    t = e.task(task_id)
    data = e.task_data(task_id) if t.state == "open" else {}
    schema = e.task_form(task_id)
    inst = e.instance(t.instance_id)
    events = e.history(t.instance_id)
    names = e.element_names(t.instance_id)
    from .drawing import instance_svg, legend

    d = e.directory()
    users = sorted(((u, p.name) for u, p in d.users.items()), key=lambda x: x[0])
    return {"t": t, "data": data, "schema": schema, "inst": inst, "events": events, "names": names,
            "users": users, "diagram": instance_svg(e, t.instance_id, focus=t.element_id, labels=legend(page._)),
            "may_act": _may_act(page, t)}


def _may_act(page: Page, t: Any) -> bool:
    me = page.me
    if me is None or t.state != "open" or not me.may_work:
        return False
    if t.assignee:
        return t.assignee == me.user
    groups = set(page.engine.directory().groups_of(me.user))
    return me.user in t.candidate_users or bool(groups & set(t.candidate_groups))


@router.get("/tasks/{task_id}", name="task_page")
def task_page(task_id: int, page: Page = Depends(signed_in)) -> Response:
    ctx = _task_context(page, task_id)
    fields = formrender.build_fields(ctx["schema"], (ctx["schema"] or {}).get("x-ui") or None, ctx["data"],
                                     tz=page.tz)
    return page.render("task.html", section="tasks", fields=fields, **ctx)


@router.post("/tasks/{task_id}/complete")
async def task_complete(task_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await request.form()
    require_csrf(page, form)
    assert page.me is not None
    schema = page.engine.task_form(task_id)
    data, raw, typing_errors = formrender.parse_submission(schema, form, page.tz)
    errors: dict[str, list[str]] = {}
    if typing_errors:
        errors = typing_errors
    else:
        try:
            user = page.me.user
            await run_command(page, lambda e: e.complete(task_id, user, data))
        except FormError as exc:
            errors = formrender.errors_by_name(exc.errors)
        else:
            t = page.engine.task(task_id)
            return page.redirect("/tasks", ("ok", page._("Task %(id)s (%(name)s) completed.", id=task_id,
                                                         name=t.name or t.element_id)))
    # The page again, with every error next to its field and what the user typed kept.
    ctx = _task_context(page, task_id)
    fields = formrender.build_fields(schema, (schema or {}).get("x-ui") or None, ctx["data"], errors=errors,
                                     raw=raw, tz=page.tz)
    unplaced = {k: v for k, v in errors.items() if k not in {f.name for f in _flat(fields)}}
    return page.render("task.html", status=422, section="tasks", fields=fields, form_errors=unplaced, **ctx)


def _flat(fields: list[formrender.Field]) -> list[formrender.Field]:
    out = []
    for f in fields:
        out.append(f)
        out.extend(_flat(f.children))
    return out


def _action(name: str) -> Any:
    async def act(task_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
        form = await request.form()
        require_csrf(page, form)
        assert page.me is not None
        user = page.me.user
        try:
            if name == "claim":
                await run_command(page, lambda e: e.claim(task_id, user))
                msg = page._("You claimed task %(id)s.", id=task_id)
            elif name == "unclaim":
                await run_command(page, lambda e: e.unclaim(task_id, user))
                msg = page._("Task %(id)s went back to its candidates.", id=task_id)
            else:
                to = str(form.get("user") or "")
                await run_command(page, lambda e: e.delegate(task_id, user, to))
                msg = page._("Task %(id)s delegated to %(user)s.", id=task_id, user=to)
        except EngineError as exc:
            return page.redirect(f"/tasks/{task_id}", ("bad", exc.message))
        return page.redirect(f"/tasks/{task_id}", ("ok", msg))

    act.__name__ = f"task_{name}"
    return act


for _name in ("claim", "unclaim", "delegate"):
    router.add_api_route(f"/tasks/{{task_id}}/{_name}", _action(_name), methods=["POST"])


@router.get("/notifications", name="notifications_page")
def notifications_page(page: Page = Depends(signed_in)) -> Response:
    assert page.me is not None
    rows = list(page.engine.notifications(page.me.user))[::-1][:200]
    return page.render("notifications.html", section="notifications", rows=rows)


@router.post("/notifications/{nid}/read")
async def notification_read(nid: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await request.form()
    require_csrf(page, form)
    assert page.me is not None
    try:
        page.engine.mark_notification_read(nid, page.me.user)
    except NotFound as exc:
        return page.redirect("/notifications", ("bad", exc.message))
    return page.redirect("/notifications")
