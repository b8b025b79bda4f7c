"""Due timers fired per second by one deadline worker on SQLite, at 1,000 and at 100,000 timers.

For each size, in a fresh SQLite file on a simulated clock:

  1. create the instances through the engine, one `engine.start("timer_only", {"wait": ...})` each
     (tests/bpmn/timer_only.bpmn: start -> intermediate timer with duration `${wait}` -> end), so
     every instance waits on one timer row; timed and reported (a line every 5%);
  2. move the simulated clock past every due time;
  3. time one `Worker(engine).run_once()` that fires them all (each in its own transaction: load the
     instance, fire the timer, advance to the end, project, save, commit durably).

Waits are varied by default (PT1M .. PT60M spread over the instances, so due order is not creation
order); --fixed gives every instance PT1H (all due at the same instant).

Reported: creation time and rate, timers per second, ms per timer, and the ratio
(time per timer at the large size) / (time per timer at the small size); target 1.2 or less,
i.e. firing stays (nearly) constant-time per timer as the table grows.

Reference lines: plain SpiffWorkflow (CamundaParser) firing the same timer workflow in memory, its
clock advanced past the due time (SpiffWorkflow reads `datetime.now`, which the benchmark shifts):
per workflow `refresh_timers()` + `do_engine_steps()`; and the same with a JSON load/save around it.
These run on --ref workflows (default 10,000), created in chunks so memory stays small.

Progress of the worker pass is taken from the `tigao.worker` logger (one INFO record per fired
timer, counted by a handler; the worker logs that line anyway, only the level is lowered).

Usage:
  .venv/bin/python bench/bench_timers.py [--timers 100000] [--small 1000] [--fixed] [--ref 10000]
                                         [--profile]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from common import (
    ORG,
    apply_pragmas,
    T0,
    TEST_BPMN,
    Progress,
    cumulative_of,
    hms,
    profile_call,
    say,
    self_time_groups,
    table,
    temp_sqlite,
    top_cumulative,
    total_time,
)

BPMN = TEST_BPMN / "timer_only.bpmn"
KEY = "timer_only"
MAX_WAIT_MIN = 60


def wait_for(i: int, fixed: bool) -> str:
    if fixed:
        return "PT1H"
    # A permutation-like spread over 1..60 minutes: neighbours in creation order are far apart in due order.
    return f"PT{1 + (i * 37) % MAX_WAIT_MIN}M"


class _Counter(logging.Handler):
    def __init__(self, progress: Progress | None):
        super().__init__(logging.INFO)
        self.count = 0
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.progress is not None:
            self.progress.tick(self.count)


# ---------------------------------------------------------------------------------------------
# Tigao


def run_size(n: int, fixed: bool, profile: bool = False, pragmas: list[str] | None = None,
             tag: str = "") -> dict[str, Any]:
    import os

    from sqlalchemy import func, select

    from engine import Engine, Worker
    from storage.models import Instance, Timer

    with temp_sqlite() as url:
        first = Engine(url)
        first.init(simulated=T0)
        first.close()
        eng = Engine(url)
        apply_pragmas(eng, pragmas or [])
        try:
            eng.load_directory(ORG)
            eng.deploy([BPMN], actor="dora")
            say(f"[{n:,} timers] creating {n:,} instances through engine.start ...")
            p = Progress(f"create {n:,}", n, 5)
            t0 = time.perf_counter()
            c0 = time.process_time()
            for i in range(n):
                eng.start(KEY, {"wait": wait_for(i, fixed)}, actor="alice")
                p.tick(i + 1)
            create_s = time.perf_counter() - t0
            create_cpu = time.process_time() - c0
            with eng._tx() as s:
                pending = s.scalar(select(func.count()).select_from(Timer)
                                   .where(Timer.state == "pending", Timer.kind == "timer"))
                last_due = s.scalar(select(func.max(Timer.due_at)))
            if pending != n:
                raise SystemExit(f"expected {n} pending timers after creation, found {pending}")
            eng.set_clock(max(last_due, T0) + timedelta(minutes=1))
            say(f"[{n:,} timers] created in {hms(create_s)} ({n / create_s:,.1f} starts/s); clock moved to "
                f"{eng.now().isoformat()}; firing with one Worker.run_once() ...")

            log = logging.getLogger("tigao.worker")
            old_level, old_prop = log.level, log.propagate
            handler = _Counter(Progress(f"fire {n:,}", n, 5))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
            worker = Worker(eng, name="bench")
            stats = None
            try:
                t0 = time.perf_counter()
                c0 = time.process_time()
                if profile:
                    fired, stats = profile_call(worker.run_once)
                else:
                    fired = worker.run_once()
                fire_s = time.perf_counter() - t0
                fire_cpu = time.process_time() - c0
            finally:
                log.removeHandler(handler)
                log.setLevel(old_level)
                log.propagate = old_prop
            with eng._tx() as s:
                states = dict(s.execute(select(Timer.state, func.count()).group_by(Timer.state)).all())
                statuses = dict(s.execute(select(Instance.status, func.count())
                                          .group_by(Instance.status)).all())
            ok = (len(fired) == n and all(f.outcome == "fired" for f in fired) and states == {"fired": n}
                  and statuses == {"completed": n})
            if not ok:
                outcomes: dict[str, int] = {}
                for f in fired:
                    outcomes[f.outcome] = outcomes.get(f.outcome, 0) + 1
                say(f"!! unexpected result: {len(fired)} fired {outcomes}, timer states {states}, "
                    f"instances {statuses}")
            in_order = all((a.due_at, a.timer_id) <= (b.due_at, b.timer_id) for a, b in zip(fired, fired[1:]))
            say(f"[{n:,} timers] fired {len(fired):,} in {hms(fire_s)} ({len(fired) / fire_s:,.1f}/s); "
                f"all completed: {ok}; in due order: {in_order}")
        finally:
            eng.close()
        db_bytes = sum(os.path.getsize(url + sfx) for sfx in ("", "-wal") if os.path.exists(url + sfx))
    return {"n": n, "tag": tag, "create_s": create_s, "create_cpu": create_cpu, "fire_s": fire_s,
            "fire_cpu": fire_cpu, "fired": len(fired), "ok": ok, "stats": stats, "db_bytes": db_bytes}


# ---------------------------------------------------------------------------------------------
# Plain SpiffWorkflow reference


def run_reference(n: int, fixed: bool, with_json: bool, chunk: int = 1000) -> dict[str, Any]:
    import SpiffWorkflow.bpmn.specs.event_definitions.timer as timer_mod
    from lxml import etree
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
    from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

    class ShiftedDateTime(datetime):
        offset = timedelta(0)

        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return datetime.now(tz) + cls.offset

    # Plain SpiffWorkflow evaluates the timer value as Python: `${wait}` -> `wait`.
    text = BPMN.read_text(encoding="utf-8").replace("${wait}", "wait")
    parser = CamundaParser()
    parser.add_bpmn_xml(etree.fromstring(text.encode("utf-8")), filename=BPMN.name)
    spec = parser.get_spec(KEY)
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))
    saved = timer_mod.datetime
    timer_mod.datetime = ShiftedDateTime  # type: ignore[misc]
    fire_s = 0.0
    try:
        done = 0
        while done < n:
            m = min(chunk, n - done)
            batch: list[Any] = []
            for i in range(done, done + m):
                wf = BpmnWorkflow(spec)
                wf.task_tree.data.update({"wait": wait_for(i, fixed)})
                wf.do_engine_steps()
                batch.append(ser.serialize_json(wf) if with_json else wf)
            ShiftedDateTime.offset += timedelta(minutes=MAX_WAIT_MIN + 1)
            t0 = time.perf_counter()
            for item in batch:
                wf = ser.deserialize_json(item) if with_json else item
                wf.refresh_timers()
                wf.do_engine_steps()
                if with_json:
                    ser.serialize_json(wf)
                if not wf.is_completed():
                    raise SystemExit("reference workflow did not complete after its timer was due")
            fire_s += time.perf_counter() - t0
            done += m
    finally:
        timer_mod.datetime = saved  # type: ignore[misc]
    return {"n": n, "fire_s": fire_s}


# ---------------------------------------------------------------------------------------------

PROFILE_POINTS = [
    ("Worker._fire_next (per timer, whole tx)", "engine/deadlines.py", "_fire_next"),
    ("  Engine._sync_clock", "engine/base.py", "_sync_clock"),
    ("  Engine._load_run (lock + load state)", "engine/instances.py", "_load_run"),
    ("    StateSerializer.loads", "engine/state.py", "loads"),
    ("  Run.finish (projection + save)", "engine/run.py", "finish"),
    ("    record_fired_timers", "engine/deadlines.py", "record_fired_timers"),
    ("    sync_timers", "engine/deadlines.py", "sync_timers"),
    ("    StateSerializer.dumps", "engine/state.py", "dumps"),
    ("  history.append", "engine/history.py", "append"),
    ("  Session.flush", "sqlalchemy/orm/session.py", "flush"),
    ("  sqlite3 Connection.commit (fsync)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("  sqlite3 Cursor.execute (all SQL)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timers", type=int, default=100_000, help="the large size (default 100000)")
    ap.add_argument("--small", type=int, default=1_000, help="the small size, run first (default 1000)")
    ap.add_argument("--fixed", action="store_true", help="every instance waits PT1H (default: 1..60 minutes)")
    ap.add_argument("--ref", type=int, default=10_000,
                    help="workflows in the plain SpiffWorkflow reference (0 to skip; default 10000)")
    ap.add_argument("--profile", action="store_true", help="profile the worker pass of the small size")
    ap.add_argument("--no-repeat-small", action="store_true",
                    help="do not run the small size again after the large one")
    ap.add_argument("--pragma", action="append", default=[],
                    help="diagnostic: an extra SQLite PRAGMA for the engine's connections, e.g. "
                         "cache_size=-65536 (repeatable; the default is the engine's own settings)")
    args = ap.parse_args(argv)
    if args.timers < 1 or args.small < 1:
        ap.error("sizes must be at least 1")

    say(f"bench_timers: sizes {args.small:,} and {args.timers:,}, waits "
        f"{'all PT1H' if args.fixed else f'PT1M..PT{MAX_WAIT_MIN}M'}, SQLite (WAL, synchronous=FULL"
        f"{', ' + ', '.join(args.pragma) if args.pragma else ''}), simulated clock at {T0.isoformat()}")
    started = time.perf_counter()
    small = run_size(args.small, args.fixed, args.profile, args.pragma, "before")
    smalls, big = [small], None
    if args.timers != args.small:
        big = run_size(args.timers, args.fixed, False, args.pragma)
        if not args.no_repeat_small:
            # Load from other processes drifts over a long run: time the small size again afterwards
            # and compare the large one with both.
            smalls.append(run_size(args.small, args.fixed, False, args.pragma, "after"))
    results = smalls[:1] + ([big] if big else []) + smalls[1:]
    refs = []
    if args.ref > 0:
        say(f"reference: plain SpiffWorkflow, {args.ref:,} timer workflows in memory, then with JSON ...")
        refs.append(("SpiffWorkflow, memory", run_reference(args.ref, args.fixed, False)))
        refs.append(("SpiffWorkflow + JSON load/save", run_reference(args.ref, args.fixed, True)))

    say()
    rows = []
    for r in results:
        name = f"Tigao worker, {r['n']:,} timers" + (f" ({r['tag']})" if r["tag"] and big else "")
        rows.append([name, r["n"], r["create_s"], r["n"] / r["create_s"], r["fire_s"], r["fire_cpu"],
                     r["fired"] / r["fire_s"], 1000 * r["fire_s"] / r["fired"],
                     1000 * r["fire_cpu"] / r["fired"], r["db_bytes"] / 1e6])
    for label, r in refs:
        rows.append([label, r["n"], "", "", r["fire_s"], "", r["n"] / r["fire_s"],
                     1000 * r["fire_s"] / r["n"], "", ""])
    say(table(["variant", "timers", "create s", "starts/s", "fire s", "fire cpu s", "timers/s", "ms/timer",
               "cpu ms/timer", "db MB"], rows))

    def per(r: dict[str, Any], key: str) -> float:
        return r[key] / r["fired"]

    say()
    ratios: list[list[Any]] = []
    if big:
        base_wall = sum(per(r, "fire_s") for r in smalls) / len(smalls)
        base_cpu = sum(per(r, "fire_cpu") for r in smalls) / len(smalls)
        which = "the mean of the small runs" if len(smalls) > 1 else f"{args.small:,}"
        ratios.append([f"ms/timer at {big['n']:,} / at {which} (target <= 1.2)",
                       per(big, "fire_s") / base_wall])
        for r in smalls:
            ratios.append([f"  ... / at {r['n']:,} ({r['tag']})", per(big, "fire_s") / per(r, "fire_s")])
        ratios.append([f"same on CPU time: cpu ms/timer at {big['n']:,} / at {which}",
                       per(big, "fire_cpu") / base_cpu])
        ratios.append([f"creation ms/instance at {big['n']:,} / at {args.small:,} ({smalls[0]['tag']})",
                       (big["create_s"] / big["n"]) / (small["create_s"] / small["n"])])
    for label, r in refs:
        ref_rate = r["n"] / r["fire_s"]
        for t in results:
            ratios.append([f"Tigao timers/s at {t['n']:,}{' (' + t['tag'] + ')' if t['tag'] and big else ''} "
                           f"/ {label}", (t["fired"] / t["fire_s"]) / ref_rate])
    if ratios:
        say(table(["ratio", "value"], ratios))
    if big:
        v = ratios[0][1]
        say(f"scaling ratio {v:.3f}: target 1.2 {'reached' if v <= 1.2 else 'NOT reached'}")
    say(f"total benchmark time {hms(time.perf_counter() - started)}")

    stats = results[0]["stats"]
    if stats is not None:
        n = results[0]["n"]
        total = total_time(stats)
        say()
        say(f"== Profile of the worker pass at {n:,} timers ==")
        say(top_cumulative(stats, 15))
        say()
        say(table(["function", "seconds", "% of pass", "calls", "ms/timer"],
                  [[lab, ct, 100 * ct / total if total else 0.0, calls, 1000 * ct / n]
                   for lab, ct, calls in cumulative_of(stats, PROFILE_POINTS)]))
        say()
        say(table(["component (self time)", "seconds", "%"],
                  [[g, s, 100 * sh] for g, s, sh in self_time_groups(stats)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
