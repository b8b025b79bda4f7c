"""Bad input to the API: each a clear 4xx problem, and nothing stored."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from conftest import BPMN
from web_support import Site

pytest_plugins = ["web_support"]  # the `site` fixture
API = "/api/v1"
USER_TASK = (BPMN / "user_task.bpmn").read_bytes()
SQL = "1' OR '1'='1'; DROP TABLE events; --"


def problem(r: httpx.Response, *statuses: int) -> dict:
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in r.text and "File \"" not in r.text
    return r.json()


def state(site: Site) -> tuple:
    """What a bad request must not change."""
    defs = site.get(f"{API}/definitions?limit=500", "ada").json()
    inst = site.get(f"{API}/instances?limit=500", "ada").json()
    tasks = site.get(f"{API}/tasks?scope=all&state=any&limit=500", "ada").json()
    return defs, inst, tasks


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def upload(site: Site, name: str, data: bytes) -> httpx.Response:
    return site.post(f"{API}/deployments", "ada", files=[("files", (name, data, "application/octet-stream"))])


@pytest.mark.parametrize("entries", [
    {"../evil.bpmn": USER_TASK},
    {"forms/../../evil.json": b"{}"},
    {"/etc/evil.bpmn": USER_TASK},
    {"a\\..\\evil.bpmn": USER_TASK},
])
def test_zip__paths_that_climb_out_are_refused(site: Site, entries: dict[str, bytes]) -> None:
    before = state(site)
    body = problem(upload(site, "bundle.zip", zip_of(entries)), 400)
    assert "climb" in body["detail"]
    assert state(site) == before


def test_zip__bomb_is_refused(site: Site) -> None:
    before = state(site)
    bomb = zip_of({"bomb.bpmn": b"<" + b" " * (60 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    body = problem(upload(site, "bomb.zip", bomb), 400)
    assert "bomb" in body["detail"]
    assert state(site) == before


def test_zip__not_a_zip(site: Site) -> None:
    problem(upload(site, "x.zip", b"PK not really"), 400)


def test_upload__over_the_size_limit_is_413(site: Site) -> None:
    before = state(site)
    problem(upload(site, "huge.bpmn", b" " * (11 * 1024 * 1024)), 413)
    assert state(site) == before


@pytest.mark.parametrize("name", ["../x.bpmn", "notes.txt", ".hidden.bpmn"])
def test_upload__bad_file_names(site: Site, name: str) -> None:
    problem(upload(site, name, USER_TASK), 400)


def test_upload__json_instead_of_multipart_is_415(site: Site) -> None:
    problem(site.post(f"{API}/deployments", "ada", json={"files": []}), 415)


def test_upload__hostile_xml_is_422(site: Site) -> None:
    before = state(site)
    problem(upload(site, "billion_laughs.bpmn", (BPMN / "bad" / "billion_laughs.bpmn").read_bytes()), 422)
    assert state(site) == before


@pytest.mark.parametrize("path", [
    "/instances?limit=1000000", "/instances?limit=0", "/instances?limit=-1", "/tasks?limit=1000000",
    "/instances/abc", "/instances/1.5", "/instances/0", "/instances/99999999999999999999999",
    "/instances/1/replay?step=abc", "/tasks?instance=abc", "/instances?cursor=%%%", "/instances?cursor=eyJvIjogLTF9",
    "/instances?started_after=" + SQL, "/tasks?due_before=" + SQL,
    "/definitions/x/abc/files/a.bpmn", "/export?instance=1;DROP",
])
def test_query_and_path__bad_values_are_400(site: Site, path: str) -> None:
    problem(site.get(API + path, "ada"), 400)


@pytest.mark.parametrize("path", [
    "/instances?key=" + SQL, "/instances?business_key=" + SQL, "/tasks?group=" + SQL,
    "/definitions/" + SQL, "/tasks?scope=all&group=" + SQL,
])
def test_sql_looking_strings__are_just_values(site: Site, path: str) -> None:
    r = site.get(API + path, "ada")
    assert r.status_code in (200, 404), r.text
    if r.status_code == 200:
        assert r.json()["items"] == []
    assert site.get(f"{API}/definitions?limit=500", "ada").json()["items"]  # still there


@pytest.mark.parametrize("body,status", [
    (b"{", 400), (b"[]", 400), (b'"text"', 400), (b'{"data": [1,2]}', 400),
    (b'{"data": {}, "unknown": 1}', 400), (b'{"business_key": 5}', 400),
    (b'{"data": {"now": 1}}', 400), (b'{"data": {"x": "\\u0000"}}', 400), (b'{"data": {"x": "\\ud800"}}', 400),
    (b'{"data": {"a": NaN}}', 400),
])
def test_start__bad_bodies_store_nothing(site: Site, body: bytes, status: int) -> None:
    before = state(site)
    r = site.post(f"{API}/processes/user_task/instances", "alice", content=body,
                  headers={"Content-Type": "application/json"})
    problem(r, status)
    assert state(site) == before


def test_start__wrong_content_type_and_unknown_process(site: Site) -> None:
    before = state(site)
    problem(site.post(f"{API}/processes/user_task/instances", "alice", content=b"data=1",
                      headers={"Content-Type": "text/plain"}), 415)
    problem(site.post(f"{API}/processes/{SQL}/instances", "alice", json={}), 404)
    problem(site.post(f"{API}/processes/nope/instances", "alice", json={}), 404)
    assert state(site) == before


def test_complete__invalid_form_lists_every_field_and_stores_nothing(site: Site) -> None:
    inst = site.post(f"{API}/processes/user_task/instances", "alice", json={}).json()
    task = inst["open_tasks"][0]["id"]
    before = state(site)
    body = problem(site.post(f"{API}/tasks/{task}/complete", "alice", json={"data": {"amount": "many"}}), 422)
    assert len(body["errors"]) == 2 and all(e["path"] and e["message"] for e in body["errors"])
    problem(site.post(f"{API}/tasks/{task}/complete", "alice", json={"data": {"name": "x"}, "extra": 1}), 400)
    assert state(site) == before


def test_expired_revoked_tokens_and_csrf(site: Site) -> None:
    from datetime import timedelta

    from engine.identity import Identity

    ident = Identity(site.engine)
    _, expired = ident.create_token("alice", None, timedelta(seconds=-5))
    tid, revoked = ident.create_token("alice")
    ident.revoke_token(tid)
    before = state(site)
    for tok in (expired, revoked, "tgo_" + "x" * 40, "x" * 5000):
        problem(site.client.post(f"{API}/processes/user_task/instances", json={},
                                 headers={"Authorization": f"Bearer {tok}"}), 401)
    r = site.client.post(f"{API}/session", json={"user": "alice", "password": "pw-alice-secret"})
    assert r.status_code == 201
    problem(site.client.post(f"{API}/processes/user_task/instances", json={}), 403)
    assert state(site) == before
