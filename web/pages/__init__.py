"""The web app's pages, served by `tigao serve` at `/`: server-rendered HTML that works without JavaScript.

`install(app)` adds the page routers, the static files and the page error handling (an error on
a page is an HTML page in the user's language, never JSON and never a traceback).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .common import HERE, TEMPLATES
from .deps import LoginRequired

API_PREFIXES = ("/api/", "/engine-rest")
# Titles of error pages; the strings are in the message catalog (web/locale).
TITLES = {400: "Please check your input", 401: "Please log in", 403: "Not allowed", 404: "Not found",
          409: "Someone else changed this first", 422: "Please correct the form", 429: "Too many requests",
          503: "The database is not available"}


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES)


def install(app: FastAPI) -> None:
    from . import admin, audit, operations, public, session, tasks

    for module in (session, tasks, admin, audit, operations, public):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)


def error_page(request: Request, detail: str, status: int, details: list[str] | None = None) -> HTMLResponse:
    """An error on a page, as a page in the user's language (the API answers problem+json instead)."""
    from .common import Page

    page = Page(request, None, None, None)
    title = page._(TITLES.get(status, "Something went wrong"))
    t = TEMPLATES.get_template("error.html")
    html = t.render(gettext=page.tr.gettext, ngettext=page.tr.ngettext, _=page._, lang=page.lang,
                    languages={}, me=None, csrf="", unread=0, section=None, flashes=[], zone=page.tz.key,
                    now_text="", simulated=False, when=page.when, page=page, title=title, detail=detail,
                    details=[d for d in (details or []) if d and d != detail])
    return HTMLResponse(html, status_code=status)
