"""External tasks: fetch-and-lock and complete per second, with few and with many open tasks.

For each database: N instances of `tests/bpmn/external/external_charge.bpmn` wait at their external
task; one worker fetches batches of 10 and completes each task (the flow then creates a user task).
Measured twice, with `--small` and `--large` open tasks, so the ratio shows what the number of
waiting tasks costs a fetch. Asserts only that the work was done.

    .venv/bin/python bench/bench_external.py [--db postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import database, describe_db, say, table  # noqa: E402

from engine import Engine  # noqa: E402

DIAGRAM = ROOT / "tests" / "bpmn" / "external" / "external_charge.bpmn"
ORG = ROOT / "tests" / "bpmn" / "org.toml"


def run(url: str, open_tasks: int, measured: int) -> tuple[float, float]:
    """Seconds per fetched batch of 10 and per completion, with `open_tasks` waiting."""
    e = Engine(url)
    e.init()
    e.load_directory(ORG)
    e.deploy([DIAGRAM], actor="dora")
    for n in range(open_tasks):
        e.start("external_charge", {"amount": n % 100}, actor="alice")
    fetch_s = complete_s = 0.0
    done = 0
    while done < measured:
        t0 = time.perf_counter()
        got = e.fetch_and_lock("bench", [{"topic": "charge", "lock_duration": 600_000}], max_tasks=10)
        fetch_s += time.perf_counter() - t0
        assert got, "no task left to fetch"
        t0 = time.perf_counter()
        for t in got:
            e.complete_external(t["id"], "bench", {"paid": True})
        complete_s += time.perf_counter() - t0
        done += len(got)
    assert len(e.external_tasks(limit=100_000)) == open_tasks - done
    e.close()
    return fetch_s / (done / 10), complete_s / done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a PostgreSQL URL (admin connection) to measure it as well as SQLite")
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--large", type=int, default=2000)
    ap.add_argument("--measured", type=int, default=100, help="tasks fetched and completed per run")
    args = ap.parse_args()
    rows = []
    for kind in ["sqlite"] + (["postgresql"] if args.db else []):
        results = []
        for n in (args.small, args.large):
            with database(kind, args.db, tag=f"_{n}") as url:
                say(f"{describe_db(url)}: {n} open tasks ...")
                results.append(run(url, n, min(args.measured, n)))
        (f1, c1), (f2, c2) = results
        rows.append([kind, f"{f1 * 1000:.1f}", f"{f2 * 1000:.1f}", f"{f2 / f1:.2f}",
                     f"{1 / c1:.0f}", f"{1 / c2:.0f}"])
    say(table(["database", f"fetch 10 ms @{args.small}", f"fetch 10 ms @{args.large}", "ratio",
               f"completions/s @{args.small}", f"completions/s @{args.large}"], rows, right={1, 2, 3, 4, 5}))


if __name__ == "__main__":
    main()
