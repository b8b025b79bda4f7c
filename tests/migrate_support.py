"""What the migration tests share: a database with the test organisation plus an administrator
(`root`), versions deployed by root, and the check that verify and replay hold on a fresh engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conftest import ORG, set_simulated
from engine import Engine
from engine.audit import Auditor

ADMIN_EXTRA = """
[roles.admin]
name = "Administrator"

[users.root]
name = "Root"
department = "hq"
roles = ["admin"]
"""


def prepare(db_url: str, tmp_path: Path, bundles: Sequence[Sequence[Path]]) -> list[list[Any]]:
    """A simulated clock, the organisation with `root`, and each bundle deployed by root in turn;
    returns what each deployment reported."""
    set_simulated(db_url)
    org = tmp_path / "org.toml"
    org.write_text(ORG.read_text(encoding="utf-8") + ADMIN_EXTRA, encoding="utf-8")
    eng = Engine(db_url)
    try:
        eng.load_directory(org)
        return [eng.deploy(list(bundle), actor="root") for bundle in bundles]
    finally:
        eng.close()


def holds(url: str, iid: int) -> None:
    """verify (chain, projections, replay) and replay both hold, on a fresh engine."""
    n, failures = Auditor(Engine(url)).verify([iid])
    assert n == 1 and failures == [], failures
    assert Auditor(Engine(url)).replay(iid).ok


def task_id(url: str, iid: int, element: str) -> int:
    """The id of the instance's first task at `element` (any state)."""
    return next(t.id for t in Engine(url).tasks(instance_id=iid, scope="all") if t.element_id == element)
