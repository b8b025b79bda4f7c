"""A database made by the previous release (tests/data/previous/) upgrades, verifies and runs on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from campaign_support import drive
from campaign.demo import ORG as CAMPAIGN_ORG
from conftest import ORG
from engine import Engine, Worker
from engine.audit import Auditor
from engine.prune import task_count
from storage.models import Definition, Instance

PREVIOUS = Path(__file__).parent / "data" / "previous" / "tigao.db"
ANSWERS = {"approve": True, "ok": True}


def _copy(tmp_path: Path) -> str:
    path = tmp_path / "previous.db"
    shutil.copyfile(PREVIOUS, path)
    return str(path)


def _sample(engine: Engine, t: Any) -> dict[str, Any]:
    props = (engine.task_form(t.id) or {}).get("properties", {})
    sample = {"boolean": True, "integer": 1, "number": 1, "string": "x"}
    data = {k: sample.get(v.get("type"), "x") for k, v in props.items()}
    return {**data, **{k: v for k, v in ANSWERS.items() if k in props or not props}}


def _who(engine: Engine, t: Any) -> str:
    if t.assignee:
        return str(t.assignee)
    if t.candidate_users:
        return str(t.candidate_users[0])
    d = engine.directory()
    return sorted(m for g in t.candidate_groups for m in d.group_members(g))[0]


def _run_to_end(engine: Engine, ids: list[int]) -> None:
    worker = Worker(engine, name="test")
    for _ in range(200):
        open_ = [t for t in engine.tasks(scope="all", limit=1000) if t.instance_id in ids]
        if open_:
            t = min(open_, key=lambda v: v.id)
            engine.complete(t.id, _who(engine, t), _sample(engine, t))
            continue
        nxt = worker.next_due()
        if nxt is None:
            return
        if nxt > engine.now():
            engine.set_clock(nxt)
        worker.run_once()
    raise AssertionError("the instances did not finish")


def _stored_tasks(engine: Engine) -> dict[int, int]:
    with engine._tx(read=True) as s:
        out = {}
        for inst in s.scalars(select(Instance)):
            built = engine._built(s.get(Definition, inst.definition_id))
            wf = engine.serializer.loads(inst.state, built.spec, built.subprocess_specs, engine.script_engine)
            out[inst.id] = task_count(wf)
        return out


def test_previous_release_database__upgrades_verifies_and_runs_to_completion(tmp_path: Path) -> None:
    url = _copy(tmp_path)
    engine = Engine(url)
    assert engine.init() == "upgraded"
    checked, failures = Auditor(engine).verify()
    assert failures == [] and checked == 10, failures
    before = _stored_tasks(engine)
    running = {i["id"]: i["key"] for i in engine.instances(status="running")}
    assert len(running) == 9
    # The diagrams' instances under their organisation, the complaints under the campaign's.
    engine.load_directory(ORG)
    _run_to_end(engine, [i for i, key in running.items() if key != "complaint"])
    engine.load_directory(CAMPAIGN_ORG)
    drive(engine, [i for i, key in running.items() if key == "complaint"])
    assert engine.instances(status="running") == []
    assert {i["id"] for i in engine.instances(status="completed")} >= set(running)
    assert Auditor(engine).verify()[1] == []
    # The loop six passes in: pruned at its next command, so it ends smaller than it began.
    assert _stored_tasks(engine)[2] < before[2]
    engine.close()
