"""How long the command line takes to start and answer: `tigao --help`, a staff task list and
`tigao show`, each a new process, beside the interpreter's own start (`python -c pass`).

A database with N open tasks (default 2,000) is made with the real engine in a temporary
directory: the directory of tests/bpmn/org.toml, bench/two_tasks.bpmn deployed, N instances started
(one open task each, offered to the `staff` role). Then every round runs each command R times,
the commands interleaved (so a burst of load from other processes hits all of them alike):

  python -c pass                        the interpreter's floor
  python -c "import sqlalchemy"         the floor of any command that reads the database
  tigao --help
  tigao --db DB tasks --as alice        alice is staff: the first 500 of the N tasks are printed
  tigao --db DB show ID                 loads the instance's state with SpiffWorkflow

Wall time and CPU time (user + system, of the child) per run; min / median / max over all runs,
the median of each round, and each command's median minus the interpreter's (what the command
itself costs). With `--before DIR` (a plain export of an earlier revision, e.g.
`git archive main | tar -x -C DIR`) the tigao commands run a second time from that tree against
the same database, in the same rounds, for a before/after ratio.

Python's bytecode cache is written first (compileall), as an installation does: with
PYTHONDONTWRITEBYTECODE=1 in the environment every run would compile the project's modules again.

Usage:
  .venv/bin/python bench/bench_cli.py [--tasks 2000] [--rounds 3] [--runs 5] [--before DIR]
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

from common import HERE, ORG, ROOT, Progress, say, table, temp_sqlite

TARGET = 0.25  # seconds of wall time for `tigao --help` and `tigao tasks` (issue 11)
LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from cli import main; sys.exit(main())"


def make_database(path: str, tasks: int) -> int:
    """The database of the benchmark; returns the id of an instance in its middle (for `show`)."""
    from engine import Engine

    eng = Engine(path)
    eng.init()
    eng.load_directory(ORG)
    eng.deploy([HERE / "two_tasks.bpmn", HERE / "forms" / "ack.json"], "carol")
    progress = Progress("instances started", tasks, pct=20)
    ids = []
    for i in range(tasks):
        ids.append(eng.start("bench_two_tasks", {}, actor="alice"))
        progress.tick(i + 1)
    assert len(eng.tasks("alice", limit=tasks + 1)) == tasks
    eng.close()
    return ids[len(ids) // 2]


def commands(db: str, show_id: int, before: Path | None) -> dict[str, list[str]]:
    py = sys.executable
    script = Path(py).parent / "tigao"
    tigao = [str(script)] if script.exists() else [py, "-c", LAUNCH, str(ROOT)]
    runs = {"python -c pass": [py, "-c", "pass"],
            "python -c 'import sqlalchemy'": [py, "-c", "import sqlalchemy"]}
    trees = [("", tigao)] + ([(" (before)", [py, "-c", LAUNCH, str(before)])] if before else [])
    for tag, cmd in trees:
        runs["tigao --help" + tag] = cmd + ["--help"]
        runs["tigao tasks --as alice" + tag] = cmd + ["--db", db, "tasks", "--as", "alice"]
        runs[f"tigao show {show_id}" + tag] = cmd + ["--db", db, "show", str(show_id)]
    return runs


def check(name: str, out: str, tasks: int) -> None:
    """The command did its work (the timing of a failing command means nothing)."""
    if name.startswith("tigao tasks"):
        rows = [ln for ln in out.splitlines()[2:] if ln.strip()]
        assert len(rows) == min(tasks, 500) and "Acknowledge A" in rows[0], out[:300]
    elif name.startswith("tigao show"):
        assert out.startswith("instance ") and "Acknowledge A" in out, out[:300]
    elif name.startswith("tigao --help"):
        assert "Usage:" in out and "tasks" in out, out[:300]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one run of `cmd` as a new process, and its stdout."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()[:500]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=2000, help="open tasks in the database (default 2000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5, help="runs of each command per round (default 5)")
    ap.add_argument("--before", type=Path, metavar="DIR",
                    help="also run the tigao commands from this tree (an earlier revision's files)")
    args = ap.parse_args()
    if args.before and not (args.before / "cli.py").exists():
        raise SystemExit(f"{args.before}: no cli.py there; export a revision with git archive REV | tar -x -C DIR")

    for tree in [ROOT] + ([args.before] if args.before else []):
        for part in ("cli.py", "engine", "storage"):
            target = tree / part
            ok = (compileall.compile_file(str(target), quiet=1) if target.is_file()
                  else compileall.compile_dir(str(target), quiet=1))
            if not ok:
                raise SystemExit(f"cannot compile {target}")
    env = {k: v for k, v in os.environ.items() if k not in ("TIGAO_DB", "TIGAO_USER", "PYTHONPATH")}
    env["COLUMNS"] = "100"

    with temp_sqlite("cli.db") as db:
        say(f"database: {args.tasks:,} open tasks ({db})")
        show_id = make_database(db, args.tasks)
        runs = commands(db, show_id, args.before)
        walls: dict[str, list[list[float]]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        for name, cmd in runs.items():  # one untimed run each: caches warm, and the output checked
            check(name, timed(cmd, env)[2], args.tasks)
        for r in range(args.rounds):
            progress = Progress(f"round {r + 1}/{args.rounds}", args.runs * len(runs), pct=50)
            done = 0
            for name in runs:
                walls[name].append([])
            for _ in range(args.runs):
                for name, cmd in runs.items():
                    wall, cpu, out = timed(cmd, env)
                    check(name, out, args.tasks)
                    walls[name][-1].append(wall)
                    cpus[name].append(cpu)
                    done += 1
                    progress.tick(done)

    floor = statistics.median(w for rnd in walls["python -c pass"] for w in rnd)
    rows = []
    for name in runs:
        flat = [w for rnd in walls[name] for w in rnd]
        med = statistics.median(flat)
        rows.append([name, min(flat), med, max(flat),
                     " / ".join(f"{statistics.median(rnd):.3f}" for rnd in walls[name]),
                     min(cpus[name]), statistics.median(cpus[name]), med - floor])
    say()
    say(f"seconds per run, {args.rounds} rounds x {args.runs} runs, {args.tasks:,} open tasks, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    say(table(["command", "wall min", "wall median", "wall max", "median per round", "cpu min", "cpu median",
               "median - python"], rows))
    say()
    medians = {row[0]: row[2] for row in rows}
    cpu = {row[0]: row[6] for row in rows}
    sa = "python -c 'import sqlalchemy'"
    # On SQLite `tigao tasks` imports no SQLAlchemy at all (engine/quickread.py): the ratio says
    # what the whole command costs next to that one import.
    say(f"tigao tasks / import sqlalchemy = {medians['tigao tasks --as alice'] / medians[sa]:.2f} (median wall), "
        f"{cpu['tigao tasks --as alice'] / cpu[sa]:.2f} (cpu)")
    for name in ("tigao --help", "tigao tasks --as alice"):
        verdict = "reached" if medians[name] < TARGET else "not reached"
        say(f"{name}: median {medians[name]:.3f} s wall; target < {TARGET} s: {verdict}")
    if args.before:
        for name in [n for n in runs if n.startswith("tigao") and not n.endswith("(before)")]:
            b = name + " (before)"
            say(f"{name}: after / before = {medians[name] / medians[b]:.2f} (median wall), "
                f"{cpu[name] / cpu[b]:.2f} (median cpu)")


if __name__ == "__main__":
    main()
