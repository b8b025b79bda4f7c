"""Tampering as someone who can write the database would, in each way the README's table lists,
on SQLite and PostgreSQL: every detected case names the instance and the sequence number, and the
cases the table says go unnoticed without an outside anchor do go unnoticed (so the table is true).
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import timedelta
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BPMN, ORG, PG_URL, T0, _admin_url, scratch_pg_database, set_simulated
from helpers import complete, task_by_element
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.engine import Connection

from cli import main
from engine import Engine, Worker
from engine.audit import Auditor, EventRecord
from engine.chain import Failure
from engine.history import chain_hash
from engine.seals import keygen, load_private_key, load_public_key, merkle_root, seal_leaf
from storage import triggers
from storage.db import normalise_url
from storage.models import Event, HumanTask, Instance, Seal, SealHead

# ----------------------------------------------------------------------------- the intruder's tools


def _tamper(url: str, work: Callable[[Connection], None], restore: bool = True) -> None:
    """Run `work` with every trigger and foreign key out of the way, as a superuser or the file's
    owner can, then (a careful intruder) put the append-only triggers back."""
    sa = create_engine(normalise_url(url))
    with sa.begin() as c:
        if sa.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            c.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for table in triggers.SQLITE_TRIGGERS.values():
                for name in table:
                    c.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        work(c)
        if restore and sa.dialect.name == "sqlite":
            triggers.restore(c)
    sa.dispose()


def _records(c: Connection, iid: int) -> list[EventRecord]:
    rows = c.execute(Event.__table__.select().where(Event.instance_id == iid).order_by(Event.seq)).mappings()
    return [EventRecord(r["instance_id"], r["seq"], r["at"], r["actor"], r["type"], r["element_id"], r["task_id"],
                        r["definition_id"], r["payload"], r["prev_hash"], r["hash"]) for r in rows]


def _rechain(c: Connection, iid: int, events: list[EventRecord], rewrite_seals: bool) -> None:
    """Recompute every hash from the first event on, rewrite the instance row's head, and (when
    asked) every seal head of the instance and every seal's root."""
    prev = "0" * 64
    for e in events:
        e.prev_hash, e.hash = prev, chain_hash(prev, e.body())
        c.execute(update(Event.__table__).where(Event.instance_id == iid, Event.seq == e.seq)
                  .values(at=e.at, actor=e.actor, payload=e.payload, prev_hash=e.prev_hash, hash=e.hash))
        prev = e.hash
    c.execute(update(Instance.__table__).where(Instance.id == iid)
              .values(last_seq=events[-1].seq if events else 0, last_hash=prev))
    if rewrite_seals:
        by_seq = {e.seq: e.hash for e in events}
        for seal_id, seq in c.execute(text(f"SELECT seal_id, seq FROM seal_heads WHERE instance_id = {iid}")).all():
            if seq in by_seq:
                c.execute(update(SealHead.__table__).where(SealHead.seal_id == seal_id, SealHead.instance_id == iid)
                          .values(hash=by_seq[seq]))
        _reroot(c)


def _reroot(c: Connection) -> None:
    for (seal_id,) in c.execute(text("SELECT id FROM seals")).all():
        heads = c.execute(text(f"SELECT instance_id, seq, hash FROM seal_heads WHERE seal_id = {seal_id} "
                               "ORDER BY instance_id")).all()
        c.execute(update(Seal.__table__).where(Seal.id == seal_id)
                  .values(root=merkle_root([seal_leaf(i, q, h) for i, q, h in heads]), instances=len(heads)))


def _delete_instance(c: Connection, iid: int, with_seal_heads: bool) -> None:
    """Remove an instance whole: its row, its events and every row of any table that refers to it."""
    insp = inspect(c)
    task_ids = [r[0] for r in c.execute(text(f"SELECT id FROM human_tasks WHERE instance_id = {iid}")).all()]
    for table in insp.get_table_names():
        cols = {col["name"] for col in insp.get_columns(table)}
        if table == "task_candidates" and task_ids:
            c.execute(text(f"DELETE FROM task_candidates WHERE task_id IN ({','.join(map(str, task_ids))})"))
        elif "instance_id" in cols and (table != "seal_heads" or with_seal_heads) and table != "human_tasks":
            c.execute(text(f"DELETE FROM {table} WHERE instance_id = {iid}"))
    c.execute(text(f"DELETE FROM human_tasks WHERE instance_id = {iid}"))
    c.execute(text(f"DELETE FROM instances WHERE id = {iid}"))
    if with_seal_heads:
        _reroot(c)


