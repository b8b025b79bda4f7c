"""Replay benchmark: replaying and verifying history against the run that wrote it.

Two measurements, each compared with the original run measured in the same process:

1. one instance with about 10,000 events (a draft/review loop taken many times): the time to
   run it through the engine, then the time to replay it from its events (`tigao replay`);
2. `verify --all` (chains, seals and replays) over 10,000 completed instances, against the time
   it took to run them.

The ratio replay/original is what the audit issue asks for (target: 1.5 or less).

    .venv/bin/python bench/bench_replay.py [--events 10000] [--instances 10000]

Runs on SQLite files in a temporary folder (durable commits, as the engine ships).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Engine  # noqa: E402
from engine.audit import Auditor  # noqa: E402

BPMN = ROOT / "tests" / "bpmn"
ORG = BPMN / "org.toml"


def fresh_engine(tmp: Path, name: str) -> Engine:
    eng = Engine(str(tmp / f"{name}.db"))
    eng.init()
    eng.load_directory(ORG)
    eng.deploy([BPMN / "loop_back.bpmn", BPMN / "user_task.bpmn"])
    return eng


def progress(label: str, done: int, total: int, started: float) -> None:
    step = max(total // 10, 1)
    if done % step == 0 or done == total:
        print(f"  {label}: {done:,}/{total:,} ({time.perf_counter() - started:.1f} s)", flush=True)


def long_instance(eng: Engine, events: int) -> tuple[int, float, int]:
    """Run loop_back around until the instance has about `events` events."""
    t0 = time.perf_counter()
    iid = eng.start("loop_back", actor="alice")
    rounds = max(events // 4, 1)  # each round: two tasks created, two completed
    for n in range(1, rounds + 1):
        draft = eng.tasks(scope="all", instance_id=iid)[0]
        eng.complete(draft.id, "alice", {"text": f"draft {n}"})
        review = eng.tasks(scope="all", instance_id=iid)[0]
        eng.complete(review.id, "carol", {"approve": n == rounds})
        progress("original run", n, rounds, t0)
    elapsed = time.perf_counter() - t0
    return iid, elapsed, eng.instance(iid)["events"]


def many_instances(eng: Engine, count: int) -> float:
    t0 = time.perf_counter()
    for n in range(1, count + 1):
        iid = eng.start("user_task", actor="alice")
        task = eng.tasks(scope="all", instance_id=iid)[0]
        eng.complete(task.id, "bob", {"name": f"n{n}"})
        progress("original runs", n, count, t0)
    return time.perf_counter() - t0


def table(rows: list[tuple[str, str, str, str]]) -> None:
    head = ("measurement", "original (s)", "replay (s)", "replay/original")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000, help="events in the long instance")
    ap.add_argument("--instances", type=int, default=10_000, help="completed instances for verify --all")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        print(f"1. one instance with ~{args.events:,} events")
        eng = fresh_engine(tmp, "long")
        iid, original, n_events = long_instance(eng, args.events)
        t0 = time.perf_counter()
        result = Auditor(eng).replay(iid)
        replayed = time.perf_counter() - t0
        assert result.ok, result.divergence
        rows.append((f"replay of 1 instance, {n_events:,} events", f"{original:.1f}", f"{replayed:.1f}",
                     f"{replayed / original:.2f}"))
        eng.close()

        print(f"2. verify --all over {args.instances:,} completed instances")
        eng = fresh_engine(tmp, "many")
        original = many_instances(eng, args.instances)
        Auditor(eng).seal("erin")
        t0 = time.perf_counter()
        n, failures = Auditor(eng).verify(progress=lambda d, t: progress("verify", d, t, t0))
        verified = time.perf_counter() - t0
        assert not failures, failures[:3]
        rows.append((f"verify --all, {n:,} instances", f"{original:.1f}", f"{verified:.1f}",
                     f"{verified / original:.2f}"))
        eng.close()
    print()
    table(rows)
    print("\ntarget: replay/original <= 1.5")


if __name__ == "__main__":
    main()
