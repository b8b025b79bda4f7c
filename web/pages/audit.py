"""Auditors' pages: an instance's timeline, the replay stepper, and verify / seal / export."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from engine.audit import Auditor
from engine.errors import EngineError, InputError
from engine.inspection import instance_picture

from .common import Page
from .deps import require_csrf, require_reader_of_audit, signed_in
from .drawing import states_svg

router = APIRouter()
VERIFY_PAGE_LIMIT = 2000  # instances verified in one page request; more with the CLI


@router.get("/instances/{instance_id}/history")
def history_page(instance_id: int, page: Page = Depends(signed_in)) -> Response:
    events = page.engine.history(instance_id)
    names = page.engine.element_names(instance_id)
    inst = page.engine.instance(instance_id)
    return page.render("history.html", section="instances", inst=inst, events=events, names=names)


@router.get("/instances/{instance_id}/replay")
def replay_page(instance_id: int, step: int | None = None, page: Page = Depends(signed_in)) -> Response:
    auditor = Auditor(page.engine)
    total = len(page.engine.history(instance_id))
    if total == 0:
        raise InputError(f"instance {instance_id} has no history to replay")
    n = total if step is None else step
    if n < 1 or n > total:
        return page.render("replay.html", status=404, section="instances", instance_id=instance_id, total=total,
                           n=n, past_end=True, step=None, diagram="", names={})
    result = auditor.replay(instance_id, upto=n)
    current = result.steps[-1] if result.steps else None
    pic = instance_picture(page.engine, instance_id)
    diagram = states_svg(pic.files, pic.main_file, pic.process_key, result.workflow) \
        if result.workflow is not None else ""
    names = page.engine.element_names(instance_id)
    return page.render("replay.html", section="instances", instance_id=instance_id, total=total, n=n,
                       past_end=False, step=current, diagram=diagram, names=names,
                       divergence=result.divergence, matches=result.matches_stored)


@router.get("/audit")
def audit_page(page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    return page.render("audit.html", section="audit", checked=None, failures=None, sealed=None)


@router.post("/audit/verify")
async def audit_verify(request: Request, page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    form = await request.form()
    require_csrf(page, form)
    raw = str(form.get("instance") or "").strip()
    ids: list[int] | None = None
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            raise InputError("give an instance number, or leave the field empty to verify every instance")
        ids = [int(raw)]
    replay = form.get("replay") != "false"
    auditor = Auditor(page.engine)
    if ids is None:
        every = [r["id"] for r in page.engine.instances(limit=VERIFY_PAGE_LIMIT + 1)]
        if len(every) > VERIFY_PAGE_LIMIT:
            return page.render("audit.html", status=400, section="audit", checked=None, failures=None,
                               sealed=None, error=page._("More than %(n)s instances: run 'tigao verify --all' "
                                                         "on the server instead.", n=VERIFY_PAGE_LIMIT))
    checked, failures = auditor.verify(ids, replay=replay)
    return page.render("audit.html", section="audit", checked=checked, failures=failures, sealed=None,
                       instance=raw)


@router.post("/audit/seal")
async def audit_seal(request: Request, page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    form = await request.form()
    require_csrf(page, form)
    assert page.me is not None
    seal_id, root, count = Auditor(page.engine).seal(page.me.user)
    return page.render("audit.html", section="audit", checked=None, failures=None,
                       sealed={"id": seal_id, "root": root, "instances": count})


@router.get("/audit/export")
def audit_export(instance: str | None = None, fmt: str = "jsonl", page: Page = Depends(signed_in)) -> Response:
    require_reader_of_audit(page)
    ids: list[int] | None = None
    if instance:
        if not instance.isdigit() or len(instance) > 12:
            raise InputError("give an instance number, or none to export everything")
        ids = [int(instance)]
    try:
        lines = list(Auditor(page.engine).export(ids, fmt))
    except EngineError:
        raise
    name = f"tigao-audit-{instance or 'all'}.{ 'csv' if fmt == 'csv' else 'jsonl'}"

    def body() -> Any:
        for line in lines:
            yield line + "\n"

    return StreamingResponse(body(), media_type="text/csv" if fmt == "csv" else "application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
