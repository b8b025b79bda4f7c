"""The /api/v1 resources through HTTP (the app in-process over httpx), on SQLite and PostgreSQL:
deployments, definitions, instances, tasks, messages, notifications, clock, audit, report."""

from __future__ import annotations

import io
import zipfile

import httpx
from conftest import BPMN
from web_support import Site

pytest_plugins = ["web_support"]  # the `site` fixture
API = "/api/v1"
USER_TASK = (BPMN / "user_task.bpmn").read_bytes()
SIMPLE_FORM = (BPMN / "forms" / "simple.json").read_bytes()


def ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


def start(site: Site, key: str = "user_task", user: str = "alice", **body: object) -> dict:
    return ok(site.post(f"{API}/processes/{key}/instances", user, json=body), 201)


def changed_process(tag: str) -> bytes:
    return USER_TASK.replace(b'name="Fill in the form"', f'name="Fill in the form {tag}"'.encode())


def test_deploy__files_then_zip__new_versions_and_no_op(site: Site) -> None:
    files = [("files", ("user_task.bpmn", changed_process("v2"), "application/xml")),
             ("files", ("simple.json", SIMPLE_FORM, "application/json"))]
    body = ok(site.post(f"{API}/deployments", "ada", files=files), 201)
    assert body["deployed"] == [{"key": "user_task", "version": 2, "definition_id": body["deployed"][0]["definition_id"],
                                 "created": True}]
    again = ok(site.post(f"{API}/deployments", "ada", files=files), 201)
    assert not again["changed"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle/user_task.bpmn", changed_process("v3"))
        zf.writestr("bundle/forms/simple.json", SIMPLE_FORM)
        zf.writestr("bundle/README.txt", "not deployed")
    body = ok(site.post(f"{API}/deployments", "ada", files=[("files", ("b.zip", buf.getvalue(), "application/zip"))]),
              201)
    assert body["deployed"][0]["version"] == 3 and body["files"] == ["forms/simple.json", "user_task.bpmn"]
    versions = ok(site.get(f"{API}/definitions/user_task", "erin"))["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    xml = site.get(f"{API}/definitions/user_task/3/files/user_task.bpmn", "bob")
    assert xml.status_code == 200 and b"Fill in the form v3" in xml.content
    form = site.get(f"{API}/definitions/user_task/3/files/forms/simple.json", "bob").json()
    assert form["required"] == ["name"]
    assert site.get(f"{API}/definitions/user_task/3/files/nope.bpmn", "bob").status_code == 404
    listed = ok(site.get(f"{API}/definitions?limit=500", "bob"))["items"]
    assert {"user_task", "message_catch"} <= {d["key"] for d in listed}
    assert next(d for d in listed if d["key"] == "user_task")["versions"] == 3


def test_deploy__invalid_bpmn_is_422_with_every_problem_and_nothing_stored(site: Site) -> None:
    bad = [("files", ("missing_decision.bpmn", (BPMN / "bad" / "missing_decision.bpmn").read_bytes(), "application/xml")),
           ("files", ("missing_form.bpmn", (BPMN / "bad" / "missing_form.bpmn").read_bytes(), "application/xml"))]
    before = site.get(f"{API}/definitions?limit=500", "ada").json()
    r = site.post(f"{API}/deployments", "ada", files=bad)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert {e["file"] for e in errors} == {"missing_decision.bpmn", "missing_form.bpmn"}
    assert any(e["line"] for e in errors)
    assert site.get(f"{API}/definitions?limit=500", "ada").json() == before


def test_deploy__only_admin(site: Site) -> None:
    files = [("files", ("user_task.bpmn", changed_process("x"), "application/xml"))]
    for user in ("alice", "erin"):
        assert site.post(f"{API}/deployments", user, files=files).status_code == 403
    assert site.post(f"{API}/deployments", files=files).status_code == 401


def test_tour__start_work_complete_history_replay_verify(site: Site) -> None:
    inst = start(site, data={"name": "first"}, business_key="C-1")
    assert inst["status"] == "running" and inst["started_by"] == "alice"
    [task] = inst["open_tasks"]
    mine = ok(site.get(f"{API}/tasks", "alice"))["items"]
    assert task["id"] in [t["id"] for t in mine]
    assert ok(site.get(f"{API}/tasks", "erin"))["items"] == []  # an auditor has nothing to work on
    detail = ok(site.get(f"{API}/tasks/{task['id']}", "alice"))
    assert detail["form"]["required"] == ["name"] and detail["data"]["name"] == "first"
    ok(site.post(f"{API}/tasks/{task['id']}/claim", "alice"))
    assert site.post(f"{API}/tasks/{task['id']}/claim", "bob").status_code == 409
    assert [t["id"] for t in ok(site.get(f"{API}/tasks?scope=mine", "alice"))["items"]] == [task["id"]]
    r = site.post(f"{API}/tasks/{task['id']}/complete", "alice", json={"data": {"amount": -1}})
    assert r.status_code == 422
    # `name` is already on the task (the start data), so it counts toward the form: only amount fails
    paths = {e["path"] for e in r.json()["errors"]}
    assert paths == {"$.amount"}, r.json()
    assert site.post(f"{API}/tasks/{task['id']}/complete", "bob", json={"data": {"name": "x"}}).status_code == 403
    assert site.post(f"{API}/tasks/{task['id']}/complete", "erin", json={"data": {"name": "x"}}).status_code == 403
    done = ok(site.post(f"{API}/tasks/{task['id']}/complete", "alice", json={"data": {"name": "done", "amount": 3}}))
    assert done["state"] == "completed" and done["completed_by"] == "alice"
    assert site.post(f"{API}/tasks/{task['id']}/complete", "alice", json={"data": {"name": "x"}}).status_code == 409
    shown = ok(site.get(f"{API}/instances/{inst['id']}", "erin"))
    assert shown["status"] == "completed" and shown["data"]["amount"] == 3
    events = ok(site.get(f"{API}/instances/{inst['id']}/history", "erin"))["items"]
    assert [e["actor"] for e in events if e["type"] in ("instance_started", "task_claimed", "task_completed")] \
        == ["alice", "alice", "alice"]
    rep = ok(site.get(f"{API}/instances/{inst['id']}/replay", "erin"))
    assert rep["ok"] and rep["steps"]
    step1 = ok(site.get(f"{API}/instances/{inst['id']}/replay?step=1", "erin"))["step"]
    assert step1["seq"] == 1 and step1["type"] == "instance_started"
    assert ok(site.post(f"{API}/instances/{inst['id']}/verify", "erin"))["ok"]


def test_instances__filters_and_paging(site: Site) -> None:
    ids = [start(site, business_key=f"P-{i}")["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        body = ok(site.get(f"{API}/instances?limit=2" + (f"&cursor={cursor}" if cursor else ""), "bob"))
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)
    assert [i["id"] for i in ok(site.get(f"{API}/instances?business_key=P-3", "bob"))["items"]] == [ids[3]]
    assert len(ok(site.get(f"{API}/instances?status=running&key=user_task", "bob"))["items"]) == 5
    assert ok(site.get(f"{API}/instances?started_after=2013-01-01", "bob"))["items"] == []
    assert len(ok(site.get(f"{API}/instances?started_before=2013-01-01", "bob"))["items"]) == 5
    assert site.get(f"{API}/instances?started_after=yesterday", "bob").status_code == 400
    assert site.get(f"{API}/instances?status=weird", "bob").status_code == 400


def test_cancel__admin_only_with_reason(site: Site) -> None:
    inst = start(site)
    assert site.post(f"{API}/instances/{inst['id']}/cancel", "alice", json={"reason": "no"}).status_code == 403
    assert site.post(f"{API}/instances/{inst['id']}/cancel", "ada", json={}).status_code == 400
    body = ok(site.post(f"{API}/instances/{inst['id']}/cancel", "ada", json={"reason": "duplicate"}))
    assert body["status"] == "cancelled"
    assert site.post(f"{API}/instances/{inst['id']}/cancel", "ada", json={"reason": "again"}).status_code == 409
    events = ok(site.get(f"{API}/instances/{inst['id']}/history?limit=500", "ada"))["items"]
    assert [e["actor"] for e in events if e["type"] == "instance_cancelled"] == ["ada"]


def test_tasks__unclaim_delegate_and_filters(site: Site) -> None:
    inst = start(site)
    task = inst["open_tasks"][0]["id"]
    assert [t["id"] for t in ok(site.get(f"{API}/tasks?scope=group", "bob"))["items"]] == [task]
    assert [t["id"] for t in ok(site.get(f"{API}/tasks?scope=group&group=staff", "bob"))["items"]] == [task]
    ok(site.post(f"{API}/tasks/{task}/claim", "bob"))
    assert ok(site.get(f"{API}/tasks?scope=group", "alice"))["items"] == []
    ok(site.post(f"{API}/tasks/{task}/unclaim", "bob"))
    body = ok(site.post(f"{API}/tasks/{task}/delegate", "bob", json={"user": "carol"}))
    assert body["assignee"] == "carol"
    assert site.post(f"{API}/tasks/{task}/delegate", "carol", json={"user": "nobody"}).status_code == 404
    assert [t["id"] for t in ok(site.get(f"{API}/tasks?instance={inst['id']}&scope=all", "erin"))["items"]] == [task]
    assert ok(site.get(f"{API}/tasks?due_before=2000-01-01&scope=all", "erin"))["items"] == []
    assert ok(site.get(f"{API}/tasks?overdue=true&scope=all", "erin"))["items"] == []
    assert site.get(f"{API}/tasks?scope=everything", "erin").status_code == 400
    assert site.get(f"{API}/tasks/abc", "erin").status_code == 400
    assert site.get(f"{API}/tasks/99999", "erin").status_code == 404
    assert site.get(f"{API}/tasks/99999999999999999999", "erin").status_code == 400


def test_messages__deliver_and_start(site: Site) -> None:
    inst = start(site, "message_catch", data={"name": "q"})
    task = inst["open_tasks"][0]["id"]
    ok(site.post(f"{API}/tasks/{task}/complete", "alice", json={"data": {"name": "q"}}))
    waiting = ok(site.get(f"{API}/instances/{inst['id']}", "alice"))["waiting_messages"]
    assert waiting and waiting[0]["element"] == "Event_reply"
    assert ok(site.post(f"{API}/messages", "bob", json={"name": "reply", "data": {"answer": "yes"}})) \
        == {"delivered_to": inst["id"]}
    assert ok(site.get(f"{API}/instances/{inst['id']}", "alice"))["data"]["answer"] == "yes"
    started = ok(site.post(f"{API}/messages", "bob", json={"name": "complaint", "business_key": "M-1"}))
    assert len(started["started"]) == 1
    assert site.post(f"{API}/messages", "bob", json={"name": "nobody-waits"}).status_code == 404
    assert site.post(f"{API}/messages", "erin", json={"name": "reply"}).status_code == 403


def test_notifications__overdue_task_notifies_and_is_marked_read(site: Site) -> None:
    from engine import Worker

    inst = start(site, "timers")
    ok(site.post(f"{API}/clock", "ada", json={"advance": "P5D"}))
    Worker(site.engine).run_once()
    items = []
    for user in ("alice", "bob", "carol", "dora"):
        items = ok(site.get(f"{API}/notifications?unread=true", user))["items"]
        if items:
            break
    assert items, f"no notification for the overdue task of instance {inst['id']}"
    n = items[0]
    assert ok(site.post(f"{API}/notifications/{n['id']}/read", user))["read_at"]
    assert all(x["id"] != n["id"] for x in ok(site.get(f"{API}/notifications?unread=true", user))["items"])
    assert site.post(f"{API}/notifications/{n['id']}/read", "erin").status_code == 404


def test_audit__seal_verify_export_report(site: Site) -> None:
    start(site)
    assert site.post(f"{API}/audit/seal", "alice").status_code == 403
    seal = ok(site.post(f"{API}/audit/seal", "erin"), 201)
    assert seal["instances"] >= 1 and len(seal["root"]) == 64
    assert ok(site.get(f"{API}/audit/verify", "erin"))["ok"]
    r = site.get(f"{API}/export?instance=all", "erin")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    assert r.text.count("\n") > 3
    assert site.get(f"{API}/export?instance=all", "alice").status_code == 403
    assert site.get(f"{API}/export?instance=x1", "erin").status_code == 400
    csv = site.get(f"{API}/export?instance=all&format=csv", "ada")
    assert csv.status_code == 200 and csv.text.startswith("kind,")
    assert site.get(f"{API}/report", "erin").status_code == 200


def test_directory__admin_loads_toml(site: Site) -> None:
    toml = site.org.read_bytes() + b'\n[users.zed]\nname = "Zed"\ndepartment = "ops"\nroles = ["staff"]\n'
    assert site.post(f"{API}/directory", "alice", files={"file": ("org.toml", toml)}).status_code == 403
    body = ok(site.post(f"{API}/directory", "ada", files={"file": ("org.toml", toml)}))
    assert body["users"] == 7
    users = {u["id"] for u in ok(site.get(f"{API}/directory", "erin"))["users"]}
    assert "zed" in users
    without_bob = toml.replace(b'[users.bob]\nname = "Bob"\ndepartment = "ops"\nroles = ["staff"]\n', b"")
    assert without_bob != toml
    assert ok(site.post(f"{API}/directory", "ada", files={"file": ("org.toml", without_bob)}))["users"] == 6
    assert site.get(f"{API}/session", "bob").status_code == 401  # a token stops working when its user leaves
    r = site.post(f"{API}/directory", "ada", files={"file": ("org.toml", b"[users\nbroken")})
    assert r.status_code == 400 and "org.toml" in r.json()["detail"] and "/tmp" not in r.json()["detail"]


def test_request_log__one_line_per_request_with_status_time_and_user(site: Site, caplog) -> None:  # noqa: ANN001
    """Every request, refused ones included, logs one line: client, method, path, status, time
    and the authenticated user ("-" without one)."""
    import logging

    with caplog.at_level(logging.INFO, logger="tigao.http"):
        ok(site.get(f"{API}/tasks", "alice"))
        refused = site.post(f"{API}/processes/user_task/instances", "alice", content=b"x=1",
                            headers={"Content-Type": "text/plain"})
        assert refused.status_code == 415 and refused.headers["content-type"].startswith("application/problem+json")
        assert site.get(f"{API}/tasks").status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "tigao.http"]
    assert len(lines) == 3, lines
    assert '"GET /api/v1/tasks" 200 ' in lines[0] and lines[0].endswith(" alice")
    assert '"POST /api/v1/processes/user_task/instances" 415 ' in lines[1]
    assert '"GET /api/v1/tasks" 401 ' in lines[2] and lines[2].endswith(" -")
