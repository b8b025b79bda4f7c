"""Operators' pages: incidents and stuck instances, external tasks, and an administrator's changes
to one running instance (migrate to another version, cancel an activity, start before an element,
set a variable).

Every action calls the engine function the CLI calls (`tigao retry`, `tigao migrate`, `tigao
modify`, the Camunda `unlock`), as the signed-in user; a refusal shows the page again with the
reason in the user's language and nothing stored changed (the engine refuses before it writes).
The migration preview reads the instance and the target version without changing anything, with
the same check the migration itself runs (`engine.migration.check_migration`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from engine import migration
from engine.errors import EngineError, NotFound, ScriptError
from storage.models import Definition, ExternalTask

from .common import Page
from .deps import admin_form, require_admin, require_reader_of_audit, signed_in
from .vocabulary import N_

router = APIRouter()
LIMIT = 500
# What went wrong, by the engine error's HTTP status, in the page's language; the engine's own
# words (which name elements and versions) follow as the detail.
REFUSED = {400: N_("The input was not accepted; nothing was changed."),
           403: N_("You may not do this; nothing was changed."),
           404: N_("That does not exist (any more); nothing was changed."),
           409: N_("The engine refused the change; nothing was changed."),
           422: N_("The input was not accepted; nothing was changed."),
           503: N_("The database is not available; nothing was changed. Try again in a moment.")}
SCRIPT_FAILED = N_("A step that had to run failed; nothing was changed.")
RETRY_FAILED = N_("The step failed again; the incident stays open.")
TASK_STATES = ("open", "waiting", "locked", "completed", "cancelled", "any")
MODIFY_ACTIONS = ("cancel", "start_before", "set")


def refusal(page: Page, exc: EngineError, retrying: bool = False) -> dict[str, Any]:
    """An engine refusal as the page shows it: a headline in the user's language and the detail."""
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    if isinstance(exc, ScriptError):
        text = RETRY_FAILED if retrying else SCRIPT_FAILED
    else:
        text = REFUSED.get(status, REFUSED[400])
    return {"status": status, "headline": page._(text), "detail": exc.message}


def _problem(page: Page, text: str, **kw: Any) -> dict[str, Any]:
    """A refusal found by the page itself (a missing field), entirely in the user's language."""
    return {"status": 400, "headline": page._(text, **kw), "detail": ""}


