"""The migration and modification endpoints of /api/v1: administrators only, problem+json for
every refusal with nothing changed, and verify/replay holding afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import BPMN
from web_support import Site

from engine import Engine
from engine.audit import Auditor

pytest_plugins = ["web_support"]  # the `site` fixture


def _v2(site: Site, tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    shutil.copytree(BPMN / "forms", v2 / "forms")
    text = (BPMN / "user_task.bpmn").read_text(encoding="utf-8")
    (v2 / "user_task.bpmn").write_text(text.replace('name="Fill in the form"', 'name="Fill in (v2)"'),
                                       encoding="utf-8")
    assert Engine(site.url).deploy([v2], actor="ada")[0].version == 2


def _holds(site: Site, iid: int) -> None:
    _n, failures = Auditor(Engine(site.url)).verify([iid])
    assert failures == []


def test_api__migrate_and_modify(site: Site, tmp_path: Path) -> None:
    iid = site.post("/api/v1/processes/user_task/instances", "alice", json={}).json()["id"]
    _v2(site, tmp_path)
    body = {"to_version": 2, "reason": "relabel"}
    r = site.post(f"/api/v1/instances/{iid}/migrate", "alice", json=body)
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    r = site.post(f"/api/v1/instances/{iid}/migrate", "ada", json={**body, "to_version": 9})
    assert r.status_code == 404
    r = site.post(f"/api/v1/instances/{iid}/migrate", "ada", json={**body, "mapping": {"Task_fill": "Nope"}})
    assert r.status_code == 409 and "Nope" in r.json()["detail"]
    assert Engine(site.url).instance(iid)["version"] == 1
    r = site.post(f"/api/v1/instances/{iid}/migrate", "ada", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["to"] == 2
    _holds(site, iid)
    r = site.post(f"/api/v1/instances/{iid}/variables", "ada", json={"name": "amount", "value": [1, 2],
                                                                     "reason": "fix"})
    assert r.status_code == 200 and r.json()["data"]["amount"] == [1, 2]
    r = site.post(f"/api/v1/instances/{iid}/start-before", "ada", json={"element_id": "Ghost", "reason": "x"})
    assert r.status_code == 400
    r = site.post(f"/api/v1/instances/{iid}/cancel-activity", "ada", json={"element_id": "Task_fill",
                                                                           "reason": "not needed"})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    _holds(site, iid)
    r = site.post(f"/api/v1/instances/{iid}/variables", "ada", json={"name": "a", "value": 1, "reason": "x"})
    assert r.status_code == 409


def test_api__migrate_all(site: Site, tmp_path: Path) -> None:
    ids = [site.post("/api/v1/processes/user_task/instances", "alice", json={}).json()["id"] for _ in range(2)]
    _v2(site, tmp_path)
    r = site.post("/api/v1/processes/user_task/versions/1/migrate", "bob", json={"to_version": 2, "reason": "x"})
    assert r.status_code == 403
    r = site.post("/api/v1/processes/user_task/versions/1/migrate", "ada", json={"to_version": 2, "reason": "x"})
    assert r.status_code == 200 and r.json() == {"moved": ids, "refused": {}}
    for iid in ids:
        _holds(site, iid)
