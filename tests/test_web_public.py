"""The 24-hour hotline on the web: anyone files a complaint without an account and follows it by code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaign.demo import FORMS, ORG, PROCESSES
from engine import Engine
from engine.identity import Identity
from engine.timeutil import parse_datetime
from page_support import PASSWORD, login
from storage.models import Event, Instance, PublicCase
from web.app import create_app

GOOD = {"complainant": "王先生", "contact": "13800000000", "where": "路政所窗口",
        "description": "窗口工作人員態度惡劣,推諉不辦。"}


@pytest.fixture
def hotline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, TestClient]]:
    monkeypatch.setenv("TIGAO_PUBLIC_PER_HOUR", "3")
    url = str(tmp_path / "hotline.db")
    e = Engine(url)
    e.init(simulated=parse_datetime("2012-03-01T09:00:00+08:00"))
    e.load_directory(ORG)
    e.deploy([PROCESSES, FORMS], actor="u05")
    Identity(e).set_password("u06", PASSWORD)
    with TestClient(create_app(url, worker=False)) as client:
        yield e, client
    e.close()


def _code(html: str) -> str:
    m = re.search(r'data-testid="tracking-code">([A-Z0-9-]+)<', html)
    assert m, html[:2000]
    return m.group(1)


def test_public__files_a_complaint_without_login__and_tracks_it(hotline: tuple[Engine, TestClient]) -> None:
    e, c = hotline
    form = c.get("/public/complaint", headers={"Accept-Language": "zh-TW"})
    assert form.status_code == 200 and 'name="description"' in form.text and "投訴內容" in form.text
    r = c.post("/public/complaint", data=GOOD)
    assert r.status_code == 201
    code = _code(r.text)
    with e._tx() as s:
        case = s.scalar(select(PublicCase).where(PublicCase.code == code))
        assert case is not None and case.address != "testclient"  # only a salted hash is kept
        inst = s.get(Instance, case.instance_id)
        assert inst.process_key == "complaint" and inst.started_by == "public"
    data = e.instance(case.instance_id)["data"]
    assert data["description"] == GOOD["description"] and data["contact"] == GOOD["contact"]
    t = c.get(f"/track/{code}", headers={"Accept-Language": "en"})
    assert t.status_code == 200 and _stage(t.text) == "Registered"
    for internal in ("13800000000", "Task_register_complaint", "efficiency_office", "u0"):
        assert internal not in t.text
    # The office registers it: the case is routed, then handled by the department.
    reg = next(x for x in e.tasks(scope="all", instance_id=case.instance_id) if x.element_id == "Task_register_complaint")
    e.complete(reg.id, "u06", {"source": "hotline", "category": 1, "severity": "minor", "repeated": False,
                               "department": "road_admin", "person": "", "description": GOOD["description"],
                               "sensitive_matter": "none"})
    t = c.get(f"/track/{code.lower().replace('-', '')}", headers={"Accept-Language": "en"})
    assert t.status_code == 200 and ("Being handled" in _stage(t.text) or "Routed" in _stage(t.text))


def _stage(html: str) -> str:
    m = re.search(r"<strong>([^<]+)</strong> · <span class=\"tag ok\" data-testid=\"stage\">", html)
    return m.group(1) if m else ""


def test_public__invalid_form__errors_next_to_fields__nothing_stored(hotline: tuple[Engine, TestClient]) -> None:
    e, c = hotline
    with e._tx() as s:
        before = s.scalar(select(func.count()).select_from(Event))
    r = c.post("/public/complaint", data={"contact": "1", "description": "short"}, headers={"Accept-Language": "en"})
    assert r.status_code == 422
    assert 'data-field="contact"' in r.text and 'class="field has-error" data-field="description"' in r.text
    assert 'value="1"' in r.text
    with e._tx() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == before


def test_public__flood_from_one_address__is_refused(hotline: tuple[Engine, TestClient]) -> None:
    e, c = hotline
    for _ in range(3):
        assert c.post("/public/complaint", data=GOOD).status_code == 201
    r = c.post("/public/complaint", data=GOOD, headers={"Accept-Language": "en"})
    assert r.status_code == 429
    with e._tx() as s:
        assert s.scalar(select(func.count()).select_from(PublicCase)) == 3


def test_track__unknown_or_malformed_code__says_so_alike(hotline: tuple[Engine, TestClient]) -> None:
    _e, c = hotline
    a = c.get("/track/ABCD-EFGH-JKMN", headers={"Accept-Language": "en"})
    b = c.get("/track/'; DROP TABLE instances; --", headers={"Accept-Language": "en"})
    assert a.status_code == b.status_code == 404
    assert "No case has that tracking code" in a.text and "No case has that tracking code" in b.text


def test_public__a_process_not_marked_public__is_not_offered(hotline: tuple[Engine, TestClient]) -> None:
    _e, c = hotline
    assert c.get("/public/campaign").status_code == 404
    assert c.post("/public/campaign", data={}).status_code == 404
    assert "/public/complaint" in c.get("/public").text


def test_staff_page_login_still_works_beside_public(hotline: tuple[Engine, TestClient]) -> None:
    _e, c = hotline
    login(c, "u06")
    assert c.get("/tasks").status_code == 200
