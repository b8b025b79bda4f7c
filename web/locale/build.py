"""Write the message catalogs: extract every message (Babel), merge the translations, write .po.

    python web/locale/build.py          # writes web/locale/zh_Hant/LC_MESSAGES/messages.po
    python web/locale/build.py --check  # exit 1 if a message lacks a translation or the .po is stale
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

HERE = Path(__file__).resolve().parent
WEB = HERE.parent
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}}
KEYWORDS = {"_": None, "N_": None}


def messages() -> list[str]:
    found: dict[str, None] = {}
    for _file, _line, msg, _comments, _ctx in extract_from_dir(str(WEB), METHODS, OPTIONS, KEYWORDS):
        text = msg if isinstance(msg, str) else msg[0]
        if text:
            found.setdefault(text)
    return sorted(found)


def build() -> tuple[bytes, list[str]]:
    sys.path.insert(0, str(HERE))
    from zh_Hant import ZH

    cat = Catalog(locale="zh_Hant", project="Tigao", charset="utf-8", fuzzy=False,
                  header_comment="# The web pages of Tigao in Traditional Chinese. Written by web/locale/build.py "
                                 "from web/locale/zh_Hant.py:\n# edit that file, not this one.")
    missing = []
    for m in messages():
        if m not in ZH:
            missing.append(m)
        cat.add(m, ZH.get(m, ""))
    buf = io.BytesIO()
    write_po(buf, cat, omit_header=False, sort_output=True, width=100)
    lines = [ln for ln in buf.getvalue().decode("utf-8").splitlines(keepends=True)
             if not ln.startswith(('"POT-Creation-Date', '"PO-Revision-Date', '"Generated-By'))]
    return "".join(lines).encode("utf-8"), missing


def main() -> int:
    data, missing = build()
    target = HERE / "zh_Hant" / "LC_MESSAGES" / "messages.po"
    if "--check" in sys.argv:
        stale = not target.is_file() or target.read_bytes() != data
        for m in missing:
            print(f"no translation: {m!r}")
        if stale:
            print(f"{target} is out of date: run python web/locale/build.py")
        return 1 if missing or stale else 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    for m in missing:
        print(f"no translation: {m!r}")
    print(f"wrote {target} ({'%d missing' % len(missing) if missing else 'complete'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
