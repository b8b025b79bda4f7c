"""A database whose states are in parts with the head listing every workflow's tasks (the layout
of format 2 written before subprocesses became parts of their own, tests/data/parts_v2/) loads,
verifies, and runs on; each state moves to the current layout at its next command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaign.demo import ORG as CAMPAIGN_ORG
from campaign_support import drive
from conftest import ORG, scratch_pg_database
from engine import Engine
from engine.audit import Auditor
from storage.models import Instance, StatePart
from test_previous_db import _copy_to_postgres, _run_to_end, _sample, _who

LISTED = Path(__file__).parent / "data" / "parts_v2" / "tigao.db"
LISTED_HEAD = "0015"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def listed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        path = tmp_path / "listed.db"
        shutil.copyfile(LISTED, path)
        yield str(path)
        return
    request.getfixturevalue("pg_template")
    with scratch_pg_database("tigao_listed") as url:
        _copy_to_postgres(url, LISTED, LISTED_HEAD)
        yield url


def _heads(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine._tx(read=True) as s:
        return {i.id: json.loads(i.state_head) for i in s.scalars(select(Instance))}


def test_listed_parts_database__verifies_and_runs_to_completion_in_the_current_layout(listed_url: str) -> None:
    engine = Engine(listed_url)
    engine.init()
    heads = _heads(engine)
    assert all("tigao_parts" in h for h in heads.values())  # the test data is what it says
    with_subprocess = [i for i, h in heads.items() if h["subprocesses"]]
    assert with_subprocess, "the test data holds instances inside a subprocess"
    checked, failures = Auditor(engine).verify()
    assert failures == [] and checked == 10, failures
    # A task of an instance in a subprocess: the state moves to the current layout.
    iid = with_subprocess[0]
    engine.load_directory(ORG)
    [t] = engine.tasks(scope="all", instance_id=iid)[:1]
    data = engine.task_data(t.id)
    engine.complete(t.id, _who(engine, t), _sample(engine, t))
    head = _heads(engine)[iid]
    assert "tigao_parts" not in head and "tigao_layout" in head and head["subprocesses"] == {}
    with engine._tx(read=True) as s:
        parts = set(s.scalars(select(StatePart.part).where(StatePart.instance_id == iid)))
    layout = head["tigao_layout"]
    assert parts == set(layout["tasks"]) | {"@" + sp for sp in layout["subprocesses"]} | {
        tid for sp in layout["subprocesses"]
        for tid in json.loads(_part(engine, iid, "@" + sp))["tigao_tasks"]}
    assert isinstance(data, dict)
    # Every other instance runs to its end from the listed layout; the history still verifies.
    running = {i["id"]: i["key"] for i in engine.instances(status="running")}
    _run_to_end(engine, [i for i, key in running.items() if key != "complaint"])
    engine.load_directory(CAMPAIGN_ORG)
    drive(engine, [i for i, key in running.items() if key == "complaint"])
    assert engine.instances(status="running") == []
    assert Auditor(engine).verify()[1] == []
    engine.close()


def _part(engine: Engine, iid: int, key: str) -> str:
    with engine._tx(read=True) as s:
        return s.scalar(select(StatePart.body).where(StatePart.instance_id == iid, StatePart.part == key))
