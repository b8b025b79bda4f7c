"""The public's pages: file a case without an account (/public/{key}) and follow it (/track/{code})."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.errors import FormError, NotFound, TooManyRequests
from engine.public import PublicDesk

from .. import formrender
from ..auth import client_address
from .common import Page
from .deps import page_for

router = APIRouter()
MAX_BODY = 64 * 1024  # a public form is a few fields of text


@router.get("/public")
def public_index(page: Page = Depends(page_for)) -> Response:
    return page.render("public_index.html", offers=PublicDesk(page.engine).offers())


@router.get("/public/{key}")
def public_form(key: str, page: Page = Depends(page_for)) -> Response:
    ps, form = PublicDesk(page.engine).offer(key)
    return page.render("public_form.html", ps=ps, schema=form,
                       fields=formrender.build_fields(form, None, {}, tz=page.tz))


@router.post("/public/{key}")
async def public_submit(key: str, request: Request, page: Page = Depends(page_for)) -> Response:
    desk = PublicDesk(page.engine)
    ps, form = desk.offer(key)
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise TooManyRequests("the form is too large; keep it to a few paragraphs", retry_after=0)
    posted = await request.form()
    data, raw, errors = formrender.parse_submission(form, posted, page.tz)
    if not errors:
        try:
            code = desk.submit(key, data, client_address(request))
        except FormError as exc:
            errors = formrender.errors_by_name(exc.errors)
        except TooManyRequests as exc:
            return page.render("public_form.html", status=429, ps=ps, schema=form, error=exc.message,
                               fields=formrender.build_fields(form, None, {}, raw=raw, tz=page.tz))
        else:
            return page.render("public_done.html", ps=ps, code=code, status=201)
    return page.render("public_form.html", status=422, ps=ps, schema=form,
                       fields=formrender.build_fields(form, None, {}, errors=errors, raw=raw, tz=page.tz))


@router.get("/track")
def track_form(code: str | None = None, page: Page = Depends(page_for)) -> Response:
    if code:
        return page.redirect(f"/track/{code.strip()[:40]}")
    return page.render("track.html", case=None, code="")


@router.get("/track/{code}")
def track(code: str, page: Page = Depends(page_for)) -> Response:
    try:
        case = PublicDesk(page.engine).track(code)
    except NotFound:
        return page.render("track.html", status=404, case=None, code=code[:40],
                           error=page._("No case has that tracking code. Check it and try again."))
    return page.render("track.html", case=case, code=case["code"])
