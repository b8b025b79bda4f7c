"""The interface's words: every message has its Traditional Chinese translation, and the catalog is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from web import i18n

ROOT = Path(__file__).resolve().parent.parent


def test_catalog__every_message_translated_and_po_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "web" / "locale" / "build.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_negotiate__cookie_then_browser_then_default() -> None:
    assert i18n.negotiate("en", "zh-TW") == "en"
    assert i18n.negotiate(None, "en-US,en;q=0.9,zh;q=0.5") == "en"
    assert i18n.negotiate(None, "fr-FR, zh-HK;q=0.8") == "zh_Hant"
    assert i18n.negotiate("xx", "de") == "zh_Hant"
    assert i18n.translations("zh_Hant").gettext("My tasks") == "我的待辦"
