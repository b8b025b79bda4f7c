"""The web pages without JavaScript: plain HTTP with a cookie jar, as an old browser would use them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine import Engine
from page_support import BPMN, PASSWORD, csrf_of, login, org_with_admin, prepare
from storage.models import Definition, Event, HumanTask
from web.app import create_app

WEB = Path(__file__).parent / "web"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    url = str(tmp_path / "web.db")
    e = prepare(url, org_with_admin(tmp_path), deploy=[BPMN, WEB])
    app = create_app(url, worker=False)
    with TestClient(app) as client:
        yield e, client
    e.close()


def _task_id(e: Engine, instance_id: int, element: str) -> int:
    return next(t.id for t in e.tasks(scope="all", instance_id=instance_id) if t.element_id == element)


def test_pages__not_logged_in__go_to_login_and_come_back(site: tuple[Engine, TestClient]) -> None:
    _e, c = site
    r = c.get("/tasks?f=mine", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = c.post("/login", data={"user": "alice", "password": PASSWORD, "next": "/tasks?f=mine"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/tasks?f=mine"


def test_login__wrong_password__is_refused_on_the_page(site: tuple[Engine, TestClient]) -> None:
    _e, c = site
    r = c.post("/login", data={"user": "alice", "password": "nope"}, headers={"Accept-Language": "en"})
    assert r.status_code == 401 and "Wrong user or password" in r.text
    assert "tigao_session" not in c.cookies


def test_login__next_to_another_site__stays_here(site: tuple[Engine, TestClient]) -> None:
    _e, c = site
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil"):
        r = c.post("/login", data={"user": "alice", "password": PASSWORD, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/"


def test_task_form__field_error_shown_next_to_field__then_completed(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    tid = _task_id(e, iid, "Task_report")
    login(c, "alice")
    page = c.get("/tasks", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and f'data-task-id="{tid}"' in page.text and "Describe the defect" in page.text
    form = c.get(f"/tasks/{tid}", headers={"Accept-Language": "en"})
    html = form.text
    # Every input is named by its dotted path; oneOf choices show their titles, not 1..3.
    for name in ("summary", "details", "seen_on", "reported_at", "email", "lanes_blocked", "cost", "urgent",
                 "category", "tags", "location.road", "location.km"):
        assert f'name="{name}"' in html, name
    assert "行政慢作為" in html and '<textarea id="f-details"' in html and 'type="date"' in html
    assert "<svg" in html  # the diagram with this task marked
    token = csrf_of(html)
    bad = {"csrf": token, "summary": "ok", "lanes_blocked": "9", "category": "2", "location.road": "",
           "cost": "cheap", "email": "not-an-email", "urgent": "false"}
    r = c.post(f"/tasks/{tid}/complete", data=bad, headers={"Accept-Language": "en"})
    assert r.status_code == 422
    fields = _errors_by_field(r.text)
    assert "cost" in fields  # not a number: caught before the schema is even asked
    assert 'value="cheap"' in r.text and 'value="9"' in r.text  # what the user typed is kept
    with e._tx() as s:
        assert s.get(HumanTask, tid).state == "open"
    good = {**bad, "cost": "12.5", "email": "a@b.example", "lanes_blocked": "2", "summary": "Pothole",
            "location.road": "S203", "location.km": "14.2", "tags": "asphalt\nnight", "urgent": "true",
            "reported_at": "2012-03-01T10:30", "seen_on": "2012-03-01"}
    before = c.app.state.group.commands
    r = c.post(f"/tasks/{tid}/complete", data=good, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/tasks"
    assert c.app.state.group.commands == before + 1  # in the server's group commit
    done = c.get("/tasks", headers={"Accept-Language": "en"})
    assert 'class="flash ok"' in done.text and f'data-task-id="{tid}"' not in done.text
    data = e.instance(iid)["data"]
    assert data["location"] == {"road": "S203", "km": 14.2} and data["tags"] == ["asphalt", "night"]
    assert data["urgent"] is True and data["lanes_blocked"] == 2 and data["category"] == 2
    assert data["reported_at"].startswith("2012-03-01T10:30:00+08:00")


def _errors_by_field(html: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r'<div class="field has-error" data-field="([^"]+)">(.*?)</div>\s*</?(?:div|fieldset)',
                         html, re.S):
        out[m.group(1)] = m.group(2)
    return out


def test_task_form__schema_errors_each_next_to_its_field(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    tid = _task_id(e, iid, "Task_report")
    login(c, "alice")
    token = csrf_of(c.get(f"/tasks/{tid}").text)
    r = c.post(f"/tasks/{tid}/complete", data={"csrf": token, "summary": "x", "lanes_blocked": "9",
                                                "category": "", "location.km": "-1", "urgent": "false"})
    assert r.status_code == 422
    errs = _errors_by_field(r.text)
    # too short, over the maximum, a required choice left empty, a nested field below its minimum
    assert {"summary", "lanes_blocked", "category", "location.km"} <= set(errs), errs


def test_task__without_csrf__is_refused_and_nothing_changes(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    tid = _task_id(e, iid, "Task_report")
    login(c, "alice")
    with e._tx() as s:
        before = s.scalar(select(func.count()).select_from(Event))
    r = c.post(f"/tasks/{tid}/complete", data={"summary": "Pothole"})
    assert r.status_code == 403
    with e._tx() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == before


def test_task__not_yours__is_refused(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    tid = _task_id(e, iid, "Task_report")
    login(c, "bob")
    page = c.get(f"/tasks/{tid}", headers={"Accept-Language": "en"})
    assert "You may not work on this task" in page.text
    r = c.post(f"/tasks/{tid}/complete", data={"csrf": csrf_of(page.text), "summary": "mine now",
                                                "lanes_blocked": "1", "category": "1", "location.road": "x"})
    assert r.status_code == 403
    with e._tx() as s:
        assert s.get(HumanTask, tid).state == "open"


def test_claim_and_delegate__from_the_task_page(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    e.complete(_task_id(e, iid, "Task_report"), "alice", {"summary": "abc", "lanes_blocked": 0, "category": 1,
                                                           "location": {"road": "r"}})
    tid = _task_id(e, iid, "Task_check")
    login(c, "carol")
    token = csrf_of(c.get(f"/tasks/{tid}").text)
    group = c.app.state.group  # the page's commands go through the server's group commit
    before = group.commands
    r = c.post(f"/tasks/{tid}/claim", data={"csrf": token}, follow_redirects=True)
    assert r.status_code == 200 and e.task(tid).assignee == "carol"
    r = c.post(f"/tasks/{tid}/delegate", data={"csrf": token, "user": "dora"}, follow_redirects=True)
    assert e.task(tid).assignee == "dora"
    assert group.commands == before + 2


def test_task_list__filters_and_counts(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    for _ in range(3):
        e.start("web_form", actor="alice")
    login(c, "alice")
    html = c.get("/tasks?f=mine").text
    assert html.count("data-task-id=") == 3
    assert re.search(r'data-filter="mine">[^<]*<span class="badge[^"]*">3<', html)
    e.advance_clock(__import__("datetime").timedelta(days=3))
    html = c.get("/tasks?f=overdue").text
    assert html.count('class="overdue"') == 3


def test_admin_deploys_a_broken_file__sees_file_and_line__nothing_stored(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    login(c, "ada")
    token = csrf_of(c.get("/deploy").text)
    with e._tx() as s:
        before = s.scalar(select(func.count()).select_from(Definition))
    broken = (BPMN / "bad" / "dunder_script.bpmn").read_bytes()
    r = c.post("/deploy", data={"csrf": token}, files=[("files", ("dunder_script.bpmn", broken, "application/xml"))],
               headers={"Accept-Language": "en"})
    assert r.status_code == 422 and 'data-testid="problems"' in r.text and "dunder_script.bpmn" in r.text
    assert re.search(r"<td>\d+</td>", r.text)  # the line
    with e._tx() as s:
        assert s.scalar(select(func.count()).select_from(Definition)) == before


def test_deploy__staff_may_not(site: tuple[Engine, TestClient]) -> None:
    _e, c = site
    login(c, "alice")
    assert c.get("/deploy").status_code == 403


def test_replay_stepper__forward_back_and_past_the_end(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    e.complete(_task_id(e, iid, "Task_report"), "alice", {"summary": "abc", "lanes_blocked": 0, "category": 1,
                                                           "location": {"road": "r"}})
    total = len(e.history(iid))
    login(c, "erin")
    r1 = c.get(f"/instances/{iid}/replay?step=1", headers={"Accept-Language": "en"})
    assert r1.status_code == 200 and f"Step 1 of {total}" in r1.text and 'rel="next"' in r1.text
    r2 = c.get(f"/instances/{iid}/replay?step={total}", headers={"Accept-Language": "en"})
    assert "Describe the defect" in r2.text or "Check the report" in r2.text
    r3 = c.get(f"/instances/{iid}/replay?step={total + 5}", headers={"Accept-Language": "en"})
    assert r3.status_code == 404 and 'data-testid="past-end"' in r3.text


def test_language__accept_language_and_switch(site: tuple[Engine, TestClient]) -> None:
    _e, c = site
    assert "Log in" in c.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    zh = c.get("/login", headers={"Accept-Language": "zh-TW,zh;q=0.9"}).text
    assert "登入" in zh and "Log in</h1>" not in zh
    r = c.get("/login?lang=en", headers={"Accept-Language": "zh-TW"})
    assert "Log in" in r.text
    assert "Log in" in c.get("/login", headers={"Accept-Language": "zh-TW"}).text  # the choice is kept


def test_every_page__renders_for_its_role(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    login(c, "ada")
    for path in ("/tasks", "/notifications", "/definitions", "/definitions/web_form/1", "/deploy", "/instances",
                 f"/instances/{iid}", f"/instances/{iid}/history", f"/instances/{iid}/replay?step=1", "/directory",
                 "/audit"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "Traceback" not in r.text


def test_audit_page__verify_seal_export(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    e.start("web_form", actor="alice")
    login(c, "erin")
    token = csrf_of(c.get("/audit").text)
    r = c.post("/audit/verify", data={"csrf": token, "instance": ""}, headers={"Accept-Language": "en"})
    assert r.status_code == 200 and 'data-testid="verify-result"' in r.text and "All 1 instances verify" in r.text
    assert 'data-progress="1"' in r.text  # progress lines stream before the result
    r = c.post("/audit/seal", data={"csrf": token})
    assert 'data-testid="seal-result"' in r.text
    exp = c.get("/audit/export")
    assert exp.status_code == 200 and exp.headers["content-disposition"].startswith("attachment")
    assert '"kind": "event"' in exp.text


def test_auditor__may_not_act(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = e.start("web_form", actor="alice")
    tid = _task_id(e, iid, "Task_report")
    login(c, "erin")
    page = c.get(f"/tasks/{tid}")
    assert page.status_code == 200 and 'action="/tasks/' not in page.text
    r = c.post(f"/tasks/{tid}/complete", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 403


def _headers(lang: str = "en") -> dict[str, Any]:
    return {"Accept-Language": lang}