# ----------------------------------------------------------------------------- incidents
@router.get("/incidents")
def incidents_page(page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    return _incidents(page)


def _incidents(page: Page, error: dict[str, Any] | None = None) -> Response:
    # Each list read on its own, with one row past the page to tell that there are more: however
    # many incidents were resolved over the years, a new open one is on the page.
    open_ = page.engine.incidents(limit=LIMIT + 1)
    resolved = page.engine.incidents(resolved_only=True, limit=LIMIT + 1)
    stuck = page.engine.stuck_instances(limit=LIMIT + 1)
    more = {"open": len(open_) > LIMIT, "resolved": len(resolved) > LIMIT, "stuck": len(stuck) > LIMIT}
    return page.render("incidents.html", status=error["status"] if error else 200, section="incidents",
                       incidents=open_[:LIMIT], resolved=resolved[:LIMIT], stuck=stuck[:LIMIT], more=more,
                       limit=LIMIT, error=error)


@router.post("/incidents/{incident_id}/retry")
async def incident_retry(incident_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    await admin_form(page, request)
    try:
        page.engine.retry_incident(incident_id, page.me.user)
    except EngineError as exc:
        return _incidents(page, refusal(page, exc, retrying=True))
    return page.redirect("/incidents", ("ok", page._("Incident %(id)s resolved.", id=incident_id)))


# ----------------------------------------------------------------------------- external tasks
def _topics(page: Page) -> list[str]:
    with page.engine._tx(read=True) as s:
        return list(s.scalars(select(ExternalTask.topic).where(ExternalTask.handler.is_(None))
                              .distinct().order_by(ExternalTask.topic).limit(LIMIT)))


def external_rows(page: Page, topic: str | None, state: str,
                  instance_id: int | None = None) -> list[dict[str, Any]]:
    """External tasks for a page; `state` is open, waiting (open, not locked), locked, completed,
    cancelled or any."""
    kw: dict[str, Any] = {"topic": topic or None, "instance_id": instance_id, "limit": LIMIT}
    if state in ("waiting", "locked"):
        kw.update(state="open", locked=state == "locked")
    else:
        kw["state"] = state
    rows = page.engine.external_tasks(**kw)
    now = page.engine.now()
    from .common import _parse_iso

    for r in rows:
        until = _parse_iso(r["lock_expires_at"])
        r["locked"] = until is not None and until > now
        r["lock_until"] = until
        r["created"] = _parse_iso(r["created_at"])
    return rows


@router.get("/external-tasks")
def external_tasks_page(page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    return _external(page)


def _external(page: Page, error: dict[str, Any] | None = None) -> Response:
    q = page.request.query_params
    topic = (q.get("topic") or "").strip()[:200]
    state = q.get("state") or "open"
    if state not in TASK_STATES:
        state = "open"
    rows = external_rows(page, topic, state)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_topic.setdefault(r["topic"], []).append(r)
    return page.render("external_tasks.html", status=error["status"] if error else 200, section="external",
                       by_topic=sorted(by_topic.items()), topics=_topics(page), topic=topic, state=state,
                       states=TASK_STATES, error=error, count=len(rows))


@router.post("/external-tasks/{task_id}/unlock")
async def external_unlock(task_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    back = str(form.get("back") or "/external-tasks")
    back = back if back.startswith("/") and not back.startswith("//") else "/external-tasks"
    try:
        page.engine.unlock(task_id, actor=page.me.user)
    except EngineError as exc:
        return _external(page, refusal(page, exc))
    return page.redirect(back, ("ok", page._("External task %(id)s unlocked: any worker may fetch it now.",
                                              id=task_id)))


# ----------------------------------------------------------------------------- one instance
@dataclass
class Live:
    """An element where the instance has work in progress."""

    element: str
    name: str
    state: str
    process: str


@dataclass
class Ops:
    """What the instance page offers an administrator for one running instance."""

    live: list[Live] = field(default_factory=list)
    elements: list[tuple[str, str]] = field(default_factory=list)  # (id, name) of the current version
    versions: list[int] = field(default_factory=list)  # the process's other versions


def _load(engine: Any, s: Any, instance_id: int) -> tuple[Any, Any, Any, Any]:
    inst, d, built = engine._instance_built(s, instance_id)
    wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
    return inst, d, built, wf


def _live(wf: Any) -> list[Live]:
    from SpiffWorkflow.util.task import TaskState

    out: dict[str, Live] = {}
    for w in migration._workflows(wf):
        for t in w.get_tasks(state=migration.LIVE, skip_subprocesses=True):
            spec = t.task_spec
            if not migration._is_element(spec):
                continue
            out.setdefault(spec.bpmn_id, Live(spec.bpmn_id, spec.bpmn_name or "",
                                              TaskState.get_name(t.state).lower(), str(w.spec.name)))
    return sorted(out.values(), key=lambda x: x.element)


def _elements(built: Any) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for spec in [built.spec, *built.subprocess_specs.values()]:
        for ts in spec.task_specs.values():
            if migration._is_element(ts) and ts.__class__.__name__ not in ("BoundaryEvent", "StartEvent"):
                found.setdefault(ts.bpmn_id, ts.bpmn_name or "")
    return sorted(found.items())


def instance_ops(page: Page, instance_id: int) -> Ops:
    """The live elements, the elements of the version and the other versions, for the forms."""
    with page.engine._tx(read=True) as s:
        inst, d, built, wf = _load(page.engine, s, instance_id)
        versions = [v for v in s.scalars(select(Definition.version).where(Definition.key == inst.process_key)
                                         .order_by(Definition.version)) if v != d.version]
        return Ops(_live(wf), _elements(built), versions)


def instance_extras(page: Page, inst: dict[str, Any]) -> dict[str, Any]:
    """What the instance page adds: its external tasks and incidents, and the administrator's forms."""
    iid = inst["id"]
    out: dict[str, Any] = {"ext_tasks": external_rows(page, None, "any", iid),
                           "incidents": page.engine.incidents(include_resolved=True, instance_id=iid),
                           "ops": None, "modify_error": None, "modify_form": {}}
    if page.me is not None and page.me.is_admin and inst["status"] == "running":
        out["ops"] = instance_ops(page, iid)
    return out


def render_instance(page: Page, instance_id: int, status: int = 200, **extra: Any) -> Response:
    from .drawing import instance_svg, legend

    inst = page.engine.instance(instance_id)
    timers = page.engine.instance_timers(instance_id) if hasattr(page.engine, "instance_timers") else []
    ctx = instance_extras(page, inst)
    ctx.update(extra)
    return page.render("instance.html", status=status, section="instances", inst=inst, timers=timers,
                       diagram=instance_svg(page.engine, instance_id, labels=legend(page._)),
                       **ctx)


@router.post("/instances/{instance_id}/modify")
async def instance_modify(instance_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    values = {k: str(form.get(k) or "").strip() for k in ("action", "element", "name", "value", "reason")}
    action = values["action"]
    error = None
    if action not in MODIFY_ACTIONS:
        error = _problem(page, N_("Choose what to change."))
    elif not values["reason"]:
        error = _problem(page, N_("Give a reason; it goes into the history."))
    elif action in ("cancel", "start_before") and not values["element"]:
        error = _problem(page, N_("Choose an element."))
    elif action == "set" and not values["name"]:
        error = _problem(page, N_("Give the variable's name."))
    value: Any = None
    if error is None and action == "set":
        try:
            value = json.loads(values["value"])
        except (ValueError, RecursionError):
            error = _problem(page, N_('The value is not JSON: write 250, true, "text" (with the quotes) '
                                      'or {"a": 1}.'))
    if error is None:
        try:
            if action == "cancel":
                page.engine.cancel_activity(instance_id, values["element"], actor=page.me.user,
                                            reason=values["reason"])
                done = page._("Activity %(element)s cancelled.", element=values["element"])
            elif action == "start_before":
                page.engine.start_before(instance_id, values["element"], actor=page.me.user,
                                         reason=values["reason"])
                done = page._("A new token starts before %(element)s.", element=values["element"])
            else:
                page.engine.set_variable(instance_id, values["name"], value, actor=page.me.user,
                                         reason=values["reason"])
                done = page._("Variable %(name)s set.", name=values["name"])
        except EngineError as exc:
            error = refusal(page, exc)
    if error is not None:
        return render_instance(page, instance_id, status=error["status"], modify_error=error, modify_form=values)
    # The form's URL ends in #modify (a refusal is shown there); "#top" brings the flash into view.
    return page.redirect(f"/instances/{instance_id}#top", ("ok", done))


# ----------------------------------------------------------------------------- migration
@dataclass
class Move:
    """One element in progress and where the migration takes it."""

    element: str
    name: str
    state: str
    target: str
    found: bool
    mapped: bool


def _mapping_from(form: Any) -> dict[str, str]:
    out = {}
    for k in form.keys():
        if k.startswith("map."):
            v = str(form.get(k) or "").strip()
            if v:
                out[k[4:]] = v
    return out


def preview(page: Page, instance_id: int, to_version: int, mapping: dict[str, str]) -> dict[str, Any]:
    """Where each element in progress goes in `to_version`, and why the move would be refused;
    read only."""
    with page.engine._tx(read=True) as s:
        inst, d, _built, wf = _load(page.engine, s, instance_id)
        new = s.scalar(select(Definition).where(Definition.key == inst.process_key,
                                                Definition.version == to_version))
        if new is None:
            raise NotFound(f"process '{inst.process_key}' has no version {to_version}; "
                           "'tigao definitions' lists them")
        nb = page.engine._built(new)
        moves = []
        for live in _live(wf):
            target = mapping.get(live.element, live.element)
            spec = nb.spec if live.process == str(wf.spec.name) else nb.subprocess_specs.get(live.process)
            moves.append(Move(live.element, live.name, live.state, target,
                              spec is not None and target in spec.task_specs, live.element in mapping))
        problems = migration.check_migration(wf, nb.spec, nb.subprocess_specs, mapping)
        return {"from_version": d.version, "to_version": to_version, "moves": moves, "problems": problems,
                "targets": _elements(nb), "mapping": mapping}


def _versions(page: Page, key: str, current: int) -> list[int]:
    return [r["version"] for r in page.engine.definitions() if r["key"] == key and r["version"] != current]


@router.get("/instances/{instance_id}/migrate")
def migrate_page(instance_id: int, page: Page = Depends(signed_in)) -> Response:
    require_admin(page)
    return _migrate(page, instance_id, page.request.query_params, None)


def _migrate(page: Page, instance_id: int, form: Any, error: dict[str, Any] | None, reason: str = "") -> Response:
    inst = page.engine.instance(instance_id)
    versions = _versions(page, inst["key"], inst["version"])
    raw = str(form.get("to") or "").strip()
    plan = None
    status = error["status"] if error else 200
    if inst["status"] != "running":
        error = error or _problem(page, N_("Only a running instance can move to another version."))
        status = error["status"] = 409
    elif raw:
        if not raw.isdigit() or int(raw) not in versions:
            error = error or _problem(page, N_("Choose one of the other versions of this process."))
            status = error["status"]
        else:
            plan = preview(page, instance_id, int(raw), _mapping_from(form))
    return page.render("migrate.html", status=status, section="instances", inst=inst, versions=versions,
                       to=raw, plan=plan, error=error, reason=reason)


@router.post("/instances/{instance_id}/migrate")
async def migrate_post(instance_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    raw = str(form.get("to") or "").strip()
    reason = str(form.get("reason") or "").strip()
    mapping = _mapping_from(form)
    if not raw.isdigit():
        return _migrate(page, instance_id, form,
                        _problem(page, N_("Choose one of the other versions of this process.")))
    if not reason:
        return _migrate(page, instance_id, form, _problem(page, N_("Give a reason; it goes into the history.")))
    try:
        r = page.engine.migrate(instance_id, int(raw), mapping, actor=page.me.user, reason=reason)
    except EngineError as exc:
        return _migrate(page, instance_id, form, refusal(page, exc), reason)
    done = page._("Instance %(id)s moved from version %(a)s to %(b)s.", id=instance_id, a=r["from"], b=r["to"])
    return page.redirect(f"/instances/{instance_id}", ("ok", done))
