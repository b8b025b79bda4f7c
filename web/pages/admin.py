"""Administrators' pages: definitions, versions and their differences, deployment, instances,
the directory, the simulated clock and the campaign report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.errors import DefinitionError, EngineError, InputError
from engine.inspection import definition_files
from engine.timeutil import parse_duration_parts

from ..uploads import MAX_FILE_BYTES, collect, write_bundle
from .common import Page
from .deps import admin_form, require_admin, signed_in
from .drawing import definition_svg, legend

router = APIRouter()
PAGE_SIZE = 50


def _main_file(page: Page, d: Any, files: dict[str, str]) -> str | None:
    built = page.engine.built.get(d.id, d.key, files)
    info = built.analysis.processes.get(d.key)
    return info.file if info else None


@router.get("/definitions")
def definitions_page(page: Page = Depends(signed_in)) -> Response:
    rows = page.engine.definitions()
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    return page.render("definitions.html", section="definitions",
                       processes=sorted(by_key.items()), )


@router.get("/definitions/{key}/diff")
def definition_diff(key: str, page: Page = Depends(signed_in)) -> Response:
    request = page.request
    try:
        v_from = int(request.query_params.get("from", ""))
        v_to = int(request.query_params.get("to", ""))
    except ValueError:
        raise InputError("give two versions to compare: ?from=1&to=2") from None
    old_d, old_files = definition_files(page.engine, key, v_from)
    new_d, new_files = definition_files(page.engine, key, v_to)
    from ..bpmn_diff import diff_files

    result = diff_files(old_files, new_files, process_id=key)
    main = _main_file(page, new_d, new_files)
    return page.render("definition_diff.html", section="definitions", key=key, old=old_d, new=new_d,
                       changes=result, diagram=definition_svg(new_files, main, key, result.highlight(), labels=legend(page._)))


@router.get("/definitions/{key}/{version}")
def definition_page(key: str, version: int, page: Page = Depends(signed_in)) -> Response:
    d, files = definition_files(page.engine, key, version)
    main = _main_file(page, d, files)
    versions = [r for r in page.engine.definitions() if r["key"] == key]
    forms = {n: t for n, t in files.items() if n.startswith("forms/")}
    return page.render("definition.html", section="definitions", d=d, files=sorted(files), forms=forms,
                       versions=versions, diagram=definition_svg(files, main, key, labels=legend(page._)))


@router.get("/definitions/{key}/{version}/files/{name:path}")
def definition_file(key: str, version: int, name: str, page: Page = Depends(signed_in)) -> Response:
    _d, files = definition_files(page.engine, key, version)
    if name not in files:
        raise InputError(f"version {version} of '{key}' has no file '{name}'")
    media = "application/json" if name.endswith(".json") else "application/xml"
    return Response(files[name], media_type=f"{media}; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="{Path(name).name}"',
                             "X-Content-Type-Options": "nosniff"})


@router.get("/deploy")
def deploy_page(page: Page = Depends(signed_in)) -> Response:
    require_admin(page)
    return page.render("deploy.html", section="deploy", problems=None, results=None)


@router.post("/deploy")
async def deploy_post(request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    uploads = [f for f in form.getlist("files") if hasattr(f, "filename") and f.filename]
    if not uploads:
        return page.render("deploy.html", status=400, section="deploy", problems=None, results=None,
                           error=page._("Choose one or more BPMN, DMN or form files, or a zip."))
    try:
        parts = []
        total = 0
        for up in uploads:
            body = await up.read(MAX_FILE_BYTES * 10 + 1)
            total += len(body)
            if total > MAX_FILE_BYTES * 10:
                raise InputError(f"the upload is over {MAX_FILE_BYTES * 10 // (1024 * 1024)} MB; deploy fewer files")
            parts.append((Path(str(up.filename).replace("\\", "/")).name, body))
        tmp = write_bundle(collect(parts))
        try:
            results = page.engine.deploy([tmp.name], actor=page.me.user)
        finally:
            tmp.cleanup()
    except DefinitionError as exc:
        return page.render("deploy.html", status=422, section="deploy", problems=exc.problems, results=None)
    except EngineError as exc:
        return page.render("deploy.html", status=400, section="deploy", problems=None, results=None,
                           error=exc.message)
    return page.render("deploy.html", section="deploy", problems=None, results=results)


@router.get("/instances")
def instances_page(page: Page = Depends(signed_in)) -> Response:
    q = page.request.query_params
    status = q.get("status") or None
    if status not in (None, "running", "completed", "cancelled"):
        status = None
    key = q.get("key") or None
    bkey = q.get("business_key") or None
    cursor = q.get("cursor") or ""
    offset = int(cursor) if cursor.isdigit() and len(cursor) < 9 else 0
    rows = page.engine.instances(status=status, key=key, business_key=bkey, limit=offset + PAGE_SIZE + 1)[offset:]
    more = len(rows) > PAGE_SIZE
    keys = page.engine.process_keys()
    return page.render("instances.html", section="instances", rows=rows[:PAGE_SIZE], status_filter=status or "",
                       key=key or "", business_key=bkey or "", keys=keys,
                       next_cursor=str(offset + PAGE_SIZE) if more else None,
                       prev_cursor=str(max(0, offset - PAGE_SIZE)) if offset else None)


@router.get("/instances/{instance_id}")
def instance_page(instance_id: int, page: Page = Depends(signed_in)) -> Response:
    from .operations import render_instance

    return render_instance(page, instance_id)


@router.post("/instances/{instance_id}/cancel")
async def instance_cancel(instance_id: int, request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    reason = str(form.get("reason") or "").strip()
    try:
        page.engine.cancel(instance_id, reason, actor=page.me.user)
    except EngineError as exc:
        return page.redirect(f"/instances/{instance_id}", ("bad", exc.message))
    return page.redirect(f"/instances/{instance_id}", ("ok", page._("Instance %(id)s cancelled.", id=instance_id)))


@router.get("/directory")
def directory_page(page: Page = Depends(signed_in)) -> Response:
    require_admin(page)
    d = page.engine.directory()
    members: dict[str, list[str]] = {}
    for uid, p in d.users.items():
        for r in p.roles:
            members.setdefault(r, []).append(uid)
    return page.render("directory.html", section="directory", d=d, members=members)


@router.post("/clock")
async def clock_post(request: Request, page: Page = Depends(signed_in)) -> Response:
    form = await admin_form(page, request)
    back = str(form.get("back") or "/instances")
    back = back if back.startswith("/") and not back.startswith("//") else "/instances"
    step = str(form.get("advance") or "").strip().upper()
    try:
        parse_duration_parts(step)
        from engine.timeutil import add_iso_duration

        target = add_iso_duration(page.engine.now(), step)
        page.engine.set_clock(target)
    except ValueError:
        return page.redirect(back, ("bad", page._("'%(step)s' is not an ISO duration such as P1D or PT4H.",
                                                  step=step[:40])))
    except EngineError as exc:
        return page.redirect(back, ("bad", exc.message))
    return page.redirect(back, ("ok", page._("The clock is now %(when)s.", when=page.when(target))))


@router.get("/report")
def report_page(page: Page = Depends(signed_in)) -> Response:
    from campaign.report import campaign_report

    from .report_charts import charts

    q = page.request.query_params
    report = campaign_report(page.engine, q.get("from") or None, q.get("to") or None)
    return page.render("report.html", section="report", r=report, charts=charts(report, page),
                       date_from=q.get("from") or "", date_to=q.get("to") or "")
