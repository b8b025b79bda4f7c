"""User-task completions per second through the HTTP API, with and without group commit, in one run.

One process (bench/two_tasks.bpmn, its first user task, form `ack` {"ok": true}, lane `staff`).
A "completion" is one user task completed; the instances are started beforehand (not timed).

  (spiff)  plain SpiffWorkflow in memory, as bench_tasks.py (a) measures it (no storage at all).
  (lib)    the library in this process: `engine.complete(task, user, data)` in a loop.
  (group)  a real `tigao serve --no-worker` on a loopback port, group commit on (the default):
           C concurrent clients (threads, one httpx connection and one staff user's Bearer token
           each) take task ids from one queue and `POST /api/v1/tasks/{id}/complete`.
  (single) the same against a second server started with `--no-group-commit` (each request
           commits alone), on the same database.
  (no http) diagnostic: C threads of this process hand `engine.complete` to a GroupCommit of
           their own (engine/groupcommit.py): group commit without HTTP, auth or the reply.
  (empty)  ceiling: the same clients against bench/empty_server.py, FastAPI on uvicorn answering
           the same POST with `{}` and doing nothing else. No server on this stack can answer
           faster on this machine; its ratio to SpiffWorkflow bounds every server variant's.

C runs over --clients (default 1, 2, 4, 8). Every round runs every variant once, in turn; min,
median and max over the rounds are printed, with each variant's median against the library's and
against SpiffWorkflow's, and each server's median at C clients against its median at 1 client.

Usage:
  .venv/bin/python bench/bench_http.py [--tasks 200] [--rounds 3] [--clients 1,2,4,8]
                                       [--db postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
from common import HERE, ORG, ROOT, database, describe_db, say, table

sys.path.insert(0, str(ROOT))
from engine import Engine
from engine.groupcommit import GroupCommit
from engine.identity import Identity

BPMN = HERE / "two_tasks.bpmn"
KEY = "bench_two_tasks"
FORM = {"ok": True}
USERS = ["alice", "bob", "carol", "dora"]  # the staff role of tests/bpmn/org.toml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_tasks(eng: Engine, n: int) -> list[int]:
    """Start n instances (untimed) and return the ids of their first user task."""
    ids = [eng.start(KEY, {}, actor="alice") for _ in range(n)]
    out = []
    for i in ids:
        [t] = eng.tasks(scope="all", instance_id=i)
        out.append(t.id)
    return out


def run_lib(eng: Engine, tasks: list[int]) -> float:
    start = time.perf_counter()
    for n, t in enumerate(tasks):
        eng.complete(t, USERS[n % len(USERS)], FORM)
    return len(tasks) / (time.perf_counter() - start)



def _clients_run(client: Callable[[str], None], clients: int) -> float:
    """Run `clients` threads of `client` (each as a staff user, in turn) to the end; seconds taken."""
    threads = [threading.Thread(target=client, args=(USERS[i % len(USERS)],)) for i in range(clients)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - start

def run_http(base: str, tokens: dict[str, str], tasks: list[int], clients: int) -> float:
    work: queue.Queue[int] = queue.Queue()
    for t in tasks:
        work.put(t)
    errors: list[str] = []

    def client(user: str) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=60) as c:
            while True:
                try:
                    t = work.get_nowait()
                except queue.Empty:
                    return
                r = c.post(f"/api/v1/tasks/{t}/complete", json={"data": FORM})
                if r.status_code != 200:
                    errors.append(f"task {t}: {r.status_code} {r.text[:200]}")

    elapsed = _clients_run(client, clients)
    if errors:
        raise SystemExit(f"{len(errors)} completions failed; first: {errors[0]}")
    return len(tasks) / elapsed


def run_group(group: GroupCommit, tasks: list[int], clients: int) -> float:
    """Diagnostic: the server's group commit without HTTP: C threads of this process hand
    `complete` to one GroupCommit (what a request handler does, without auth, JSON or the reply)."""
    work: queue.Queue[int] = queue.Queue()
    for t in tasks:
        work.put(t)

    def client(user: str) -> None:
        while True:
            try:
                t = work.get_nowait()
            except queue.Empty:
                return
            group.run(lambda e: e.complete(t, user, FORM))

    return len(tasks) / _clients_run(client, clients)


def start_server(url: str | None, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """`tigao serve` on the database at url, or, without url, bench/empty_server.py."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ([sys.executable, "-c", "import cli; cli.main()", "--db", url, "serve", "--port", str(port), "--no-worker",
             *extra] if url else [sys.executable, str(HERE / "empty_server.py"), str(port)])
    server = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(300):
        try:
            if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit(f"the server {' '.join(extra)} did not start")


