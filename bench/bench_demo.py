"""`tigao demo` (the whole simulated campaign year on a new SQLite file), this tree against another.

    .venv/bin/python bench/bench_demo.py --before DIR      # DIR: an earlier checkout (git worktree add)
    .venv/bin/python bench/bench_demo.py --rounds 1        # this tree only

Each round runs the demo from each tree in turn, as a new process (`python -c` with the tree first
on `sys.path`, the project's virtualenv), each on a new database in a temporary directory, and
times its wall clock and CPU (`os.times` of the child). Reported: min / median / max per tree and
the ratio this tree ÷ DIR within each round (min / median / max), which is what the runtime issue
asks for ("`tigao demo` wall time ÷ before this change, same run").
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, say, table, temp_sqlite

LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from cli import main; sys.exit(main())"


def run_demo(tree: Path, db: str, args: list[str]) -> tuple[float, float]:
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", LAUNCH, str(tree), "demo", "--db", db, *args], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def mmm(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="an earlier tree to time in the same run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--complaints", type=int, default=24)
    args = ap.parse_args()
    trees = {"this tree": ROOT}
    if args.before:
        if not (args.before / "cli.py").is_file():
            sys.exit(f"{args.before} is not a Tigao tree (no cli.py); give a checkout, e.g. git worktree add DIR COMMIT")
        trees["before"] = args.before.resolve()
    for tree in trees.values():
        compileall.compile_dir(str(tree), quiet=1, rx=__import__("re").compile(r"/(\.venv|tests|\.git)/"))
    walls: dict[str, list[float]] = {k: [] for k in trees}
    cpus: dict[str, list[float]] = {k: [] for k in trees}
    ratios: list[float] = []
    for r in range(1, args.rounds + 1):
        for name, tree in trees.items():
            with temp_sqlite("demo.db") as url:
                wall, cpu = run_demo(tree, url, ["--complaints", str(args.complaints)])
            walls[name].append(wall)
            cpus[name].append(cpu)
            say(f"  round {r}: {name}: {wall:.1f} s wall, {cpu:.1f} s cpu")
        if args.before:
            ratios.append(walls["this tree"][-1] / walls["before"][-1])
    say(table(["tree", "wall s (min / median / max)", "cpu s (min / median / max)"],
              [[name, mmm(walls[name]), mmm(cpus[name])] for name in trees]))
    if ratios:
        say(f"this tree ÷ before, wall, within each round (min / median / max): {mmm(ratios)}; "
            f"target 0.4 or less: {'reached' if statistics.median(ratios) <= 0.4 else 'not reached'}")


if __name__ == "__main__":
    main()