# ----------------------------------------------------------------------------- fixtures
def _loop(engine: Engine) -> int:
    iid = engine.start("loop_back", actor="alice")
    complete(engine, iid, "Task_draft", {"text": "v1"})
    complete(engine, iid, "Task_review", {"approve": False}, user="carol")
    complete(engine, iid, "Task_draft", {"text": "v2"})
    complete(engine, iid, "Task_review", {"approve": True}, user="carol")
    return iid


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub, _ = keygen(tmp_path / "seal.pem")
    return priv, pub


def _verify(engine: Engine, pub: Path | None = None, roots: list[str] | None = None,
            replay: bool = True) -> list[Failure]:
    return Auditor(engine).verify(replay=replay, pubkeys=[load_public_key(pub)] if pub else None, roots=roots)[1]


def _named(failures: list[Failure]) -> set[tuple[int, int | None, str]]:
    return {(f.instance_id, f.seq, f.kind) for f in failures}


# ----------------------------------------------------------------------------- rewritten history
def test_rewritten_history_and_seals__only_the_signature_names_it(engine: Engine, db_url: str,
                                                                  key: tuple[Path, Path]) -> None:
    a, b, c = _loop(engine), _loop(engine), _loop(engine)
    _, root, _ = Auditor(engine).seal("erin", load_private_key(key[0]))
    sealed_seq = engine.instance(b)["events"]
    done = [e for e in engine.history(b) if e.type == "task_completed"][1]  # carol's first review

    def forge(conn: Connection) -> None:  # carol's review becomes dave's, projections and all
        events = _records(conn, b)
        events[done.seq - 1].actor = "dave"
        _rechain(conn, b, events, rewrite_seals=True)
        conn.execute(update(HumanTask.__table__).where(HumanTask.id == done.task_id).values(completed_by="dave", assignee="dave"))

    _tamper(db_url, forge)
    assert _verify(engine) == []  # the table's "database only" column: not detected
    assert _named(_verify(engine, roots=[root])) == {(0, None, "seal root")}  # the seal, not the instance
    failures = _verify(engine, pub=key[1])
    assert (b, sealed_seq, "seal signature") in _named(failures)
    assert all(f.instance_id in (0, b) for f in failures) and a != b != c
    result = CliRunner().invoke(main, ["--db", db_url, "verify", "--all", "--pubkey", str(key[1])])
    assert result.exit_code == 11
    assert f"instance {b} at seq {sealed_seq}: seal signature" in result.output