def spiff_rate(n: int) -> float:
    """Completions per second of plain SpiffWorkflow in memory (bench_tasks.py, variant a)."""
    from bench_tasks import run_plain

    r = run_plain(max(1, n // 2), False)  # two completions per instance
    return float(r["completions"] / r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200, help="completions per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,2,4,8", help="concurrent HTTP clients, comma separated")
    ap.add_argument("--db", help="PostgreSQL admin URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    kind = "postgresql" if args.db else "sqlite"
    modes = {"group": (), "single": ("--no-group-commit",)}
    with database(kind, args.db, "http") as url:
        eng = Engine(url)
        eng.init()
        eng.load_directory(ORG)
        eng.deploy([BPMN, HERE / "forms"], actor="alice")
        ident = Identity(eng)
        tokens = {u: ident.create_token(u, "bench")[1] for u in USERS}
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        group: GroupCommit | None = None
        try:
            for mode, extra in modes.items():
                servers[mode] = start_server(url, *extra)
            servers["empty"] = start_server(None)
            say(f"bench_http: {args.tasks} completions per variant and round, {args.rounds} rounds, "
                f"{describe_db(url)}, servers " + ", ".join(f"{m} pid {p.pid}" for m, (p, _b) in servers.items()))
            spiff_rate(20)
            run_lib(eng, open_tasks(eng, 5))  # warm up every side (caches, connections)
            for _mode, (_p, base) in servers.items():
                run_http(base, tokens, open_tasks(eng, 10), 2)
            results: dict[str, list[float]] = {"spiff (memory)": [], "library": []}
            for c in clients:
                for mode in modes:
                    results[f"http {mode} x{c}"] = []
            for c in clients:
                results[f"no http, group x{c}"] = []
            for c in clients:
                results[f"empty server x{c}"] = []
            group = GroupCommit(url)
            run_group(group, open_tasks(eng, 5), 2)
            for r in range(1, args.rounds + 1):
                results["spiff (memory)"].append(spiff_rate(args.tasks))
                results["library"].append(run_lib(eng, open_tasks(eng, args.tasks)))
                for c in clients:
                    for mode in modes:
                        base = servers[mode][1]
                        results[f"http {mode} x{c}"].append(run_http(base, tokens, open_tasks(eng, args.tasks), c))
                    # (the empty server never reads the ids: any ids will do)
                    results[f"empty server x{c}"].append(run_http(servers["empty"][1], tokens,
                                                                  list(range(args.tasks)), c))
                for c in clients:
                    results[f"no http, group x{c}"].append(run_group(group, open_tasks(eng, args.tasks), c))
                say(f"  round {r}: " + ", ".join(f"{k} {v[-1]:.1f}/s" for k, v in results.items()))
        finally:
            if group is not None:
                group.close()
            for server, _base in servers.values():
                server.terminate()
                server.wait(30)
            eng.close()
    med = {k: statistics.median(v) for k, v in results.items()}
    lib, spiff = med["library"], med["spiff (memory)"]
    rows = [[k, min(v), med[k], max(v), med[k] / lib, med[k] / spiff] for k, v in results.items()]
    say("")
    say(table(["variant", "min/s", "median/s", "max/s", "÷ library", "÷ SpiffWorkflow"], rows))
    scaling = [[f"x{c}"] + [med[f"http {m} x{c}"] / med[f"http {m} x{clients[0]}"] for m in modes]
               + [med[f"http group x{c}"] / med[f"http single x{c}"]] for c in clients]
    say("")
    say(table(["clients", f"group ÷ group x{clients[0]}", f"single ÷ single x{clients[0]}", "group ÷ single"],
              scaling))


if __name__ == "__main__":
    main()
