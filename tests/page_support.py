"""What the page tests share: a database with the test organisation and diagrams, passwords, a client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine import Engine
from engine.identity import Identity

HERE = Path(__file__).parent
BPMN = HERE / "bpmn"
PASSWORD = "correct horse battery"
# The test organisation plus an administrator.
ADMIN_EXTRA = """
[roles.admin]
name = "Administrator"

[users.ada]
name = "Ada"
department = "hq"
roles = ["admin"]
"""


def org_with_admin(folder: Path) -> Path:
    path = folder / "org.toml"
    path.write_text((BPMN / "org.toml").read_text(encoding="utf-8") + ADMIN_EXTRA, encoding="utf-8")
    return path


def prepare(url: str, org: Path, deploy: list[Path] | None = None,
            simulated: str | None = "2012-03-01T09:00:00+08:00") -> Engine:
    from engine.timeutil import parse_datetime

    e = Engine(url)
    e.init(simulated=parse_datetime(simulated) if simulated else None)
    e.load_directory(org)
    ident = Identity(e)
    for user in e.directory().users:
        ident.set_password(user, PASSWORD)
    admin = next((u for u, p in e.directory().users.items() if "admin" in p.roles), None)
    e.deploy(deploy or [BPMN], actor=admin)
    return e


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: Any, user: str, password: str = PASSWORD) -> None:
    r = client.post("/login", data={"user": user, "password": password, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
