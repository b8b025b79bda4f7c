"""User-task completions per second: plain SpiffWorkflow vs Tigao.

One process (bench/two_tasks.bpmn): start -> user task A -> user task B -> end, both tasks with
the form `ack` ({"ok": boolean}, required) in the lane `staff`. A "completion" is one user task
completed; every instance gives two.

  (a)  plain SpiffWorkflow in memory: CamundaParser spec; per instance BpmnWorkflow(spec),
       do_engine_steps, complete A, do_engine_steps, complete B, do_engine_steps.
  (b)  as (a), with SpiffWorkflow's own JSON save (serialize_json, Camunda config, specs included)
       after every step and a load (deserialize_json) before every completion.
  (c)  Tigao on a temporary SQLite file with durable commits (WAL, synchronous=FULL): per instance
       engine.start, then for each task engine.tasks (the user's task list) and engine.complete
       as a staff user of tests/bpmn/org.toml, with form validation, history, projections.
  (c') diagnostic: (c) with the SQLite connection switched to synchronous=NORMAL (WAL: no fsync per
       commit; survives a process crash but not a power cut). Shows what fsync costs.
  (z)  reference floor: bare sqlite3 (no engine, no SQLAlchemy), WAL + synchronous=FULL, one small
       INSERT + COMMIT per "completion": what one durable commit costs on this disk; a durable
       engine cannot complete tasks faster than this if each completion commits once.
  (d)  with --db URL: (c) on PostgreSQL, in a fresh database created on that server and dropped
       afterwards.

Usage:
  .venv/bin/python bench/bench_tasks.py [--instances 200] [--rounds 3]
                                        [--db postgresql://postgres@127.0.0.1:5432/test]
                                        [--profile [--profile-instances 200]] [--no-diagnostic]

Every round runs every variant once, in turn, so a burst of load from other processes hits one
round rather than one variant; the best round of each variant is reported (as timeit does), the
median beside it. CPU time is reported too: it is less sensitive to other processes than wall time
(but leaves out waiting for fsync, which is part of a durable commit).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from common import (
    HERE,
    apply_pragmas,
    ORG,
    Progress,
    cumulative_of,
    database,
    profile_call,
    say,
    self_time_groups,
    table,
    top_cumulative,
    total_time,
)

from statements import per_completion

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.util.task import TaskState

BPMN = HERE / "two_tasks.bpmn"
KEY = "bench_two_tasks"
TARGET = 0.25  # (c)/(a), the runtime issue's figure
COMMITS_PER_COMPLETION = 1.5  # an instance: start + 2 completions, each its own durable commit
FORM = {"ok": True}
USERS = ["alice", "bob", "carol", "dora"]  # the staff role of tests/bpmn/org.toml
WARMUP = 5


# ---------------------------------------------------------------------------------------------
# Plain SpiffWorkflow


def _spiff_spec() -> tuple[Any, dict[str, Any]]:
    parser = CamundaParser()
    parser.add_bpmn_file(str(BPMN))
    return parser.get_spec(KEY), parser.get_subprocess_specs(KEY)


def _ready_user_task(wf: BpmnWorkflow) -> Any:
    ready = wf.get_tasks(state=TaskState.READY, manual=True)
    assert len(ready) == 1, ready
    return ready[0]


def run_plain(n: int, progress: bool) -> dict[str, Any]:
    spec, subs = _spiff_spec()

    def one() -> int:
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
        done = 0
        while not wf.is_completed():
            t = _ready_user_task(wf)
            t.data.update(FORM)
            t.run()
            wf.do_engine_steps()
            done += 1
        return done

    return _loop("(a) SpiffWorkflow, memory", n, one, progress)


def run_plain_json(n: int, progress: bool) -> dict[str, Any]:
    spec, subs = _spiff_spec()
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))
    sizes: list[int] = []

    def one() -> int:
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
        text = ser.serialize_json(wf)
        done = 0
        while True:
            wf = ser.deserialize_json(text)
            if wf.is_completed():
                break
            t = _ready_user_task(wf)
            t.data.update(FORM)
            t.run()
            wf.do_engine_steps()
            text = ser.serialize_json(wf)
            done += 1
        sizes.append(len(text))
        return done

    result = _loop("(b) SpiffWorkflow + JSON save/load", n, one, progress)
    result["state_bytes"] = sizes[-1] if sizes else 0
    return result


def _loop(label: str, n: int, one: Callable[[], int], progress: bool) -> dict[str, Any]:
    for _ in range(min(WARMUP, n)):
        one()
    p = Progress(label, n, 10) if progress else None
    completions = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        completions += one()
        if p:
            p.tick(i + 1)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert completions == 2 * n, (completions, n)
    return {"label": label, "instances": n, "completions": completions, "seconds": elapsed, "cpu": cpu}


def run_fsync_floor(n: int) -> dict[str, Any]:
    """The disk's ceiling: bare sqlite3, WAL + synchronous=FULL, one small INSERT + COMMIT per step
    (2 per instance, like the completions). No engine, no SQLAlchemy."""
    import sqlite3

    with database("sqlite") as path:
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        payload = "x" * 3000  # about one stored instance state

        def one() -> int:
            for _ in range(2):
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO t (v) VALUES (?)", (payload,))
                con.execute("COMMIT")
            return 2

        try:
            return _loop("(z) bare sqlite3 INSERT+COMMIT (fsync floor)", n, one, False)
        finally:
            con.close()


# ---------------------------------------------------------------------------------------------
# Tigao


def prepare_engine(url: str, sync: str | None = None) -> Any:
    """An initialised Tigao database with the test directory and the benchmark process deployed.
    `sync` (diagnostic only) overrides SQLite's PRAGMA synchronous on the engine's connections."""
    from engine import Engine

    first = Engine(url)
    first.init()
    first.close()
    eng = Engine(url)
    if sync is not None:
        apply_pragmas(eng, [f"synchronous={sync}"])
    eng.load_directory(ORG)
    eng.deploy([BPMN], actor="dora")
    return eng


def tigao_instance(eng: Any, i: int, times: list[float] | None = None) -> int:
    """One instance: start, then each task listed for and completed by a staff user."""
    pc = time.perf_counter
    user = USERS[i % len(USERS)]
    t0 = pc()
    iid = eng.start(KEY, actor=user)
    t1 = pc()
    done = 0
    t_list = t_complete = 0.0
    while True:
        a = pc()
        tasks = eng.tasks(user=user, instance_id=iid)
        b = pc()
        t_list += b - a
        if not tasks:
            break
        eng.complete(tasks[0].id, user, FORM)
        t_complete += pc() - b
        done += 1
    if times is not None:
        times[0] += t1 - t0
        times[1] += t_list
        times[2] += t_complete
    return done


class TigaoVariant:
    """A prepared Tigao database; each call of `run` times `n` more instances on it."""

    def __init__(self, label: str, url: str, sync: str | None = None):
        self.label = label
        self.eng = prepare_engine(url, sync)
        self.started = 0
        for i in range(WARMUP):  # parse + caches + first connection, untimed
            tigao_instance(self.eng, i)
        self.started += WARMUP

    def run(self, n: int, progress: bool) -> dict[str, Any]:
        times = [0.0, 0.0, 0.0]
        p = Progress(self.label, n, 10) if progress else None
        completions = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            completions += tigao_instance(self.eng, i, times)
            if p:
                p.tick(i + 1)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        self.started += n
        _check_all_completed(self.eng, self.started)
        assert completions == 2 * n, (completions, n)
        return {"label": self.label, "instances": n, "completions": completions, "seconds": elapsed,
                "cpu": cpu,
                "t_start": times[0], "t_list": times[1], "t_complete": times[2],
                "state_bytes": _state_size(self.eng)}

    def close(self) -> None:
        self.eng.close()


def _check_all_completed(eng: Any, expected: int) -> None:
    from sqlalchemy import func, select

    from storage.models import Instance

    with eng._tx() as s:
        counts = dict(s.execute(select(Instance.status, func.count()).group_by(Instance.status)).all())
    if counts != {"completed": expected}:
        raise SystemExit(f"benchmark run went wrong: instance states {counts}, expected {expected} completed")


def _state_size(eng: Any) -> int:
    from sqlalchemy import func, select

    from storage.models import Instance, StatePart

    with eng._tx() as s:  # the head and the parts of the largest state
        heads = dict(s.execute(select(Instance.id, func.length(Instance.state_head))).all())
        parts = dict(s.execute(select(StatePart.instance_id, func.sum(func.length(StatePart.body)))
                               .group_by(StatePart.instance_id)).all())
        return int(max((heads[i] + int(parts.get(i) or 0) for i in heads), default=0))


# ---------------------------------------------------------------------------------------------
# Profile of (c)

PROFILE_POINTS = [
    ("Engine.complete (whole command)", "engine/tasks.py", "complete"),
    ("Engine.start (whole command)", "engine/instances.py", "start"),
    ("Engine.tasks (task list)", "engine/tasks.py", "tasks"),
    ("  Engine._sync_clock (settings read per tx)", "engine/base.py", "_sync_clock"),
    ("  Engine._dir (directory stamp read)", "engine/base.py", "_dir"),
    ("  Engine._load_run (lock + load state)", "engine/instances.py", "_load_run"),
    ("    StateSerializer.loads (0 calls: engine cache hit)", "engine/state.py", "loads"),
    ("  forms.validate (jsonschema)", "engine/forms.py", "validate"),
    ("  Run.apply (Spiff steps, engine/apply.py)", "engine/run.py", "_guard"),
    ("  Run.finish (projection + save)", "engine/run.py", "finish"),
    ("    record_fired_timers", "engine/deadlines.py", "record_fired_timers"),
    ("    sync_timers", "engine/deadlines.py", "sync_timers"),
    ("    Run._sync_subscriptions", "engine/run.py", "_sync_subscriptions"),
    ("    Run._new_task (new task rows)", "engine/run.py", "_new_task"),
    ("    Run._record_task (candidates, event)", "engine/run.py", "_record_task"),
    ("    StateSerializer.dumps (serialize)", "engine/state.py", "dumps"),
    ("  history.append (hash chain)", "engine/history.py", "append"),
    ("  Session.flush (ORM -> SQL)", "sqlalchemy/orm/session.py", "flush"),
    ("  Session.commit", "sqlalchemy/orm/session.py", "commit"),
    ("    sqlite3 Connection.commit (fsync)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("  sqlite3 Cursor.execute (all SQL)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("  Session.execute/scalar(s) (queries)", "sqlalchemy/orm/session.py", "execute"),
]


def profile_tigao(n: int) -> None:
    with database("sqlite") as url:
        eng = prepare_engine(url)
        try:
            for i in range(min(WARMUP, n)):
                tigao_instance(eng, i)

            def body() -> None:
                for i in range(n):
                    tigao_instance(eng, i)

            t0 = time.perf_counter()
            _, stats = profile_call(body)
            wall = time.perf_counter() - t0
        finally:
            eng.close()
    total = total_time(stats)
    say()
    say(f"== Profile of (c), {n} instances ({2 * n} completions), {wall:.2f} s under cProfile ==")
    say()
    say("Top 15 by cumulative time:")
    say(top_cumulative(stats, 15))
    say()
    say("Where the time goes (cumulative; nested rows are parts of the row above, not additional):")
    rows = [[label, ct, 100 * ct / total if total else 0.0, calls, 1000 * ct / (2 * n)]
            for label, ct, calls in cumulative_of(stats, [(a, b, c) for a, b, c in PROFILE_POINTS])]
    say(table(["function", "seconds", "% of run", "calls", "ms/completion"], rows))
    say()
    say("Self time by component (sums to 100%):")
    groups = self_time_groups(stats)
    say(table(["component", "seconds", "%"], [[g, s, 100 * sh] for g, s, sh in groups]))


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=200,
                    help="instances per variant and round (2 completions each)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; every round runs every variant once, in turn; the best round is reported "
                         "(default 3)")
    ap.add_argument("--db", help="also run (c) on this PostgreSQL server (a fresh database is created there "
                                 "and dropped afterwards), e.g. postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--profile", action="store_true",
                    help="profile (c) with cProfile and print where time goes")
    ap.add_argument("--profile-instances", type=int, default=None,
                    help="instances in the profiled run (default: --instances, at most 200)")
    ap.add_argument("--no-diagnostic", action="store_true", help="skip (c') synchronous=NORMAL")
    args = ap.parse_args(argv)
    n = args.instances
    if n < 1 or args.rounds < 1:
        ap.error("--instances and --rounds must be at least 1")

    say(f"bench_tasks: {n} instances x 2 user tasks = {2 * n} completions per variant and round, "
        f"{args.rounds} round(s), best round reported; {WARMUP} warm-up instances per variant, untimed")
    by_label: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []

    def keep(r: dict[str, Any]) -> None:
        if r["label"] not in by_label:
            order.append(r["label"])
        by_label.setdefault(r["label"], []).append(r)
        say(f"  {r['label']}: {r['completions'] / r['seconds']:,.1f} completions/s")

    with ExitStack() as stack:
        tigao: list[TigaoVariant] = []

        def variant(label: str, url: str, sync: str | None = None) -> None:
            v = TigaoVariant(label, url, sync)
            stack.callback(v.close)
            tigao.append(v)

        say("preparing Tigao databases ...")
        variant("(c) Tigao, SQLite (synchronous=FULL)", stack.enter_context(database("sqlite")))
        if not args.no_diagnostic:
            variant("(c') Tigao, SQLite (synchronous=NORMAL)", stack.enter_context(database("sqlite")),
                    sync="NORMAL")
        if args.db:
            pg = stack.enter_context(database("postgresql", args.db))
            variant("(d) Tigao, PostgreSQL", pg)
        for rnd in range(1, args.rounds + 1):
            say(f"round {rnd}/{args.rounds}")
            keep(run_plain(n, False))
            keep(run_plain_json(n, False))
            keep(run_fsync_floor(n))
            for v in tigao:
                keep(v.run(n, True))

    def rate(r: dict[str, Any]) -> float:
        return r["completions"] / r["seconds"]

    best = {label: max(rs, key=rate) for label, rs in by_label.items()}
    results = [best[label] for label in order]

    say()
    say(f"Best of {args.rounds} round(s) per variant (median in brackets):")
    rows = []
    for r in results:
        rates = sorted(rate(x) for x in by_label[r["label"]])
        median = rates[len(rates) // 2]
        rows.append([r["label"], r["completions"], r["seconds"], rate(r), f"({median:,.1f})",
                     1000 * r["seconds"] / r["completions"], 1000 * r["cpu"] / r["completions"],
                     r.get("state_bytes", "")])
    say(table(["variant", "completions", "seconds", "completions/s", "median", "ms/completion",
               "cpu ms/completion", "state bytes"], rows))

    tig = [r for r in results if "t_start" in r]
    if tig:
        say()
        say("Tigao time per instance, by command (ms; an instance = 1 start + 3 task lists + 2 completes):")
        say(table(["variant", "start", "3 task lists", "2 completes", "total", "complete-only completions/s"],
                  [[r["label"], 1000 * r["t_start"] / r["instances"], 1000 * r["t_list"] / r["instances"],
                    1000 * r["t_complete"] / r["instances"], 1000 * r["seconds"] / r["instances"],
                    r["completions"] / r["t_complete"]] for r in tig]))

    a, b, z, c = results[0], results[1], results[2], results[3]
    say()
    say(f"Ratios of completions/s (target for (c)/(a): {TARGET:g} or more):")
    ratio_rows = [["(c)/(a)  Tigao SQLite / Spiff in memory", rate(c) / rate(a)],
                  ["(c)/(b)  Tigao SQLite / Spiff + JSON", rate(c) / rate(b)],
                  ["(b)/(a)  Spiff + JSON / Spiff in memory", rate(b) / rate(a)]]
    for r in results[4:]:
        tag = r["label"].split(" ", 1)[0]
        ratio_rows.append([f"{tag}/(a)", rate(r) / rate(a)])
        ratio_rows.append([f"{tag}/(c)", rate(r) / rate(c)])
    ratio_rows.append(["(z)/(a)  one durable commit per completion / Spiff in memory", rate(z) / rate(a)])
    # An instance commits three times (start, two completions) for two completions: SpiffWorkflow's
    # own work plus 1.5 durable commits per completion is what no engine on this disk can beat.
    ceiling = 1 / (1 / rate(a) + COMMITS_PER_COMPLETION / rate(z))
    ratio_rows.append(["ceiling: (a) + 1.5 commits (z) per completion / Spiff in memory", ceiling / rate(a)])
    ratio_rows.append(["(c)/(a) on CPU time (cpu ms/completion (a) / (c))", a["cpu"] / c["cpu"]])
    say(table(["ratio", "value"], ratio_rows))
    verdict = "reached" if rate(c) / rate(a) >= TARGET else "NOT reached"
    say(f"(c)/(a) = {rate(c) / rate(a):.3f}: target {TARGET:g} {verdict}; the ceiling leaves "
        f"{1000 * (1 / (TARGET * rate(a)) - 1 / ceiling):.3f} ms per completion at the target for everything "
        "else a completion does (SQL, history, projections, the state's JSON, the task lists)")

    # The figures: each ratio taken within one round (both variants under the same load),
    # over the rounds: min / median / max.
    say()
    say(f"Ratios within each round, over {args.rounds} round(s) (min / median / max):")
    plain = by_label[a["label"]]
    spread_rows = []
    for r in [c, *results[4:]]:
        per_round = sorted(rate(x) / rate(y) for x, y in zip(by_label[r["label"]], plain))
        spread_rows.append([f"{r['label'].split(' ', 1)[0]}/(a) completions/s ÷ Spiff in memory",
                            per_round[0], per_round[len(per_round) // 2], per_round[-1]])
    say(table(["ratio", "min", "median", "max"], spread_rows))
    with database("sqlite") as url:
        counts = per_completion(url)
    say(f"SQL statements per task completion (bench/statements.py, SQLite): "
        f"{(counts['complete 1'] + counts['complete 2']) / 2:.1f} "
        f"(first task {counts['complete 1']}, last task {counts['complete 2']}; target 8); "
        f"start {counts['start']}, task list {counts['tasks']}")

    if args.profile:
        profile_tigao(args.profile_instances or min(n, 200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
