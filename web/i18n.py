"""The interface's languages: Traditional Chinese and English, through Babel message catalogs.

Source strings are English; `web/locale/<locale>/LC_MESSAGES/messages.po` holds each
translation. The catalogs are read from the `.po` files when first needed (no compiled `.mo`
files to keep in step). A request's language is the `lang` cookie (the switch in the header),
else the best match of the browser's `Accept-Language`, else Traditional Chinese, the
bureau's language.
"""

from __future__ import annotations

import gettext
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_datetime, format_timedelta
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"zh_Hant": "繁體中文", "en": "English"}
DEFAULT = "zh_Hant"


class _Catalog(gettext.NullTranslations):
    def __init__(self, messages: dict[str, str], plurals: dict[str, tuple[str, ...]]):
        super().__init__()
        self._messages = messages
        self._plurals = plurals

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        forms = self._plurals.get(msgid1)
        if forms:
            return forms[0] if len(forms) == 1 or n == 1 else forms[1]
        return msgid1 if n == 1 else msgid2


@lru_cache(maxsize=None)
def translations(locale: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale not in LANGUAGES or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id or not m.string:
            continue
        if isinstance(m.id, tuple):
            strings = tuple(s for s in m.string if s)
            if strings:
                plurals[m.id[0]] = strings
        else:
            messages[m.id] = str(m.string)
    return _Catalog(messages, plurals)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The locale for a request: the user's choice, else the browser's, else the default."""
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    for tag, _q in _accepted(accept_language or ""):
        tag = tag.lower()
        if tag.startswith("zh"):
            return "zh_Hant"  # the only Chinese we have; Simplified readers read it too
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def _accepted(header: str) -> list[tuple[str, float]]:
    out = []
    for part in header.split(",")[:20]:
        bits = part.strip().split(";")
        tag = bits[0].strip()
        q = 1.0
        for b in bits[1:]:
            if b.strip().startswith("q="):
                try:
                    q = float(b.strip()[2:])
                except ValueError:
                    q = 0.0
        if tag and tag != "*":
            out.append((tag, q))
    return sorted(out, key=lambda x: -x[1])


def babel_locale(locale: str) -> str:
    return "zh_Hant_TW" if locale == "zh_Hant" else "en_GB"


def when(dt: datetime | None, tz: Any, locale: str, now: datetime | None = None, relative: bool = False) -> str:
    """A time in the display zone, the zone named; `relative` adds "in 2 days" / "3 hours ago"."""
    if dt is None:
        return ""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    local = dt.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M")
    if relative and now is not None:
        text += f" ({ago(dt, now, locale)})"
    return text


def ago(dt: datetime, now: datetime, locale: str) -> str:
    delta = dt - now
    return format_timedelta(delta, add_direction=True, threshold=1.1, locale=babel_locale(locale))


def long_date(dt: datetime, tz: Any, locale: str) -> str:
    return format_datetime(dt.astimezone(tz), "medium", tzinfo=tz, locale=babel_locale(locale))
