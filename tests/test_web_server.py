"""`tigao serve` as a real process: the in-process deadline worker fires timers, concurrent
clients completing one task get exactly one success, and login lockout per address."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from web_support import Server, Site, password, prepare

from engine.identity import ADDRESS_FAILURES

pytest_plugins = ["web_support"]  # the `site` fixture
API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_serve__in_process_worker_fires_due_timers(db_url: str, tmp_path: Path) -> None:
    tokens, _ = prepare(db_url, tmp_path)
    srv = Server(db_url)
    try:
        r = httpx.post(srv.base + f"{API}/processes/timer_only/instances", json={"data": {"wait": "PT1H"}},
                       headers=bearer(tokens["alice"]))
        assert r.status_code == 201, r.text
        inst = r.json()
        assert inst["timers"] and inst["status"] == "running"
        r = httpx.post(srv.base + f"{API}/clock", json={"advance": "PT2H"}, headers=bearer(tokens["ada"]))
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        status = "running"
        while time.monotonic() < deadline and status == "running":
            time.sleep(0.5)
            status = httpx.get(srv.base + f"{API}/instances/{inst['id']}", headers=bearer(tokens["erin"])).json()["status"]
        assert status == "completed"
    finally:
        code, err = srv.stop()
    assert code == 0, err


@pytest.mark.slow
def test_serve__two_clients_complete_one_task__exactly_one_succeeds(db_url: str, tmp_path: Path) -> None:
    tokens, _ = prepare(db_url, tmp_path)
    srv = Server(db_url, "--no-worker")
    try:
        for _ in range(3):
            inst = httpx.post(srv.base + f"{API}/processes/user_task/instances", json={},
                              headers=bearer(tokens["alice"])).json()
            task = inst["open_tasks"][0]["id"]
            barrier = threading.Barrier(2)
            codes: list[int] = []

            def complete(user: str, task: int = task, barrier: threading.Barrier = barrier) -> None:
                with httpx.Client(base_url=srv.base, headers=bearer(tokens[user]), timeout=60) as c:
                    barrier.wait()
                    codes.append(c.post(f"{API}/tasks/{task}/complete", json={"data": {"name": user}}).status_code)

            threads = [threading.Thread(target=complete, args=(u,)) for u in ("alice", "bob")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(codes) == [200, 409]
            history = httpx.get(srv.base + f"{API}/instances/{inst['id']}/history",
                                headers=bearer(tokens["erin"])).json()["items"]
            assert sum(e["type"] == "task_completed" for e in history) == 1
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_login__locked_out_per_address(site: Site) -> None:
    for i in range(ADDRESS_FAILURES):
        r = site.post(f"{API}/session", json={"user": f"guess{i}", "password": "nope-nope"})
        assert r.status_code == 401
    r = site.post(f"{API}/session", json={"user": "bob", "password": password("bob")})
    assert r.status_code == 429 and "address" in r.json()["detail"]
