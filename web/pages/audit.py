"""Auditors' pages: an instance's timeline, the replay stepper, and verify / seal / export."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import escape

from engine.audit import Auditor
from engine.errors import EngineError, InputError
from engine.inspection import instance_picture

from .common import TEMPLATES, Page
from .deps import require_csrf, require_reader_of_audit, signed_in
from .drawing import legend, states_svg

router = APIRouter()
log = logging.getLogger("tigao.http")
STREAM_MARK = "<!--verify-stream-->"


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
    diagram = states_svg(pic.files, pic.main_file, pic.process_key, result.workflow, legend(page._)) \
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
    """Verify one instance or all, streaming the progress as lines of the page (no script needed)."""
    require_reader_of_audit(page)
    form = await request.form()
    require_csrf(page, form)
    raw = str(form.get("instance") or "").strip()
    ids: list[int] | None = None
    if raw:
        if not raw.isdigit() or len(raw) > 12:
            raise InputError("give an instance number, or leave the field empty to verify every instance")
        ids = [int(raw)]
        page.engine.instance(ids[0])  # NotFound before the page starts
    replay = form.get("replay") != "false"
    ctx = page.context("audit", checked=None, failures=None, sealed=None, instance=raw, streaming=True)
    head, tail = TEMPLATES.get_template("audit.html").render(ctx).split(STREAM_MARK, 1)
    url = request.app.state.db_url
    done: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        # A verification of every instance takes a while: it runs on its own Engine (the request's
        # Engine goes back to the pool) and reports each instance checked.
        from engine import Engine

        eng = Engine(url)
        try:
            result = Auditor(eng).verify(ids, replay=replay, progress=lambda n, total: done.put(("step", (n, total))))
            done.put(("result", result))
        except EngineError as exc:
            done.put(("error", exc.message))
        except Exception:  # noqa: BLE001 - the page says so; the log has the details
            log.exception("verify from the audit page failed")
            done.put(("error", "internal error; the server log has the details"))
        finally:
            eng.close()

    def body() -> Any:
        threading.Thread(target=work, name="tigao-page-verify", daemon=True).start()
        yield head
        shown = 0.0
        while True:
            kind, value = done.get()
            if kind == "step":
                n, total = value
                if n == total or n / max(total, 1) - shown >= 0.05:  # about twenty lines at most
                    shown = n / max(total, 1)
                    yield (f'<div class="small muted" data-progress="{n}">'
                           f"{escape(page._('Checked %(n)s of %(total)s instances', n=n, total=total))}</div>\n")
                continue
            if kind == "error":
                yield f'<div class="flash bad" role="alert" data-testid="verify-result">{escape(value)}</div>'
            else:
                checked, failures = value
                yield TEMPLATES.get_template("_verify_result.html").render({**ctx, "checked": checked,
                                                                            "failures": failures})
            break
        yield tail

    return StreamingResponse(body(), media_type="text/html; charset=utf-8")


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