def test_rewritten_history__seal_rows_left__is_a_seal_mismatch(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    Auditor(engine).seal("erin")
    sealed_seq = engine.instance(iid)["events"]
    done = [e for e in engine.history(iid) if e.type == "task_completed"][0]

    def forge(conn: Connection) -> None:
        events = _records(conn, iid)
        events[done.seq - 1].payload = dict(events[done.seq - 1].payload, data={"text": "forged"})
        _rechain(conn, iid, events, rewrite_seals=False)

    _tamper(db_url, forge)
    assert _named(_verify(engine, replay=False)) == {(iid, sealed_seq, "seal mismatch")}


def test_rewritten_history__unsealed_tail__is_not_detected(engine: Engine, db_url: str) -> None:
    """The table's last row: events after the newest seal can be rewritten consistently."""
    iid = _loop(engine)

    def forge(conn: Connection) -> None:
        events = _records(conn, iid)
        events[0].actor = "bob"
        _rechain(conn, iid, events, rewrite_seals=False)

    _tamper(db_url, forge)
    assert _verify(engine) == []


def test_edited_event__hashes_not_recomputed__is_a_hash_mismatch(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    ev = engine.history(iid)[2]
    _tamper(db_url, lambda c: c.execute(update(Event.__table__).where(Event.id == ev.id).values(actor="mallory")))
    assert _named(_verify(engine, replay=False)) == {(iid, ev.seq, "hash mismatch")}


def test_edited_stored_state__is_a_replay_divergence(engine: Engine, db_url: str) -> None:
    iid = engine.start("user_task", actor="alice")
    complete(engine, iid, "Task_fill", {"name": "honest"})

    def forge(conn: Connection) -> None:
        # The task's data is in a part of the state (state_parts), its head in instances.state.
        forged = conn.execute(text("UPDATE state_parts SET body = replace(body, '\"honest\"', '\"forged\"') "
                                   f"WHERE instance_id = {iid} AND body LIKE '%\"honest\"%'")).rowcount
        assert forged > 0
        state = conn.execute(text(f"SELECT state FROM instances WHERE id = {iid}")).scalar_one()
        conn.execute(update(Instance.__table__).where(Instance.id == iid)
                     .values(state=state.replace('"honest"', '"forged"')))

    _tamper(db_url, forge)
    n = engine.instance(iid)["events"]
    assert _named(_verify(engine)) == {(iid, n, "replay divergence")}


# ----------------------------------------------------------------------------- missing events and instances
def test_deleted_middle_event__is_a_gap(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    _tamper(db_url, lambda c: c.execute(text(f"DELETE FROM events WHERE instance_id = {iid} AND seq = 4")))
    assert _named(_verify(engine, replay=False)) == {(iid, 4, "gap")}


def test_deleted_tail_with_rewritten_instance_row__after_a_seal__is_named(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    Auditor(engine).seal("erin")
    n = engine.instance(iid)["events"]

    def cut(conn: Connection) -> None:
        conn.execute(text(f"DELETE FROM events WHERE instance_id = {iid} AND seq > {n - 3}"))
        _rechain(conn, iid, _records(conn, iid), rewrite_seals=False)

    _tamper(db_url, cut)
    assert (iid, n, "tail removed") in _named(_verify(engine, replay=False))


def test_deleted_sealed_instance__seal_rows_left__is_named_and_its_export_does_not_replay(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    a, b = _loop(engine), _loop(engine)
    Auditor(engine).seal("erin")
    n = engine.instance(a)["events"]
    _tamper(db_url, lambda c: _delete_instance(c, a, with_seal_heads=False))
    assert _named(_verify(engine)) == {(a, n, "instance missing")}
    runner = CliRunner()
    result = runner.invoke(main, ["--db", db_url, "verify", str(a)])
    assert result.exit_code == 11 and f"instance {a} at seq {n}: instance missing" in result.output
    out = tmp_path / "all.jsonl"
    assert runner.invoke(main, ["--db", db_url, "export", "--all", "--out", str(out)]).exit_code == 0
    result = runner.invoke(main, ["replay", "--from-file", str(out)])
    assert result.exit_code == 11 and f"instance {a} at seq {n}: instance missing" in result.output
    assert b != a


@pytest.mark.parametrize("which", ["middle", "last"])
def test_deleted_sealed_instance_and_its_seal_head__only_the_signature_names_it(
        engine: Engine, db_url: str, key: tuple[Path, Path], which: str) -> None:
    ids = [_loop(engine) for _ in range(3)]
    _, root, _ = Auditor(engine).seal("erin", load_private_key(key[0]))
    gone = ids[1] if which == "middle" else ids[2]
    n = engine.instance(gone)["events"]
    _tamper(db_url, lambda c: _delete_instance(c, gone, with_seal_heads=True))
    assert _verify(engine) == []  # database only: the seal was rewritten to match
    assert _named(_verify(engine, roots=[root])) == {(0, None, "seal root")}
    assert (gone, n, "instance missing") in _named(_verify(engine, pub=key[1]))


def test_deleted_newest_seal__needs_its_root_kept_outside(engine: Engine, db_url: str,
                                                          key: tuple[Path, Path]) -> None:
    _loop(engine)
    _, root, _ = Auditor(engine).seal("erin", load_private_key(key[0]))
    _tamper(db_url, lambda c: (c.execute(text("DELETE FROM seal_heads")), c.execute(text("DELETE FROM seals"))))
    assert _verify(engine) == []
    assert _verify(engine, pub=key[1]) == []  # the key proves what a seal says, not that it exists
    assert _named(_verify(engine, roots=[root])) == {(0, None, "seal root")}


# ----------------------------------------------------------------------------- time, projections, state
def test_time_going_backwards__is_named_even_with_hashes_recomputed(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    seq = 5

    def forge(conn: Connection) -> None:
        events = _records(conn, iid)
        events[seq - 1].at = events[0].at.replace(year=2010)
        _rechain(conn, iid, events, rewrite_seals=False)

    _tamper(db_url, forge)
    assert (iid, seq, "time goes backwards") in _named(_verify(engine, replay=False))


@pytest.mark.parametrize("field", ["completed_by", "assignee", "state", "candidates", "row"])
def test_edited_projection__is_named_by_the_event_it_contradicts(engine: Engine, db_url: str, field: str) -> None:
    iid = _loop(engine)
    history = engine.history(iid)
    done = next(e for e in history if e.type == "task_completed")
    created = next(e for e in history if e.type == "task_created" and e.task_id == done.task_id)
    t = HumanTask.__table__
    edits = {
        "completed_by": (update(t).where(t.c.id == done.task_id).values(completed_by="mallory"), done.seq),
        "assignee": (update(t).where(t.c.id == done.task_id).values(assignee="mallory"), done.seq),
        "state": (update(t).where(t.c.id == done.task_id).values(state="open"), done.seq),
        "candidates": (text(f"INSERT INTO task_candidates (task_id, kind, value) VALUES ({done.task_id}, 'user', "
                            "'mallory')"), created.seq),
        "row": (text(f"DELETE FROM human_tasks WHERE id = {done.task_id}"), created.seq),
    }
    stmt, seq = edits[field]
    _tamper(db_url, lambda c: c.execute(stmt))
    failures = _verify(engine, replay=False)
    assert _named(failures) == {(iid, seq, "projection mismatch")}, failures
    assert f"task {done.task_id}" in failures[0].detail


def test_edited_candidates_of_an_open_task__are_named(engine: Engine, db_url: str) -> None:
    iid = engine.start("user_task", actor="alice")
    row = task_by_element(engine, iid, "Task_fill")
    created = next(e for e in engine.history(iid) if e.type == "task_created")
    _tamper(db_url, lambda c: c.execute(text(f"DELETE FROM task_candidates WHERE task_id = {row.id}")))
    assert _named(_verify(engine, replay=False)) == {(iid, created.seq, "projection mismatch")}


# ----------------------------------------------------------------------------- triggers
def test_missing_or_disabled_triggers__fail_verify__and_init_restores_them(engine: Engine, db_url: str) -> None:
    iid = _loop(engine)
    Auditor(engine).seal("erin")
    sa = create_engine(normalise_url(db_url))
    with sa.begin() as c:
        if sa.dialect.name == "postgresql":
            c.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            c.execute(text("DROP TRIGGER seals_no_truncate ON seals"))
        else:
            c.execute(text("DROP TRIGGER events_no_update"))
            c.execute(text("DROP TRIGGER seals_no_delete"))
    failures = _verify(engine, replay=False)
    assert {f.kind for f in failures} == {"triggers"} and len(failures) == 2
    assert all("tigao init" in f.detail for f in failures)
    result = CliRunner().invoke(main, ["--db", db_url, "verify", "--all", "--no-replay"])
    assert result.exit_code == 11 and "database: triggers:" in result.output
    assert CliRunner().invoke(main, ["--db", db_url, "init"]).exit_code == 0
    assert _verify(engine) == []
    with pytest.raises(Exception, match="append-only"), sa.begin() as c:
        c.execute(text(f"UPDATE events SET actor = 'mallory' WHERE instance_id = {iid}"))
    with pytest.raises(Exception, match="append-only"), sa.begin() as c:
        c.execute(text("DELETE FROM seal_heads"))
    sa.dispose()


# ----------------------------------------------------------------------------- keys
def test_seal_signed_by_another_key_or_unsigned__fails_with_the_given_key(engine: Engine, tmp_path: Path,
                                                                         key: tuple[Path, Path]) -> None:
    _loop(engine)
    other, _, _ = keygen(tmp_path / "other.pem")
    Auditor(engine).seal("erin", load_private_key(other))
    Auditor(engine).seal("erin")
    details = [f.detail for f in _verify(engine, pub=key[1])]
    assert details == ["seal 1 is signed by key " + _fp(tmp_path / "other.pem.pub") + ", not by a key given",
                       "seal 2 is not signed"]


def _fp(pub: Path) -> str:
    from engine.seals import fingerprint

    return fingerprint(load_public_key(pub))


def test_keys__cli_keygen_seal_verify(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _loop(engine)
    runner = CliRunner()
    keyfile = tmp_path / "k.pem"
    result = runner.invoke(main, ["audit", "keygen", "--out", str(keyfile)])
    assert result.exit_code == 0, result.output
    assert (keyfile.stat().st_mode & 0o777) == 0o600 and (tmp_path / "k.pem.pub").exists()
    assert runner.invoke(main, ["audit", "keygen", "--out", str(keyfile)]).exit_code == 3  # never overwritten
    result = runner.invoke(main, ["--db", db_url, "audit", "seal", "--key", str(keyfile), "--as", "erin"])
    assert result.exit_code == 0 and "signed by key" in result.output
    roots = tmp_path / "roots.txt"
    roots.write_text(result.output)
    result = runner.invoke(main, ["--db", db_url, "verify", "--all", "--pubkey", str(tmp_path / "k.pem.pub"),
                                  "--root", str(roots)])
    assert result.exit_code == 0, result.output
    assert "signatures, outside roots" in result.output
    for bad in (["--pubkey", str(keyfile) + ".missing"], ["--root", "abc"], ["--pubkey", str(roots)]):
        result = runner.invoke(main, ["--db", db_url, "verify", "--all", *bad])
        assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    result = runner.invoke(main, ["--db", db_url, "audit", "seal", "--key", str(tmp_path / "k.pem.pub"),
                                  "--as", "erin"])
    assert result.exit_code == 3 and "not an unencrypted PEM private key" in result.output


# ----------------------------------------------------------------------------- least privilege (PostgreSQL)
@contextmanager
def _roles_db(pg_template: str, setup: Callable[[str], None]) -> Iterator[tuple[str, str, str]]:
    """A database prepared by `setup` (as the superuser), then given roles with `tigao db roles
    --apply`: (superuser URL, owner, app role). The roles are dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    owner, app = f"tigao_owner_{tag}", f"tigao_app_{tag}"
    try:
        with scratch_pg_database("tigao_roles", pg_template) as url:
            setup(url)
            result = CliRunner().invoke(main, ["--db", url, "db", "roles", "--owner", owner, "--app", app,
                                               "--apply"])
            assert result.exit_code == 0, result.output
            yield url, owner, app
    finally:
        admin = create_engine(_admin_url(PG_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for role in (app, owner):
                c.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def _deployed(url: str) -> None:
    set_simulated(url)
    eng = Engine(url)
    eng.load_directory(ORG)
    eng.deploy([BPMN])
    eng.close()


@pytest.fixture
def pg_roles(pg_template: str) -> Iterator[tuple[str, str, str]]:
    with _roles_db(pg_template, _deployed) as found:
        yield found


@pytest.mark.postgres
def test_app_role__serves_the_web_app(pg_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from web.app import create_app
    from web_support import prepare

    monkeypatch.setenv("TIGAO_LOGIN_SLOWDOWN", "0.001")
    made: dict[str, dict[str, str]] = {}
    with _roles_db(pg_template, lambda url: made.update(tokens=prepare(url, tmp_path)[0])) as (url, _, app):
        auth = {"Authorization": f"Bearer {made['tokens']['alice']}"}
        with TestClient(create_app(_as(url, app), worker=False)) as client:
            started = client.post("/api/v1/processes/user_task/instances", headers=auth, json={})
            assert started.status_code == 201, started.text
            tasks = client.get("/api/v1/tasks", headers=auth, params={"scope": "all"}).json()
            task = next(t for t in tasks["items"] if t["element_id"] == "Task_fill")
            done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=auth, json={"data": {"name": "Ann"}})
            assert done.status_code in (200, 204), done.text
        eng = Engine(_as(url, app))
        assert Auditor(eng).verify()[1] == []
        eng.close()


def _as(url: str, role: str) -> str:
    return url.replace("://postgres@", f"://{role}@", 1)


@pytest.mark.postgres
def test_app_role__runs_the_engine_and_the_worker__but_cannot_tamper(pg_roles: tuple[str, str, str]) -> None:
    url, owner, app = pg_roles
    app_url = _as(url, app)
    eng = Engine(app_url)
    assert eng.init() == "upgraded"  # nothing to migrate, nothing to restore: allowed
    iid = _loop(eng)
    late = eng.start("timers", actor="alice")
    eng.set_clock(T0 + timedelta(days=6))
    fired = Worker(eng).run_once()  # due dates, escalation and a boundary timer, as the app role
    assert {f.instance_id for f in fired} == {late} and all(f.outcome == "fired" for f in fired), fired
    assert {"task_overdue", "timer_fired"} <= {e.type for e in eng.history(late)}
    Auditor(eng).seal("erin")
    assert Auditor(eng).verify()[1] == []
    eng.close()
    sa = create_engine(normalise_url(app_url))
    for st in (f"UPDATE events SET actor = 'mallory' WHERE instance_id = {iid}",
               f"DELETE FROM events WHERE instance_id = {iid}", "TRUNCATE events",
               "ALTER TABLE events DISABLE TRIGGER USER", "DROP TRIGGER events_append_only ON events",
               "ALTER TABLE events ADD COLUMN x int", "UPDATE seal_heads SET hash = 'x'", "DELETE FROM seals",
               "SET session_replication_role = replica", "UPDATE alembic_version SET version_num = 'x'"):
        with pytest.raises(Exception) as info, sa.begin() as c:
            c.execute(text(st))
        assert "permission denied" in str(info.value) or "must be owner" in str(info.value), (st, info.value)
    sa.dispose()
    # The owner runs migrations and may restore triggers: `tigao init` as the owner works.
    owner_eng = Engine(_as(url, owner))
    assert owner_eng.init() == "upgraded"
    owner_eng.close()
    assert json.loads(CliRunner().invoke(main, ["--db", app_url, "verify", "--all", "--json"]).stdout)["ok"]


def test_db_roles__prints_sql_and_refuses_bad_names() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["db", "roles", "--owner", "tigao_owner", "--app", "tigao_app"])
    assert result.exit_code == 0
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO tigao_app;" in result.output
    assert "REVOKE UPDATE, DELETE ON events, seals, seal_heads, alembic_version FROM tigao_app;" in result.output
    for args in (["--owner", "x; DROP TABLE events", "--app", "a"], ["--owner", "same", "--app", "same"]):
        result = runner.invoke(main, ["db", "roles", *args])
        assert result.exit_code == 3 and "Traceback" not in result.output


def test_audit_file__checked_with_the_key_and_roots__names_a_forged_head(engine: Engine, db_url: str,
                                                                         tmp_path: Path,
                                                                         key: tuple[Path, Path]) -> None:
    a, b = _loop(engine), _loop(engine)
    _, root, _ = Auditor(engine).seal("erin", load_private_key(key[0]))
    out = tmp_path / "audit.jsonl"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db_url, "export", "--all", "--out", str(out)]).exit_code == 0
    anchors = ["--pubkey", str(key[1]), "--root", root]
    result = runner.invoke(main, ["replay", "--from-file", str(out), *anchors])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    seal = next(x for x in lines if x["kind"] == "seal")
    head = next(h for h in seal["heads"] if h[0] == b)
    head[2] = "f" * 64  # a forged head, and a root recomputed to match it
    seal["root"] = merkle_root([seal_leaf(h[0], h[1], h[2]) for h in seal["heads"]])
    out.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = runner.invoke(main, ["replay", "--from-file", str(out), *anchors])
    assert result.exit_code == 11
    assert f"instance {b} at seq {head[1]}: seal signature" in result.output
    assert f"the root {root} kept outside matches no seal" in result.output and a != b
