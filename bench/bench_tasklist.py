"""Task lists at 10k, 100k and 1M open tasks: does a page cost the same whatever the open tasks?

Three databases of the same shape are made (SQLite files, or PostgreSQL databases with `--db`),
holding 10k, 100k and 1M open human tasks (plus one completed task in ten). The directory has 600
staff in 30 departments with 10 roles; each task is offered to one group (a role or a department,
40 alike), three in ten are assigned to someone, two in three have a due date within 30 days either
side of now, priorities are random. The shape does not change with the size, so a list that reads
a page costs the same at every size, and one that reads every open task costs 100x at 1M.

Each round measures, on every database in turn (so load from other processes falls on all sizes
alike), the lists a staff member (u007: role r7, department d07) sees on the web page: the first
page of 50 (`Engine.tasks(..., limit=51)`, as /tasks asks for it) for each filter, and the capped
count the page shows beside it (`task_count(cap=99)`). Each run counts, reads the page (right
after the count: "after count", cold caches) and reads it again ("page"). A filter's time is the
median of `--runs` runs; the figure is 1M / 10k per round, 3 rounds, min / median / max.

The databases get statistics after the fill (ANALYZE; on PostgreSQL VACUUM ANALYZE, which also
sets the visibility map), as any database that has run a while has.

Usage:
  .venv/bin/python bench/bench_tasklist.py [--db postgresql://postgres@127.0.0.1:5432/test]
      [--sizes 10000,100000,1000000] [--rounds 3] [--runs 9]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from common import HERE, Progress, apply_pragmas, database, describe_db, say, table

TARGET = 1.5  # "my tasks" at 1M open tasks / at 10k (issue 11)
USER = "u007"
USERS, DEPARTMENTS, ROLES = 600, 30, 10
PROCESSES = ["bench_two_tasks", "complaint", "rectification", "evaluation", "inspection"]
BATCH = 20000
COUNT_CAP = 99  # as web/pages/tasks.py counts

# (name, filters of Engine.tasks) as the web page's filter bar offers them to USER
LISTS: list[tuple[str, dict[str, Any]]] = [
    ("available (my tasks)", {}),
    ("mine", {"scope": "mine"}),
    ("overdue", {"overdue": True}),
    ("due this week", {"due_before": "week"}),
    ("group r7", {"group": "r7"}),
    ("process", {"process_key": "complaint"}),
    ("all, department d07", {"scope": "all", "department": "d07"}),
    ("all", {"scope": "all"}),
]


def directory_file(folder: Path) -> Path:
    lines = ["[roles.staff]", 'name = "Staff"']
    for r in range(ROLES):
        lines += [f"[roles.r{r}]", f'name = "Role {r}"']
    for d in range(DEPARTMENTS):
        lines += [f"[departments.d{d:02d}]", f'name = "Department {d}"', f'head = "u{d:03d}"']
    for u in range(USERS):
        lines += [f"[users.u{u:03d}]", f'name = "User {u}"', f'department = "d{u % DEPARTMENTS:02d}"',
                  f'roles = ["staff", "r{u % ROLES}"]']
    path = folder / "directory.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fill(url: str, size: int, org: Path, now: datetime) -> None:
    """`size` open tasks (and size/9 completed ones) in size/10 instances, inserted in batches."""
    from sqlalchemy import insert

    from engine import Engine
    from storage.schema import human_tasks, instances, task_candidates

    eng = Engine(url)
    eng.init()
    eng.load_directory(org)
    eng.deploy([HERE / "two_tasks.bpmn", HERE / "forms" / "ack.json"], "u000")
    rnd = random.Random(size)
    groups = [f"r{r}" for r in range(ROLES)] + [f"d{d:02d}" for d in range(DEPARTMENTS)]
    total = size + size // 9
    n_instances = (total + 9) // 10
    sa = eng._connect()
    with sa.begin() as c:
        for start in range(0, n_instances, BATCH):
            c.execute(insert(instances), [
                {"id": i + 1, "definition_id": 1, "process_key": PROCESSES[i % len(PROCESSES)],
                 "status": "running", "state": "{}", "state_format": 1, "started_at": now, "last_seq": 0,
                 "last_hash": "0" * 64, "version": 1}
                for i in range(start, min(n_instances, start + BATCH))])
    progress = Progress(f"tasks of the {size:,} database", total, pct=20)
    done = 0
    while done < total:
        rows, cands = [], []
        for i in range(done, min(total, done + BATCH)):
            tid = i + 1
            open_ = i % 10 != 9
            rows.append({
                "id": tid, "instance_id": i // 10 + 1, "spiff_id": f"s{tid}", "element_id": "Task_ack",
                "name": "Acknowledge", "state": "open" if open_ else "completed",
                "priority": rnd.randint(1, 100), "created_at": now - timedelta(days=40),
                "due_at": now + timedelta(minutes=rnd.randint(-30 * 1440, 30 * 1440)) if i % 3 else None,
                "assignee": f"u{rnd.randrange(USERS):03d}" if rnd.random() < 0.3 else None,
                "escalation_level": 0})
            cands.append({"task_id": tid, "kind": "group", "value": rnd.choice(groups)})
        with sa.begin() as c:
            c.execute(insert(human_tasks), rows)
            c.execute(insert(task_candidates), cands)
        done += len(rows)
        progress.tick(done)
    if sa.dialect.name == "postgresql":  # as autovacuum leaves a table: statistics and visibility map
        with sa.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    else:
        with sa.connect() as c:
            c.exec_driver_sql("ANALYZE")
            c.commit()
    eng.close()
    if sa.dialect.name == "sqlite":
        # The fill's pages into the database file, as SQLite's checkpoints leave a database that
        # has run a while (pages still in the WAL are found through its index, not the memory map).
        import sqlite3

        con = sqlite3.connect(url)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()


def measure(eng: Any, filters: dict[str, Any], runs: int, now: datetime) -> tuple[float, float, int, float]:
    """(median seconds of the page, of the capped count, rows on the page, of the page read right
    after the count). The page after a count starts with cold caches (the count walked up to a
    hundred matches' worth of the list), as the task page's own list does after its counts."""
    args = dict(filters)
    if args.get("due_before") == "week":
        args["due_before"] = now + timedelta(days=7)
    page, count, cold, rows = [], [], [], 0
    for _ in range(runs):
        t = time.perf_counter()
        eng.task_count(USER, cap=COUNT_CAP, **args)
        count.append(time.perf_counter() - t)
        t = time.perf_counter()
        eng.tasks(USER, limit=51, **args)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = len(eng.tasks(USER, limit=51, **args))
        page.append(time.perf_counter() - t)
    return statistics.median(page), statistics.median(count), rows, statistics.median(cold)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="a PostgreSQL URL (admin connection); default: SQLite files")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--pragma", action="append", default=[],
                    help="diagnostic: an extra SQLite PRAGMA for the measured engines, e.g. cache_size=-65536")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kind = "postgresql" if args.db else "sqlite"
    from engine import Engine

    now = datetime.now(timezone.utc).replace(microsecond=0)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tigao_tasklist_")))
        org = directory_file(folder)
        urls = {}
        for size in sizes:
            url = stack.enter_context(database(kind, args.db, tag=f"_{size}"))
            t = time.perf_counter()
            fill(url, size, org, now)
            say(f"  filled {size:,} open tasks in {time.perf_counter() - t:.1f} s")
            urls[size] = url
        say(f"\n{describe_db(urls[sizes[0]])}: {USER}'s task lists, median of {args.runs} calls per round")
        engines = {size: stack.enter_context(_closing(Engine(urls[size]))) for size in sizes}
        for eng in engines.values():
            apply_pragmas(eng, args.pragma)
        for size in sizes:  # warm: directory and settings cached, pages in the OS cache
            for _name, filters in LISTS:
                measure(engines[size], filters, 1, now)
        results: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
        for r in range(args.rounds):
            for name, filters in LISTS:
                for size in sizes:
                    results.setdefault((name, size), []).append(measure(engines[size], filters, args.runs, now))
            say(f"  round {r + 1}/{args.rounds} done")
        big, small = sizes[-1], sizes[0]
        rows = []
        for name, _filters in LISTS:
            cells: list[Any] = [name, f"{results[(name, small)][0][2]} / {results[(name, big)][0][2]}"]
            for size in sizes:
                cells.append(statistics.median(x[0] for x in results[(name, size)]) * 1000)
            ratios = sorted(a[0] / b[0] for a, b in zip(results[(name, big)], results[(name, small)]))
            cells.append(" / ".join(f"{x:.2f}" for x in ratios))
            colds = sorted(a[3] / b[3] for a, b in zip(results[(name, big)], results[(name, small)]))
            cells.append(" / ".join(f"{x:.2f}" for x in colds))
            counts = sorted(a[1] / b[1] for a, b in zip(results[(name, big)], results[(name, small)]))
            cells.append(f"{statistics.median(x[1] for x in results[(name, big)]) * 1000:.1f}")
            cells.append(" / ".join(f"{x:.2f}" for x in counts))
            rows.append(cells)
        headers = (["list", "rows"] + [f"{s // 1000:,}k ms" for s in sizes]
                   + [f"{big // 1000:,}k/{small // 1000}k page", "after count", f"{big // 1000:,}k count ms",
                      "count ratio"])
        say(table(headers, rows, right=set(range(1, len(headers)))))
        mine = sorted(a[0] / b[0] for a, b in zip(results[(LISTS[0][0], big)], results[(LISTS[0][0], small)]))
        cold = sorted(a[3] / b[3] for a, b in zip(results[(LISTS[0][0], big)], results[(LISTS[0][0], small)]))
        say(f"\n\"my tasks\" ({LISTS[0][0]}) at {big:,} / at {small:,} open tasks: "
            f"{' / '.join(f'{x:.2f}' for x in mine)} (min / median / max of {args.rounds} rounds; target <= {TARGET}); "
            f"read right after its count: {' / '.join(f'{x:.2f}' for x in cold)}")
    return 0


class _closing:
    def __init__(self, eng: Any):
        self.eng = eng

    def __enter__(self) -> Any:
        return self.eng

    def __exit__(self, *exc: Any) -> None:
        self.eng.close()


if __name__ == "__main__":
    raise SystemExit(main())
