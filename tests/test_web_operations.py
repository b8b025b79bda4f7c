"""The operators' pages without JavaScript: incidents, external tasks, and an administrator's
migration and modification of one instance. Plain HTTP with a cookie jar; every refusal is a page
in the user's language, and nothing stored changes."""

from __future__ import annotations

import re
from html import unescape
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine import Engine
from engine.audit import Auditor
from ops_support import at_charge, at_review, deploy, with_incident
from page_support import BPMN, csrf_of, login, org_with_admin, prepare
from storage.models import Event
from web.app import create_app

WEB = Path(__file__).parent / "web"
EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-TW"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    url = str(tmp_path / "ops.db")
    e = prepare(url, org_with_admin(tmp_path), deploy=[BPMN, WEB])
    deploy(e, 1)
    app = create_app(url, worker=False)
    with TestClient(app) as client:
        yield e, client
    e.close()


def _events(e: Engine) -> int:
    with e._tx() as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def _token(c: TestClient, path: str = "/incidents") -> str:
    return csrf_of(c.get(path).text)


# ----------------------------------------------------------------------------- incidents
def test_incidents__admin_sees_and_retries__resolved_listed_apart(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid, inc = with_incident(e)
    login(c, "ada")
    page = c.get("/incidents", headers=EN)
    assert page.status_code == 200
    row = re.search(rf'<tr data-incident-id="{inc["id"]}">(.*?)</tr>', page.text, re.S)
    assert row and "the payment gateway is down" in row.group(1) and f'href="/instances/{iid}"' in row.group(1)
    assert "Task_charge" in row.group(1) and f'action="/incidents/{inc["id"]}/retry"' in row.group(1)
    r = c.post(f"/incidents/{inc['id']}/retry", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/incidents"
    assert e.incidents() == []
    after = c.get("/incidents", headers=EN).text
    resolved = after.split('data-testid="resolved-incidents"')[1]
    assert f'data-incident-id="{inc["id"]}"' in resolved and "ada" in resolved
    assert "No open incidents." in after
    # The task has one more retry: a worker may fetch it again (what `tigao retry` does).
    [row2] = e.external_tasks(instance_id=iid)
    assert row2["retries"] == 1


def test_incidents__many_resolved__a_new_open_one_is_still_shown(site: tuple[Engine, TestClient],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from web.pages import operations

    monkeypatch.setattr(operations, "LIMIT", 2)  # a page of two rows: five resolved fill it over
    e, c = site
    old = [with_incident(e)[1] for _ in range(5)]
    for inc in old:
        e.retry_incident(inc["id"], "ada")
    _iid, new = with_incident(e)
    login(c, "ada")
    page = c.get("/incidents", headers=EN).text
    open_part, resolved_part = page.split('data-testid="resolved-incidents"')
    assert f'data-incident-id="{new["id"]}"' in open_part.split('data-testid="open-incidents"')[1]
    assert 'data-testid="more-open"' not in page
    # The last resolved first, two of five, with a word that there are more.
    shown = re.findall(r'data-incident-id="(\d+)"', resolved_part)
    assert shown == [str(old[4]["id"]), str(old[3]["id"])]
    assert "The last 2 resolved are shown." in page


def test_incidents__retry_twice__refused_in_chinese__nothing_changes(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    _iid, inc = with_incident(e)
    e.retry_incident(inc["id"], "ada")
    login(c, "ada")
    token = _token(c)
    before = _events(e)
    r = c.post(f"/incidents/{inc['id']}/retry", data={"csrf": token}, headers=ZH)
    assert r.status_code == 409 and 'data-testid="refusal"' in r.text
    assert "引擎拒絕了此變更;未做任何變更。" in r.text and "already resolved" in r.text
    assert _events(e) == before
    r = c.post("/incidents/999999/retry", data={"csrf": token}, headers=EN)
    assert r.status_code == 404 and "That does not exist" in r.text
    assert _events(e) == before


def test_incidents__without_csrf_or_as_auditor__refused(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    _iid, inc = with_incident(e)
    before = _events(e)
    login(c, "ada")
    assert c.post(f"/incidents/{inc['id']}/retry", data={}).status_code == 403
    login(c, "erin")  # an auditor reads, without the button, and may not act
    page = c.get("/incidents", headers=EN)
    assert page.status_code == 200 and f'data-incident-id="{inc["id"]}"' in page.text
    assert "/retry" not in page.text
    assert c.post(f"/incidents/{inc['id']}/retry", data={"csrf": csrf_of(page.text)}).status_code == 403
    login(c, "alice")  # staff do not see the page at all
    assert c.get("/incidents").status_code == 403
    assert 'href="/incidents"' not in c.get("/tasks").text
    assert _events(e) == before and len(e.incidents()) == 1


def test_incidents__stuck_instance_listed(site: tuple[Engine, TestClient]) -> None:
    from storage.models import ExternalTask

    e, c = site
    iid = at_charge(e)
    with e._tx() as s:  # what an older engine left behind: a waiting step nobody knows about
        for r in s.scalars(select(ExternalTask).where(ExternalTask.instance_id == iid)):
            r.state = "cancelled"
    login(c, "erin")
    html = c.get("/incidents", headers=EN).text
    stuck = html.split('data-testid="stuck"')[1].split("</table>")[0]
    assert f'data-stuck-id="{iid}"' in stuck and "ops_order" in stuck


# ----------------------------------------------------------------------------- external tasks
def test_external_tasks__by_topic_with_worker_lock_and_error__filters(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    locked = at_charge(e, locked=True)
    waiting = at_charge(e)
    failed, _inc = with_incident(e)
    login(c, "erin")
    html = c.get("/external-tasks", headers=EN).text
    assert 'data-topic="charge"' in html
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r'<tr data-external-id="(\d+)">(.*?)</tr>', html, re.S)}
    by_instance = {e.external_tasks(instance_id=i)[0]["id"]: i for i in (locked, waiting, failed)}
    assert set(by_instance) <= set(rows)
    tid_locked = next(k for k, v in by_instance.items() if v == locked)
    tid_waiting = next(k for k, v in by_instance.items() if v == waiting)
    tid_failed = next(k for k, v in by_instance.items() if v == failed)
    assert "pay-1" in rows[tid_locked] and ">locked<" in rows[tid_locked]
    assert "waiting for a worker" in rows[tid_waiting]
    assert "no retries left" in rows[tid_failed] and "the payment gateway is down" in rows[tid_failed]
    assert "/unlock" not in html  # an auditor reads only
    only_locked = c.get("/external-tasks?state=locked", headers=EN).text
    assert f'data-external-id="{tid_locked}"' in only_locked and f'data-external-id="{tid_waiting}"' not in only_locked
    waiting_only = c.get("/external-tasks?state=waiting&topic=charge", headers=EN).text
    assert f'data-external-id="{tid_waiting}"' in waiting_only and f'data-external-id="{tid_locked}"' not in waiting_only
    none = c.get("/external-tasks?topic=nothing-here", headers=EN).text
    assert 'data-testid="no-external"' in none
    assert c.get("/external-tasks?state=bogus").status_code == 200  # an unknown state filter means "open"


def test_external_tasks__admin_unlocks__any_worker_may_fetch(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_charge(e, locked=True)
    [row] = e.external_tasks(instance_id=iid)
    login(c, "ada")
    page = c.get("/external-tasks", headers=EN).text
    assert f'action="/external-tasks/{row["id"]}/unlock"' in page
    r = c.post(f"/external-tasks/{row['id']}/unlock", data={"csrf": csrf_of(page), "back": "/external-tasks?state=open"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/external-tasks?state=open"
    [after] = e.external_tasks(instance_id=iid)
    assert after["worker_id"] is None and after["lock_expires_at"] is None
    assert "external_task_unlocked" in [ev.type for ev in e.history(iid)]
    got = e.fetch_and_lock("pay-2", [{"topic": "charge", "lock_duration": 1000}], max_tasks=10)
    assert row["id"] in [g["id"] for g in got]


def test_external_tasks__unlock_refusals__nothing_changes(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_charge(e, locked=True)
    [row] = e.external_tasks(instance_id=iid)
    before = _events(e)
    login(c, "ada")
    token = _token(c, "/external-tasks")
    assert c.post(f"/external-tasks/{row['id']}/unlock", data={}).status_code == 403  # no CSRF token
    r = c.post("/external-tasks/99999/unlock", data={"csrf": token}, headers=ZH)
    assert r.status_code == 404 and "該項目不存在" in r.text
    r = c.post(f"/external-tasks/{row['id']}/unlock", data={"csrf": token, "back": "https://evil.example/"},
               follow_redirects=False)
    assert r.headers["location"] == "/external-tasks"  # never sent to another site
    assert _events(e) == before + 1
    login(c, "alice")
    assert c.post(f"/external-tasks/{row['id']}/unlock", data={"csrf": _token(c, "/tasks")}).status_code == 403


# ----------------------------------------------------------------------------- one instance
def test_instance_page__lists_its_external_tasks_and_incidents(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid, inc = with_incident(e)
    login(c, "erin")
    html = c.get(f"/instances/{iid}", headers=EN).text
    assert 'data-testid="instance-incidents"' in html and f'data-incident-id="{inc["id"]}"' in html
    assert 'data-testid="instance-external"' in html and "no retries left" in html
    assert 'data-testid="modify"' not in html  # an auditor gets no forms
    login(c, "ada")
    html = c.get(f"/instances/{iid}", headers=EN).text
    assert 'data-testid="modify"' in html and f'action="/incidents/{inc["id"]}/retry"' in html


def test_modify__set_variable__bad_json_and_missing_reason__nothing_changes(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_review(e)
    login(c, "ada")
    token = _token(c, f"/instances/{iid}")
    before = _events(e)
    url = f"/instances/{iid}/modify"
    r = c.post(url, data={"csrf": token, "action": "set", "name": "amount", "value": "two hundred",
                          "reason": "typo"}, headers=ZH)
    assert r.status_code == 400 and "值不是 JSON" in r.text
    assert 'value="two hundred"' in r.text  # what was typed is kept
    r = c.post(url, data={"csrf": token, "action": "set", "name": "amount", "value": "250", "reason": " "}, headers=EN)
    assert r.status_code == 400 and "Give a reason; it goes into the history." in r.text
    r = c.post(url, data={"csrf": token, "action": "set", "name": "_secret", "value": "1", "reason": "x"}, headers=ZH)
    assert r.status_code == 400 and "輸入未被接受;未做任何變更。" in r.text and "_secret" in r.text
    r = c.post(url, data={"csrf": token, "action": "explode", "reason": "x"}, headers=EN)
    assert r.status_code == 400 and "Choose what to change." in r.text
    assert c.post(url, data={"action": "set", "name": "amount", "value": "250", "reason": "x"}).status_code == 403
    assert _events(e) == before and e.instance(iid)["data"]["amount"] == 120
    r = c.post(url, data={"csrf": token, "action": "set", "name": "amount", "value": "250", "reason": "typo"},
               follow_redirects=False)
    assert r.status_code == 303
    assert e.instance(iid)["data"]["amount"] == 250
    assert "variable_set" in [ev.type for ev in e.history(iid)]
    assert Auditor(e).replay(iid).ok


def test_modify__cancel_and_start_before(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_review(e)
    login(c, "ada")
    html = c.get(f"/instances/{iid}", headers=EN).text
    cancel_form = html.split('data-testid="modify-cancel"')[1].split("</form>")[0]
    assert 'value="Task_review"' in cancel_form and 'value="Task_charge"' not in cancel_form  # only what is in progress
    token = csrf_of(html)
    before = _events(e)
    r = c.post(f"/instances/{iid}/modify", data={"csrf": token, "action": "cancel", "element": "Task_charge",
                                                 "reason": "paid by phone"}, headers=EN)
    assert r.status_code == 400 and "nothing is in progress at 'Task_charge'" in unescape(r.text)
    assert _events(e) == before
    r = c.post(f"/instances/{iid}/modify", data={"csrf": token, "action": "start_before", "element": "Task_charge",
                                                 "reason": "charge again"}, follow_redirects=True, headers=EN)
    assert r.status_code == 200 and "A new token starts before Task_charge." in r.text
    assert len(e.external_tasks(instance_id=iid)) == 1
    r = c.post(f"/instances/{iid}/modify", data={"csrf": token, "action": "cancel", "element": "Task_review",
                                                 "reason": "not needed"}, follow_redirects=True, headers=EN)
    assert "Activity Task_review cancelled." in r.text
    assert not [t for t in e.tasks(scope="all", instance_id=iid) if t.state == "open"]
    assert Auditor(e).replay(iid).ok


def test_modify__staff_and_auditor_may_not(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_review(e)
    deploy(e, 2)
    before = _events(e)
    for user in ("alice", "erin"):
        login(c, user)
        token = _token(c, f"/instances/{iid}")
        r = c.post(f"/instances/{iid}/modify", data={"csrf": token, "action": "set", "name": "amount", "value": "1",
                                                     "reason": "x"})
        assert r.status_code == 403
        assert c.post(f"/instances/{iid}/migrate", data={"csrf": token, "to": "2", "reason": "x"}).status_code == 403
        assert c.get(f"/instances/{iid}/migrate").status_code == 403
    assert _events(e) == before


# ----------------------------------------------------------------------------- migration
def test_migrate__preview_without_counterpart__then_mapped__then_confirmed(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_review(e)
    deploy(e, 2)
    login(c, "ada")
    inst_page = c.get(f"/instances/{iid}", headers=EN).text
    assert 'data-testid="migrate-link"' in inst_page
    choose = c.get(f"/instances/{iid}/migrate", headers=EN)
    assert choose.status_code == 200 and '<option value="2"' in choose.text and 'data-testid="preview"' not in choose.text
    pv = c.get(f"/instances/{iid}/migrate?to=2", headers=EN).text
    row = re.search(r'<tr data-element="Task_review"[^>]*>(.*?)</tr>', pv, re.S)
    assert row and 'data-testid="no-counterpart"' in row.group(1)
    assert 'data-testid="problems"' in pv and "has no element 'Task_review'" in unescape(pv)
    assert 'data-testid="confirm"' not in pv  # nothing to confirm while the move would be refused
    pv = c.get(f"/instances/{iid}/migrate?to=2&map.Task_review=Task_check", headers=EN).text
    row = re.search(r'<tr data-element="Task_review"[^>]*>(.*?)</tr>', pv, re.S)
    assert row and "no-counterpart" not in row.group(1) and 'value="Task_check" selected' in row.group(1)
    assert 'data-testid="confirm"' in pv and 'name="map.Task_review" value="Task_check"' in pv
    r = c.post(f"/instances/{iid}/migrate", data={"csrf": csrf_of(pv), "to": "2", "map.Task_review": "Task_check",
                                                  "reason": "the review is now a check"}, follow_redirects=False,
               headers=EN)
    assert r.status_code == 303 and r.headers["location"] == f"/instances/{iid}"
    inst = e.instance(iid)
    assert inst["version"] == 2 and [t.element_id for t in e.tasks(scope="all", instance_id=iid)
                                     if t.state == "open"] == ["Task_check"]
    done = c.get(f"/instances/{iid}", headers=EN).text
    assert "moved from version 1 to 2" in done
    history = c.get(f"/instances/{iid}/history", headers=ZH).text
    assert "移至其他版本" in history and "the review is now a check" in history and "外部任務已鎖定" in history
    assert Auditor(e).replay(iid).ok


def test_migrate__refusals_shown_on_the_page__nothing_changes(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid = at_review(e)
    deploy(e, 2)
    login(c, "ada")
    token = _token(c, f"/instances/{iid}/migrate")
    before = _events(e)
    url = f"/instances/{iid}/migrate"
    r = c.post(url, data={"csrf": token, "to": "2", "reason": "no mapping"}, headers=ZH)
    assert r.status_code == 409 and "引擎拒絕了此變更;未做任何變更。" in r.text and "Task_review" in r.text
    r = c.post(url, data={"csrf": token, "to": "2", "map.Task_review": "Task_check", "reason": ""}, headers=ZH)
    assert r.status_code == 400 and "請填寫原因" in r.text
    r = c.post(url, data={"csrf": token, "to": "two", "reason": "x"}, headers=EN)
    assert r.status_code == 400 and "Choose one of the other versions" in r.text
    r = c.post(url, data={"csrf": token, "to": "7", "reason": "x"}, headers=EN)
    assert r.status_code == 404 and "has no version 7" in r.text
    r = c.post(url, data={"csrf": token, "to": "2", "map.Task_review": "Task_nowhere", "reason": "x"}, headers=EN)
    assert r.status_code == 409 and "Task_nowhere" in r.text
    assert c.get(f"{url}?to=9", headers=EN).status_code == 400
    assert c.post(url, data={"to": "2", "map.Task_review": "Task_check", "reason": "x"}).status_code == 403
    assert _events(e) == before and e.instance(iid)["version"] == 1


# ----------------------------------------------------------------------------- both languages
def test_new_pages__render_in_both_languages__diagram_tooltips_translated(site: tuple[Engine, TestClient]) -> None:
    e, c = site
    iid, _inc = with_incident(e)
    review = at_review(e)
    deploy(e, 2)
    login(c, "ada")
    paths = ["/incidents", "/external-tasks", f"/instances/{iid}", f"/instances/{review}/migrate?to=2"]
    for path in paths:
        en, zh = c.get(path, headers=EN), c.get(path, headers=ZH)
        assert en.status_code == zh.status_code == 200, (path, zh.text[:300])
        assert 'lang="zh-Hant"' in zh.text and "Traceback" not in zh.text
        for english in ("Incidents", "External tasks", "Retry", "Unlock", "Change this instance", "What will move",
                        "Worker", "Lock expires", "no retries left", "Reason"):
            assert f">{english}<" not in zh.text, (path, english)
    zh = c.get(f"/instances/{review}", headers=ZH).text
    titles = re.findall(r"<title>([^<]*)</title>", zh)
    assert any("使用者任務" in t for t in titles) and any("服務任務" in t for t in titles), titles
    assert not any("User task" in t or "Service task" in t or "Sequence flow" in t for t in titles), titles
    en = c.get(f"/instances/{review}", headers=EN).text
    assert any("User task · active" in t for t in re.findall(r"<title>([^<]*)</title>", en))


def test_incidents__retry_of_a_step_that_fails_again__stays_open(site: tuple[Engine, TestClient]) -> None:
    from datetime import timedelta

    from engine.deadlines import Worker

    e, c = site
    e.deploy([BPMN / "external" / "timer_script.bpmn"], actor="ada")
    iid = e.start("timer_script", {"total": 10, "parts": 0}, actor="alice")
    e.advance_clock(timedelta(hours=2))
    assert [f.outcome for f in Worker(e).run_once()] == ["failed"]
    [inc] = e.incidents()
    login(c, "ada")
    r = c.post(f"/incidents/{inc['id']}/retry", data={"csrf": _token(c)}, headers=ZH)
    assert r.status_code == 422 and "該步驟再次失敗;異常仍未解決。" in r.text and "division by zero" in r.text
    assert [i["id"] for i in e.incidents()] == [inc["id"]]
    assert e.instance(iid)["status"] == "running"
