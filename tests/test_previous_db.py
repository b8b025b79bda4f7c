"""A database made by the previous release (tests/data/previous/) upgrades, verifies and runs on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, MetaData, create_engine, select, text

from campaign_support import drive
from campaign.demo import ORG as CAMPAIGN_ORG
from conftest import ORG, scratch_pg_database
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


PREVIOUS_HEAD = "0012"  # the schema revision of the previous release


def _copy_to_postgres(url: str, source: Path = PREVIOUS, head: str = PREVIOUS_HEAD) -> None:
    """The rows of a checked-in SQLite database (default: the previous release's), as they are, in
    a PostgreSQL database at its schema `head`."""
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS

    pg = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with pg.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, head)
    old = create_engine(f"sqlite:///{source}")
    meta = MetaData()
    meta.reflect(old)
    target = MetaData()
    target.reflect(pg)
    with old.connect() as src, pg.begin() as dst:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [dict(r._mapping) for r in src.execute(table.select())]
            if rows:
                dst.execute(target.tables[table.name].insert(), rows)
            if "id" in table.c and rows and isinstance(table.c.id.type, Integer):
                # ids given explicitly: move the sequence past them
                dst.execute(text(f"SELECT setval(seq, top) FROM (SELECT pg_get_serial_sequence('{table.name}', "
                                 f"'id') AS seq, (SELECT max(id) FROM {table.name}) AS top) AS x "
                                 "WHERE seq IS NOT NULL"))
    old.dispose()
    pg.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def previous_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield _copy(tmp_path)
        return
    request.getfixturevalue("pg_template")  # skips (or fails under TIGAO_REQUIRE_PG=1) without a server
    with scratch_pg_database("tigao_prev") as url:
        _copy_to_postgres(url)
        yield url


def test_previous_release_database__upgrades_verifies_and_runs_to_completion(previous_url: str) -> None:
    url = previous_url
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


def test_downgrade_to_the_previous_release__puts_each_state_back_in_one_column(previous_url: str) -> None:
    """`tigao downgrade 0012 --yes` (going back to the previous release): every state in parts is
    put back together in `instances.state`; upgraded again, the instances verify and run on."""
    import json

    from click.testing import CliRunner

    from cli import main
    from storage.db import make_engine, normalise_url
    from storage.schema import SCHEMA_REVISION

    url = previous_url
    engine = Engine(url)
    engine.init()
    engine.load_directory(ORG)
    running = [i["id"] for i in engine.instances(status="running") if i["key"] != "complaint"]
    t = min((t for t in engine.tasks(scope="all", limit=1000) if t.instance_id in running), key=lambda v: v.id)
    engine.complete(t.id, _who(engine, t), _sample(engine, t))  # at least one state now in parts
    with engine._tx(read=True) as s:
        expected = {i.id: json.loads(i.state)["tasks"].keys() for i in s.scalars(select(Instance))}
        assert 2 in {i.state_format for i in s.scalars(select(Instance))}
    engine.close()
    runner = CliRunner()
    refused = runner.invoke(main, ["--db", url, "downgrade", PREVIOUS_HEAD])
    assert refused.exit_code != 0 and "--yes" in refused.output
    unknown = runner.invoke(main, ["--db", url, "downgrade", "0999", "--yes"])
    assert unknown.exit_code != 0 and "no schema revision '0999'" in unknown.output
    assert "Traceback" not in unknown.output
    done = runner.invoke(main, ["--db", url, "downgrade", PREVIOUS_HEAD, "--yes"])
    assert done.exit_code == 0, done.output
    assert f"from {SCHEMA_REVISION} to {PREVIOUS_HEAD}" in done.output
    sa = make_engine(normalise_url(url))
    with sa.connect() as conn:
        tables = set(conn.dialect.get_table_names(conn))
        assert "state_parts" not in tables
        columns = {c["name"] for c in conn.dialect.get_columns(conn, "instances")}
        assert "state_changes" not in columns
        for iid, fmt, state in conn.execute(text("SELECT id, state_format, state FROM instances")):
            whole = json.loads(state)
            assert fmt == 1 and "tigao_parts" not in whole and "tigao_layout" not in whole
            assert whole["tasks"].keys() == expected[iid]  # every task of the state, back in its place
    sa.dispose()
    engine = Engine(url)
    assert engine.init() == "upgraded"
    assert Auditor(engine).verify()[1] == []  # each replay ends in the state stored
    _run_to_end(engine, running)
    assert Auditor(engine).verify()[1] == []
    engine.close()
