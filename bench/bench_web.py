"""The web pages under load: the task list with 100 and with 100,000 open tasks, and the task page
of a campaign task late in the year. Prints times (3 rounds, min/median/max) and the ratios
measured in this run (target: task list at 100,000 / at 100 <= 2).

    .venv/bin/python bench/bench_web.py [--big 100000] [--rounds 3] [--requests 20]

The open tasks beyond the first hundred are projection rows (the task list reads only the
projection tables), inserted in bulk beside instances started through the engine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from page_support import BPMN, PASSWORD, org_with_admin, prepare  # noqa: E402
from storage.models import HumanTask  # noqa: E402
from web.app import create_app  # noqa: E402


def _rounds(fn: Any, rounds: int, requests: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(requests):
            fn()
        out.append((time.perf_counter() - t0) / requests * 1000)
    return out


def _fmt(ms: list[float]) -> str:
    return f"{min(ms):8.1f} {statistics.median(ms):8.1f} {max(ms):8.1f}"


def _client(url: str, user: str) -> TestClient:
    c = TestClient(create_app(url, worker=False))
    c.__enter__()
    r = c.post("/login", data={"user": user, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return c


def _list_db(folder: Path, open_tasks: int) -> str:
    url = str(folder / f"list-{open_tasks}.db")
    e = prepare(url, org_with_admin(folder), deploy=[BPMN, ROOT / "tests" / "web"])
    ids = [e.start("web_form", actor="alice") for _ in range(min(open_tasks, 100))]
    with e._tx() as s:
        proto = s.scalars(select(HumanTask).where(HumanTask.instance_id == ids[0])).first()
        assert proto is not None
        rows = []
        now = e.clock.now()
        for n in range(open_tasks - len(ids)):
            rows.append({"instance_id": ids[n % len(ids)], "spiff_id": f"bulk-{n}", "element_id": proto.element_id,
                         "name": proto.name, "assignee": "alice", "state": "open", "priority": n % 100,
                         "form_key": proto.form_key, "created_at": now, "due_at": now + timedelta(days=n % 30),
                         "escalation_level": 0})
            if len(rows) == 5000:
                s.execute(insert(HumanTask), rows)
                rows = []
        if rows:
            s.execute(insert(HumanTask), rows)
    e.close()
    return url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tigao-bench-web-") as tmp:
        folder = Path(tmp)
        print(f"building databases with 100 and {args.big:,} open tasks ...", flush=True)
        small, big = _list_db(folder, 100), _list_db(folder, args.big)
        results = {}
        for name, url in (("100", small), (f"{args.big:,}", big)):
            c = _client(url, "alice")
            c.get("/tasks")  # warm the caches
            results[name] = _rounds(lambda c=c: c.get("/tasks").raise_for_status(), args.rounds, args.requests)
            c.__exit__(None, None, None)
        print(f"\n{'page':42} {'min ms':>8} {'median':>8} {'max':>8}")
        for name, ms in results.items():
            print(f"{'/tasks with ' + name + ' open tasks':42} {_fmt(ms)}")
        a, b = (statistics.median(v) for v in results.values())
        print(f"\nratio task list {args.big:,} / 100 (median): {b / a:.2f} (target <= 2)")
        print("\nplaying a small campaign year for the task page ...", flush=True)
        from campaign.demo import run_demo

        url = str(folder / "campaign.db")
        run_demo(url, seed=1, complaints=6, staff_limit=2)
        from engine import Engine

        e = Engine(url)
        from engine.identity import Identity

        late = max((t for t in e.tasks(scope="all", state="any", limit=100000)
                    if t.process_key in ("phase3_evaluate", "campaign")), key=lambda t: t.created_at)
        first = min((t for t in e.tasks(scope="all", state="any", limit=100000)), key=lambda t: t.created_at)
        user = late.completed_by or late.assignee or "u01"
        Identity(e).set_password(user, PASSWORD)
        e.close()
        c = _client(url, user)
        pages = {"first task of the year": f"/tasks/{first.id}", "a task late in the year": f"/tasks/{late.id}"}
        times = {k: _rounds(lambda p=p: c.get(p).raise_for_status(), args.rounds, max(3, args.requests // 4))
                 for k, p in pages.items()}
        for k, ms in times.items():
            print(f"{'task page, ' + k:42} {_fmt(ms)}")
        f, l_ = (statistics.median(v) for v in times.values())
        print(f"ratio task page late / first (median): {l_ / f:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
