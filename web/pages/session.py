"""Logging in and out, and the home page (which sends each person where their work is)."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from engine.errors import EngineError
from engine.identity import Identity

from ..auth import SESSION_COOKIE, client_address, login
from .common import Page
from .deps import page_for, require_csrf

router = APIRouter()


def _safe_next(target: str | None) -> str:
    target = unquote(target or "")
    # Only a path on this site: never an absolute URL or a scheme-relative one.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/")
def home(page: Page = Depends(page_for)) -> Response:
    if page.me is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/tasks" if page.me.may_work else "/audit", status_code=303)


@router.get("/login")
def login_page(next: str | None = None, page: Page = Depends(page_for)) -> Response:  # noqa: A002
    return page.render("login.html", next=_safe_next(next), user="")


@router.post("/login")
async def login_post(request: Request, page: Page = Depends(page_for)) -> Response:
    form = await request.form()
    user = str(form.get("user") or "").strip()[:200]
    password = str(form.get("password") or "")[:1000]
    target = _safe_next(str(form.get("next") or "/"))
    identity = Identity(page.engine)
    try:
        if not user or not password:
            raise EngineError("give your user id and password")
        login(identity, user, password, client_address(request))
        cookie, _info = identity.create_session(user)
    except EngineError as exc:
        return page.render("login.html", status=401, error=page._("Wrong user or password.")
                           if "wrong" in exc.message else exc.message, next=target, user=user)
    resp = RedirectResponse(target if target != "/" else "/", status_code=303)
    resp.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.post("/logout")
async def logout(request: Request, page: Page = Depends(page_for)) -> Response:
    form = await request.form()
    cookie = request.cookies.get(SESSION_COOKIE)
    if page.me is not None and cookie:
        require_csrf(page, form)
        Identity(page.engine).end_session(cookie)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
