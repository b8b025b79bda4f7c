"""How a page learns who is asking: the session cookie set at /login, and the form's CSRF token.

Pages use the same sessions as the API (`POST /api/v1/session`), but a browser form cannot set a
header, so a state-changing page form carries the session's CSRF token in a hidden `csrf` field
instead of the `X-CSRF-Token` header the API asks for.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request

from engine.errors import EngineError, NotAllowed
from engine.identity import Identity

from ..auth import SESSION_COOKIE
from ..deps import EngineDep
from .common import Me, Page


class LoginRequired(Exception):
    """Raised by a page dependency when nobody is signed in: the app redirects to /login."""

    def __init__(self, next_url: str):
        self.next_url = next_url


def _me(engine: Any, request: Request) -> tuple[Me | None, str | None]:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None, None
    try:
        info = Identity(engine).session(cookie)
    except EngineError:
        return None, None
    person = engine.directory().users.get(info.user)
    if person is None:
        return None, None
    return Me(info.user, person.name, list(person.roles)), info.csrf


def page_for(request: Request, engine: EngineDep) -> Page:
    """A page anyone may see (the public hotline, the login page)."""
    me, csrf = _me(engine, request)
    return Page(request, engine, me, csrf)


def signed_in(request: Request, page: Page = Depends(page_for)) -> Page:
    """A page for signed-in directory users; others are sent to /login and brought back."""
    if page.me is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe=""))
    return page


def require_csrf(page: Page, form: Any) -> None:
    sent = str(form.get("csrf") or "")
    if not page.csrf or not sent or not secrets.compare_digest(sent, page.csrf):
        raise NotAllowed("this form has expired or did not come from this site; reload the page and try again")


def require_admin(page: Page) -> None:
    if page.me is None or not page.me.is_admin:
        raise NotAllowed("only an administrator may do this")


async def admin_form(page: Page, request: Any) -> Any:
    """The submitted form of an administrator's action, after the role and CSRF checks."""
    require_admin(page)
    form = await request.form()
    require_csrf(page, form)
    assert page.me is not None
    return form


def require_reader_of_audit(page: Page) -> None:
    if page.me is None or not (page.me.is_admin or page.me.is_auditor):
        raise NotAllowed("only an auditor or an administrator may do this")


async def run_command(page: Page, command: Any) -> Any:
    """Run a command that changes state (`command(engine)`) as the API does (web/deps.py
    `Commands`: in the server's group commit when it is on) on a worker thread, so that the event
    loop serves other requests while this one waits for its commit."""
    from starlette.concurrency import run_in_threadpool

    from ..deps import Commands

    commands = Commands(page.engine, getattr(page.request.app.state, "group", None))
    return await run_in_threadpool(commands.run, command)
