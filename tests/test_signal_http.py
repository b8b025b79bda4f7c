"""Signals over HTTP: `/api/v1/signals` in-process, and `/engine-rest/signal` on a real `tigao serve`
driven by pycamunda's signal calls; SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pycamunda
import pycamunda.signal
import pytest
from requests.auth import HTTPBasicAuth

from engine import Engine
from engine.audit import Auditor
from web_support import Server, Site, password, prepare, site  # noqa: F401 - fixtures

EVENTS = Path(__file__).parent / "bpmn" / "events"
CATCH, START = EVENTS / "signal_catch.bpmn", EVENTS / "signal_start.bpmn"


def _waiting(url: str, n: int) -> list[int]:
    e = Engine(url)
    try:
        e.deploy([CATCH, START], actor="ada")
        return [e.start("signal_catch", {"n": i}, actor="alice") for i in range(n)]
    finally:
        e.close()


def _open(engine: Engine, iid: int) -> list[str]:
    return [t.element_id for t in engine.instance(iid)["tasks"] if t.state == "open"]


def test_api_v1__signal_broadcast__roles_and_bad_input(site: Site) -> None:
    ids = _waiting(site.url, 2)
    assert site.post("/api/v1/signals", json={"name": "go"}).status_code == 401
    assert site.post("/api/v1/signals", "erin", json={"name": "go"}).status_code == 403
    assert site.post("/api/v1/signals", "bob", json={"name": ""}).status_code == 400
    assert site.post("/api/v1/signals", "bob", json={"name": "go", "data": [1]}).status_code == 400
    assert site.post("/api/v1/signals", "bob", json={"name": "go", "extra": 1}).status_code == 400
    assert all(_open(site.engine, i) == [] for i in ids)  # nothing moved
    r = site.post("/api/v1/signals", "bob", json={"name": "go", "data": {"why": "ready"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body["delivered_to"]) == ids and len(body["started"]) == 1 and body["failed"] == []
    for iid in ids:
        assert _open(site.engine, iid) == ["Task_after"]
        assert site.engine.instance(iid)["data"]["why"] == "ready"
        [ev] = [e for e in site.engine.history(iid) if e.type == "signal_received"]
        assert ev.actor == "bob"
    _n, failures = Auditor(site.engine).verify(ids, replay=True)
    assert failures == []
    nobody = site.post("/api/v1/signals", "bob", json={"name": "nobody-listens"})
    assert nobody.status_code == 404 and "nobody-listens" in nobody.json()["detail"]


@pytest.mark.slow
def test_engine_rest__signal__with_pycamunda(db_url: str, tmp_path: Path) -> None:
    prepare(db_url, tmp_path)
    ids = _waiting(db_url, 3)
    srv = Server(db_url, "--no-worker")
    url = srv.base + "/engine-rest"
    auth = HTTPBasicAuth("carol", password("carol"))
    try:
        one = pycamunda.signal.EventSingle(url, name="go", execution_id=str(ids[0]))
        one.auth = auth
        one.add_variable("target", "first", "String")
        one()
        e = Engine(db_url)
        assert _open(e, ids[0]) == ["Task_after"] and _open(e, ids[1]) == []
        assert e.instance(ids[0])["data"]["target"] == "first"
        assert len(e.instances(key="signal_start")) == 0  # delivered to one execution only

        again = pycamunda.signal.EventSingle(url, name="go", execution_id=str(ids[0]))
        again.auth = auth
        with pytest.raises(pycamunda.BadRequest, match="not waiting for signal 'go'"):
            again()
        auditor = pycamunda.signal.EventAll(url, name="go")
        auditor.auth = HTTPBasicAuth("erin", password("erin"))
        with pytest.raises(pycamunda.Forbidden):
            auditor()
        bad = pycamunda.signal.EventAll(url, name="go")
        bad.auth = auth
        bad.add_variable("n", "many", "Integer")
        with pytest.raises(pycamunda.BadRequest, match="n"):
            bad()
        assert _open(e, ids[1]) == []

        everyone = pycamunda.signal.EventAll(url, name="go")
        everyone.auth = auth
        everyone.add_variable("amount", 5, "Integer")
        everyone()
        assert _open(e, ids[1]) == ["Task_after"] and _open(e, ids[2]) == ["Task_after"]
        assert e.instance(ids[2])["data"]["amount"] == 5
        [started] = e.instances(key="signal_start")
        assert e.instance(started["id"])["data"]["amount"] == 5

        nobody = pycamunda.signal.EventAll(url, name="nobody-listens")
        nobody.auth = auth
        nobody()  # 204, as in Camunda: a signal nobody waits for reaches nobody
        r = httpx.post(f"{url}/signal", json={"name": "go", "tenantId": "t1"}, auth=("carol", password("carol")))
        assert r.status_code == 400 and "tenant" in r.json()["message"]
        r = httpx.post(f"{url}/signal", json={"variables": {}}, auth=("carol", password("carol")))
        assert r.status_code == 400 and set(r.json()) == {"type", "message"}
        e.close()
    finally:
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err
