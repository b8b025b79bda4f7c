"""The hot path's SQL, counted (bench/statements.py): statement counts are deterministic, so they
are held to a bound here, where time could not be."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from statements import StatementCounter, per_completion  # noqa: E402

from engine import Engine  # noqa: E402


def test_task_completion__statement_count_is_bounded(tmp_path: Path) -> None:
    counts = per_completion(str(tmp_path / "statements.db"))
    # BEGIN, one read (the settings, the task row with its open siblings, whether the user is a
    # candidate, the instance), task update, events, instance update, COMMIT; plus the next task
    # and its candidates when one is created.
    assert counts["complete 2"] <= 7, counts
    assert counts["complete 1"] <= 8, counts
    assert (counts["complete 1"] + counts["complete 2"]) / 2 <= 8, counts
    # A task list: BEGIN, the settings, the list (its candidates and process keys read in the
    # same statement), COMMIT.
    assert counts["tasks"] <= 4, counts


def test_task_completion__writes_the_instance_and_its_events_once(engine: Engine) -> None:
    iid = engine.start("parallel_gateway", actor="alice")
    first = engine.tasks(scope="all", instance_id=iid)[0]
    counter = StatementCounter(engine)
    with counter.counting() as statements:
        engine.complete(first.id, first.assignee or "alice", _valid(engine, first))
    counter.close()
    updates = [s for s in statements if s.startswith("UPDATE instances")]
    inserts = [s for s in statements if s.startswith("INSERT INTO events")]
    assert len(updates) == 1, statements
    assert len(inserts) == 1, statements
    assert [e.seq for e in engine.history(iid)] == list(range(1, len(engine.history(iid)) + 1))


def _valid(engine: Engine, t: object) -> dict[str, object]:
    form = engine.task_form(t.id)  # type: ignore[attr-defined]
    props = (form or {}).get("properties", {})
    sample = {"boolean": True, "integer": 1, "number": 1, "string": "x"}
    return {k: sample.get(v.get("type"), "x") for k, v in props.items()}


def test_hot_path__every_statement_is_compiled_once(tmp_path: Path) -> None:
    """A statement SQLAlchemy cannot cache is compiled on every call, which costs about as much
    as running it: after one warm-up, starting, listing and completing find every statement they
    run in the compiled cache (a custom SQL construct without a cache key would not be)."""
    from sqlalchemy import event
    from sqlalchemy.engine.default import CACHE_HIT

    from conftest import BPMN, ORG

    eng = Engine(str(tmp_path / "cache.db"))
    eng.init()
    eng.load_directory(ORG)
    eng.deploy([BPMN / "user_task.bpmn", BPMN / "forms"], actor="alice")

    def once() -> None:
        iid = eng.start("user_task", actor="alice")
        [t] = eng.tasks("alice", instance_id=iid)
        eng.task(t.id)
        eng.complete(t.id, "alice", {"name": "Ann", "amount": 1})
        eng.tasks("alice", scope="mine")

    once()
    uncached: list[str] = []

    def seen(conn, cursor, statement, params, context, many) -> None:  # noqa: ANN001
        if context is not None and getattr(context, "compiled", None) is not None \
                and context.cache_hit != CACHE_HIT:
            uncached.append(f"{context.cache_hit}: {statement[:120]}")

    event.listen(eng._sa, "before_cursor_execute", seen)
    try:
        once()
    finally:
        event.remove(eng._sa, "before_cursor_execute", seen)
    eng.close()
    assert not uncached, "\n".join(uncached)
