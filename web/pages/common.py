"""What every page shares: the template environment, the language, the signed-in person, flashes.

Pages are server-rendered and work without JavaScript. Every state-changing form posts the
session's CSRF token in a hidden `csrf` field. A page's handler gets a `Page` (the request's
person, language, time zone and engine) and returns `page.render(template, **context)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from engine.timeutil import display_tz

from .. import i18n
from .vocabulary import EVENT_LABELS

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
TEMPLATES.install_null_translations(newstyle=True)  # real catalogs are passed per request
FLASH_COOKIE = "tigao_flash"


def _static(name: str) -> str:
    return f"/static/{name}"


def _parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _counted(items: list[str]) -> str:
    """["a", "b", "a"] -> "a ×2, b": repeated names (a task per department) read once with a count."""
    from collections import Counter

    return ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in Counter(items).items())


TEMPLATES.globals["static"] = _static
TEMPLATES.filters["counted"] = _counted
TEMPLATES.globals["event_label"] = lambda type_: EVENT_LABELS.get(type_, type_)
TEMPLATES.filters["parse_iso"] = _parse_iso
TEMPLATES.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2, sort_keys=True,
                                                           default=str)


@dataclass
class Me:
    """The signed-in person as the pages see them."""

    user: str
    name: str
    roles: list[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_auditor(self) -> bool:
        return "auditor" in self.roles

    @property
    def auditor_only(self) -> bool:
        return self.is_auditor and len(self.roles) == 1

    @property
    def may_work(self) -> bool:
        return not self.auditor_only


class Page:
    """One request as a page handler sees it."""

    def __init__(self, request: Request, engine: Any, me: Me | None, csrf: str | None):
        self.request = request
        self.engine = engine
        self.me = me
        self.csrf = csrf or ""
        cookie_lang = request.query_params.get("lang") or request.cookies.get("lang")
        self.lang = i18n.negotiate(cookie_lang, request.headers.get("accept-language"))
        self.tr = i18n.translations(self.lang)
        self.tz = display_tz()
        self.now: datetime | None = None
        self.simulated = False
        self._flashes: list[tuple[str, str]] = []

    def _(self, text: str, **kw: Any) -> str:
        s = self.tr.gettext(text)
        return s % kw if kw else s

    def when(self, dt: datetime | None, relative: bool = False) -> str:
        return i18n.when(dt, self.tz, self.lang, self.now, relative)

    def context(self, section: str | None = None, **ctx: Any) -> dict[str, Any]:
        """What every template is rendered with: the person, the language, the clock, the flashes."""
        if self.now is None:
            try:
                self.now = self.engine.now()
            except Exception:  # noqa: BLE001 - the footer's clock never breaks a page
                self.now = None
        self.simulated = bool(getattr(self.engine, "simulated", False))
        unread = 0
        if self.me is not None:
            try:
                unread = sum(1 for n in self.engine.notifications(self.me.user, unread_only=True))
            except Exception:  # noqa: BLE001
                unread = 0
        self._flashes = _read_flashes(self.request)
        return dict(gettext=self.tr.gettext, ngettext=self.tr.ngettext, _=self._, lang=self.lang,
                    languages=i18n.LANGUAGES, me=self.me, csrf=self.csrf, unread=unread, section=section,
                    flashes=self._flashes, zone=self.tz.key, now_text=self.when(self.now),
                    simulated=self.simulated, when=self.when, page=self, **ctx)

    def render(self, template: str, status: int = 200, section: str | None = None, **ctx: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(self.context(section, **ctx))
        resp = HTMLResponse(html, status_code=status)
        if self._flashes:
            resp.delete_cookie(FLASH_COOKIE, path="/")
        if self.request.query_params.get("lang") in i18n.LANGUAGES:
            resp.set_cookie("lang", self.lang, max_age=365 * 86400, samesite="lax", httponly=True, path="/")
        return resp

    def redirect(self, url: str, flash: tuple[str, str] | None = None) -> RedirectResponse:
        resp = RedirectResponse(url, status_code=303)
        if flash:
            resp.set_cookie(FLASH_COOKIE, quote(json.dumps([flash], ensure_ascii=False)), max_age=60,
                            samesite="lax", httponly=True, path="/")
        return resp


def _read_flashes(request: Request) -> list[tuple[str, str]]:
    from urllib.parse import unquote

    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        items = json.loads(unquote(raw))
        return [(str(k), str(v)) for k, v in items if k in ("ok", "bad", "info")][:5]
    except (ValueError, TypeError):
        return []


def svg(markup: str) -> Markup:
    """An SVG drawn by our own renderer (every label escaped there) placed into a page."""
    return Markup(markup)
