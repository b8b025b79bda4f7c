"""Audit: the hash chain, seals, verify, replay and export, against tampering of every kind."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli import main
from conftest import BPMN, T0
from engine import Engine, Worker
from engine.audit import Auditor, merkle_root, read_audit_file, seal_leaf, verify_file
from engine.history import GENESIS, canonical, chain_hash
from helpers import complete, task_by_element
from storage import triggers
from storage.db import normalise_url

DATA = Path(__file__).parent / "data" / "histories"


def _raw(url: str, *statements: str) -> None:
    """Tamper as someone with direct database access would: triggers off, then raw SQL."""
    sa = create_engine(normalise_url(url))
    with sa.begin() as c:
        if sa.dialect.name == "postgresql":
            c.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        else:
            c.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
            c.execute(text("DROP TRIGGER IF EXISTS events_no_delete"))
        for st in statements:
            c.execute(text(st))
        # put the triggers back, as a careful intruder would (verify reports missing ones)
        triggers.restore(c)
    sa.dispose()


def _run_loop(engine: Engine) -> int:
    iid = engine.start("loop_back", actor="alice")
    complete(engine, iid, "Task_draft", {"text": "v1"})
    complete(engine, iid, "Task_review", {"approve": False}, user="carol")
    complete(engine, iid, "Task_draft", {"text": "v2"})
    complete(engine, iid, "Task_review", {"approve": True}, user="carol")
    return iid


# ----------------------------------------------------------------------------- the record
def test_chain__every_event_links_to_the_one_before(engine: Engine) -> None:
    iid = _run_loop(engine)
    events = engine.history(iid)
    prev = GENESIS
    for e in events:
        assert e.prev_hash == prev
        body = {"instance": e.instance_id, "seq": e.seq, "at": e.at.isoformat(timespec="microseconds"),
                "actor": e.actor, "type": e.type, "element": e.element_id, "task": e.task_id,
                "definition": e.definition_id, "payload": e.payload}
        assert e.hash == chain_hash(prev, body)
        prev = e.hash


def test_canonical_json__sorted_keys_utf8_no_whitespace() -> None:
    assert canonical({"b": 1, "a": "效能"}) == '{"a":"效能","b":1}'.encode("utf-8")


def test_events__update_and_delete_are_refused_by_the_database(engine: Engine, db_url: str) -> None:
    iid = _run_loop(engine)
    sa = create_engine(normalise_url(db_url))
    for st in (f"UPDATE events SET actor = 'mallory' WHERE instance_id = {iid}",
               f"DELETE FROM events WHERE instance_id = {iid}"):
        with pytest.raises(Exception) as info:
            with sa.begin() as c:
                c.execute(text(st))
        assert "append-only" in str(info.value)
    sa.dispose()
    assert Auditor(engine).verify()[1] == []


# ----------------------------------------------------------------------------- tampering
def test_verify__changed_payload__names_instance_and_sequence(engine: Engine, db_url: str) -> None:
    iid = _run_loop(engine)
    other = _run_loop(engine)
    ev = [e for e in engine.history(iid) if e.type == "task_completed"][1]
    payload = dict(ev.payload, data={"approve": True})
    _raw(db_url, f"UPDATE events SET payload = '{json.dumps(payload)}' WHERE id = {ev.id}")
    n, failures = Auditor(engine).verify()
    assert n == 2
    assert len(failures) == 1
    f = failures[0]
    assert (f.instance_id, f.seq, f.kind) == (iid, ev.seq, "hash mismatch")
    assert other != iid


def test_verify__deleted_middle_event__is_a_gap(engine: Engine, db_url: str) -> None:
    iid = _run_loop(engine)
    _raw(db_url, f"DELETE FROM events WHERE instance_id = {iid} AND seq = 4")
    failures = Auditor(engine).verify([iid])[1]
    assert [(f.seq, f.kind) for f in failures] == [(4, "gap")]


def test_verify__removed_tail_after_a_seal__is_detected_even_with_the_instance_row_rewound(engine: Engine,
                                                                                           db_url: str) -> None:
    iid = _run_loop(engine)
    events = engine.history(iid)
    seal_id, root, n = Auditor(engine).seal("erin")
    assert n == 1 and len(root) == 64
    last, before = events[-1], events[-2]
    _raw(db_url, f"DELETE FROM events WHERE id = {last.id}",
         f"UPDATE instances SET last_seq = {before.seq}, last_hash = '{before.hash}' WHERE id = {iid}")
    failures = Auditor(engine).verify([iid], replay=False)[1]
    assert [(f.instance_id, f.seq, f.kind) for f in failures] == [(iid, last.seq, "tail removed")]


def test_verify__changed_stored_state__replay_reports_divergence(engine: Engine, db_url: str) -> None:
    iid = engine.start("user_task", actor="alice")
    complete(engine, iid, "Task_fill", {"name": "honest"})
    sa = create_engine(normalise_url(db_url))
    with sa.begin() as c:
        # The task's data is in a part of the state (state_parts), the head in instances.state.
        body = c.execute(text("SELECT body FROM state_parts WHERE instance_id = :i AND body LIKE :h"),
                         {"i": iid, "h": '%"honest"%'}).scalar_one()
        c.execute(text("UPDATE state_parts SET body = :b WHERE instance_id = :i AND body = :old"),
                  {"b": body.replace('"honest"', '"forged"'), "i": iid, "old": body})
    sa.dispose()
    assert '"forged"' in body.replace('"honest"', '"forged"')
    failures = Auditor(engine).verify([iid])[1]
    assert [f.kind for f in failures] == ["replay divergence"]
    result = CliRunner().invoke(main, ["--db", db_url, "verify", str(iid)])
    assert result.exit_code == 11
    assert f"instance {iid}" in result.output and "replay divergence" in result.output


def test_seal__root_is_the_merkle_root_of_the_heads(engine: Engine) -> None:
    a, b = _run_loop(engine), _run_loop(engine)
    _, root, _ = Auditor(engine).seal("erin")
    heads = [(i, engine.instance(i)["events"], engine.history(i)[-1].hash) for i in (a, b)]
    assert root == merkle_root([seal_leaf(*h) for h in heads])


# ----------------------------------------------------------------------------- replay
def test_replay__step_by_step__shows_state_and_changes(engine: Engine) -> None:
    iid = _run_loop(engine)
    r = Auditor(engine).replay(iid)
    assert r.ok and r.matches_stored
    completed = [s for s in r.steps if s.type == "task_completed"]
    assert [s.changed for s in completed] == [{"text": "v1"}, {"approve": False}, {"text": "v2"}, {"approve": True}]
    assert completed[0].open_tasks == ["Review the draft"]  # by name, not element id


def test_replay__after_redeploy__uses_the_version_the_instance_ran_on(engine: Engine, tmp_path: Path) -> None:
    iid = engine.start("user_task", actor="alice")
    shutil.copytree(BPMN / "forms", tmp_path / "forms")
    changed = (BPMN / "user_task.bpmn").read_text(encoding="utf-8").replace(
        'id="Task_fill"', 'id="Task_fill" camunda:priority="90"', 1)
    (tmp_path / "user_task.bpmn").write_text(changed, encoding="utf-8")
    assert engine.deploy([tmp_path / "user_task.bpmn"])[0].version == 2
    complete(engine, iid, "Task_fill", {"name": "x"})
    r = Auditor(engine).replay(iid)
    assert r.ok and r.matches_stored


def test_replay__timers_use_the_recorded_times(engine: Engine) -> None:
    late = engine.start("timers", actor="alice")
    on_time = engine.start("timers", actor="bob")
    complete(engine, on_time, "Task_wait", {"ok": True})
    engine.advance_clock(timedelta(days=6))
    Worker(engine).run_once()  # the boundary timer of `late`
    complete(engine, late, "Task_late", {"ok": True})
    engine.set_clock(T0 + timedelta(days=7000))
    Worker(engine).run_once()  # the 2030 date timer of `on_time`
    for iid in (late, on_time):
        assert engine.instance(iid)["status"] == "completed"
        r = Auditor(engine).replay(iid)
        assert r.ok and r.matches_stored
        fired = [s for s in r.steps if s.type == "timer_fired"]
        assert len(fired) == 1 and fired[0].at > T0


def test_replay__cycle_timers_and_message_starts(engine: Engine) -> None:
    a = engine.start("cycle_boundary", actor="alice")
    b = engine.message("complaint", {"text": "bus late"}, actor="bob")["started"][0]
    engine.advance_clock(timedelta(days=200))
    Worker(engine).run_once()
    for iid in (a, b):
        r = Auditor(engine).replay(iid)
        assert r.ok and r.matches_stored, r.divergence


# ----------------------------------------------------------------------------- export
def test_export__wipe__replay_from_file_gives_the_same_states_at_every_step(engine: Engine, db_url: str,
                                                                           tmp_path: Path) -> None:
    ids = [_run_loop(engine), engine.start("timers", actor="alice")]
    engine.advance_clock(timedelta(days=6))
    Worker(engine).run_once()
    Auditor(engine).seal("erin")
    live = {i: Auditor(engine).replay(i).steps for i in ids}
    for fmt_ in ("jsonl", "csv"):
        out = tmp_path / f"audit.{fmt_}"
        result = CliRunner().invoke(main, ["--db", db_url, "export", "--all", "--format", fmt_, "--out", str(out)])
        assert result.exit_code == 0, result.output
        # Another machine: nothing but the file (no database at all is needed to replay it).
        results = verify_file(read_audit_file(out))
        assert all(getattr(r, "ok", False) for r in results), results
        for r in results:
            assert [(s.seq, s.open_tasks, s.data) for s in r.steps] == \
                   [(s.seq, s.open_tasks, s.data) for s in live[r.instance_id]]
    empty = tmp_path / "empty.db"
    assert CliRunner().invoke(main, ["--db", str(empty), "init"]).exit_code == 0
    result = CliRunner().invoke(main, ["--db", str(empty), "replay", "--from-file", str(tmp_path / "audit.jsonl")])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok: the replayed state equals the stored state") == 2


# ----------------------------------------------------------------------------- saved histories
def _saved() -> list[Path]:
    return sorted(DATA.glob("*.jsonl"))


@pytest.mark.parametrize("path", [p for p in _saved() if "diverges" not in p.name], ids=lambda p: p.name)
def test_saved_history__replays_to_its_recorded_state(path: Path) -> None:
    results = verify_file(read_audit_file(path))
    assert results and all(getattr(r, "ok", False) for r in results), results


def test_saved_history__that_diverges_on_purpose__is_reported() -> None:
    path = DATA / "diverges_on_purpose.jsonl"
    results = verify_file(read_audit_file(path))
    bad = [r for r in results if not getattr(r, "ok", False)]
    assert bad, "the doctored history must not verify"
    assert "replay divergence" in str(getattr(bad[0], "divergence", bad[0]))


# ----------------------------------------------------------------------------- auditors
def test_auditor__may_read_and_verify_but_not_act(engine: Engine, db_url: str) -> None:
    iid = _run_loop(engine)
    runner = CliRunner()
    for args in (["history", str(iid)], ["verify", "--all", "--as", "erin"], ["replay", str(iid), "--as", "erin"],
                 ["export", str(iid), "--as", "erin"], ["audit", "seal", "--as", "erin"]):
        result = runner.invoke(main, ["--db", db_url, *args])
        assert result.exit_code == 0, (args, result.output)
    t = engine.start("user_task", actor="alice")
    task = task_by_element(engine, t, "Task_fill")
    result = runner.invoke(main, ["--db", db_url, "complete", str(task.id), "--as", "erin", "--data", '{"name":"x"}'])
    assert result.exit_code == 7 and "auditor" in result.output


# ----------------------------------------------------------------------------- replay --step
def test_replay__step__shows_call_activity_and_subprocess_data(engine: Engine, db_url: str) -> None:
    call = engine.start("call_parent", data={"x": 1}, actor="alice")
    sub = engine.start("subprocess", data={"y": 2}, actor="alice")
    first = Auditor(engine).replay(call).steps[0]
    assert first.subprocesses == {"Call_child": {"x": 1}}
    assert first.changed == {"x": 1, "Call_child/x": 1}
    assert first.open_tasks == ["Fill in the child form"]
    complete(engine, sub, "Task_inner", {"name": "Bo"})
    steps = Auditor(engine).replay(sub).steps
    done = next(s for s in steps if s.type == "task_completed")
    assert done.changed == {"name": "Bo", "greeting": "Hello, Bo", "Sub_inner/y": None}  # the subprocess ended
    assert steps[0].changed == {"y": 2, "Sub_inner/y": 2}
    result = CliRunner().invoke(main, ["--db", db_url, "replay", str(call), "--step", "1"])
    assert result.exit_code == 0, result.output
    assert 'data in Call_child: {"x": 1}' in result.output
    assert "open tasks: Fill in the child form" in result.output


def test_replay__step_past_the_end__says_how_many_steps_there_are(engine: Engine, db_url: str) -> None:
    iid = _run_loop(engine)
    n = engine.instance(iid)["events"]
    runner = CliRunner()
    for step in (n + 1, 99, 0, -1):
        result = runner.invoke(main, ["--db", db_url, "replay", str(iid), "--step", str(step)])
        assert result.exit_code == 3, result.output
        assert f"no step {step}: instance {iid} has {n} steps; give --step 1 to {n}" in result.output
    result = runner.invoke(main, ["--db", db_url, "replay", str(iid), "--step", str(n), "--json"])
    assert result.exit_code == 0 and [s["seq"] for s in json.loads(result.stdout)["steps"]] == [n]
