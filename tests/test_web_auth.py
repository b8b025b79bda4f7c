"""The server's skeleton and identity: health, OpenAPI and docs, problem+json errors, tokens,
HTTP Basic, browser sessions with CSRF, lockout, roles; a real `tigao serve` process."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from cli import main
from engine import Engine
from engine.identity import USER_FAILURES, Identity, NotAuthenticated
from web_support import Server, Site, password, prepare, site  # noqa: F401

API = "/api/v1"


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def is_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("urn:")
    assert "Traceback" not in r.text
    return body


def test_health__answers_without_login(site: Site) -> None:
    r = site.get(f"{API}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["clock"] == "simulated"
    assert body["time"].startswith("2012-03-01")
    assert body["database"] in ("sqlite", "postgresql")


def test_openapi_and_docs__served_from_the_package(site: Site) -> None:
    doc = site.get(f"{API}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert f"{API}/health" in doc["paths"]
    html = site.get(f"{API}/docs").text
    assert f"{API}/static/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    js = site.get(f"{API}/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


def test_no_credentials__is_401_problem(site: Site) -> None:
    body = is_problem(site.get(f"{API}/clock"), 401)
    assert "log in" in body["detail"]


def test_unknown_path__is_404_problem(site: Site) -> None:
    is_problem(site.get(f"{API}/no-such-thing"), 404)


def test_bearer_token__identifies_the_user_with_directory_roles(site: Site) -> None:
    me = site.get(f"{API}/session", "erin").json()
    assert me["user"] == "erin" and me["roles"] == ["auditor"] and me["read_only"]
    assert site.get(f"{API}/session", "ada").json()["admin"]


@pytest.mark.parametrize("header", ["Bearer tgo_not-a-real-token", "Bearer nonsense", "Token abc",
                                    "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()])
def test_bad_credentials__are_refused(site: Site, header: str) -> None:
    is_problem(site.client.get(f"{API}/session", headers={"Authorization": header}), 401)


def test_revoked_and_expired_tokens__are_refused(site: Site) -> None:
    ident = Identity(site.engine)
    tid, tok = ident.create_token("bob", "short", timedelta(seconds=-1))
    assert "expired" in is_problem(site.client.get(f"{API}/session", headers={"Authorization": f"Bearer {tok}"}),
                                   401)["detail"]
    tid, tok = ident.create_token("bob", "revoke me")
    assert site.client.get(f"{API}/session", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    ident.revoke_token(tid)
    assert "revoked" in is_problem(site.client.get(f"{API}/session", headers={"Authorization": f"Bearer {tok}"}),
                                   401)["detail"]


def test_basic__with_password_or_token(site: Site) -> None:
    assert site.client.get(f"{API}/session", headers=basic("bob", password("bob"))).json()["user"] == "bob"
    assert site.client.get(f"{API}/session", headers=basic("bob", site.tokens["bob"])).json()["via"] == "basic"
    is_problem(site.client.get(f"{API}/session", headers=basic("alice", site.tokens["bob"])), 401)
    is_problem(site.client.get(f"{API}/session", headers=basic("bob", "wrong password")), 401)


def test_session__cookie_needs_csrf_for_unsafe_methods(site: Site) -> None:
    c = site.client
    r = c.post(f"{API}/session", json={"user": "ada", "password": password("ada")})
    assert r.status_code == 201, r.text
    csrf = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert c.get(f"{API}/clock").status_code == 200  # a read needs no CSRF token
    body = is_problem(c.post(f"{API}/clock", json={"advance": "P1D"}), 403)
    assert "CSRF" in body["detail"]
    is_problem(c.post(f"{API}/clock", json={"advance": "P1D"}, headers={"X-CSRF-Token": "forged"}), 403)
    r = c.post(f"{API}/clock", json={"advance": "P1D"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["now"].startswith("2012-03-02")
    assert c.delete(f"{API}/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    c.cookies.clear()
    assert c.get(f"{API}/clock").status_code == 401


def test_session__old_cookie_is_dead_after_logout(site: Site) -> None:
    c = site.client
    r = c.post(f"{API}/session", json={"user": "bob", "password": password("bob")})
    cookie = c.cookies.get("tigao_session")
    c.delete(f"{API}/session", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    c.cookies.clear()
    is_problem(c.get(f"{API}/session", cookies={"tigao_session": cookie}), 401)


def test_login__wrong_or_missing_password(site: Site) -> None:
    is_problem(site.post(f"{API}/session", json={"user": "bob", "password": "nope"}), 401)
    is_problem(site.post(f"{API}/session", json={"user": "bob"}), 400)
    is_problem(site.post(f"{API}/session", json={"user": "ghost", "password": "whatever1"}), 401)
    is_problem(site.post(f"{API}/session", json={"user": "carol", "password": password("bob")}), 401)


def test_login__locked_out_after_repeated_failures(site: Site) -> None:
    for _ in range(USER_FAILURES):
        is_problem(site.post(f"{API}/session", json={"user": "carol", "password": "wrong-one"}), 401)
    r = site.post(f"{API}/session", json={"user": "carol", "password": password("carol")})
    assert is_problem(r, 429) and int(r.headers["retry-after"]) > 0
    # The lock is per user: another user on the same address still logs in.
    assert site.post(f"{API}/session", json={"user": "dora", "password": password("dora")}).status_code == 201


def test_roles__only_admin_moves_the_clock(site: Site) -> None:
    for user in ("alice", "erin", "carol"):
        is_problem(site.post(f"{API}/clock", user, json={"advance": "P1D"}), 403)
    assert site.post(f"{API}/clock", "ada", json={"advance": "PT1H"}).status_code == 200


@pytest.mark.parametrize("kwargs,status", [
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
    ({"content": b"advance=P1D", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
    ({"json": {"advance": "P1D", "sneaky": 1}}, 400),
    ({"json": {"advance": "P1D", "set": "2012-05-01"}}, 400),
    ({"json": {"advance": "'; DROP TABLE events; --"}}, 400),
    ({"json": {"set": "2012-05-01\u0000"}}, 400),
    ({"content": b"x" * (2 * 1024 * 1024), "headers": {"Content-Type": "application/json"}}, 413),
])
def test_bad_bodies__are_clear_4xx_and_change_nothing(site: Site, kwargs: dict, status: int) -> None:
    before = site.get(f"{API}/clock", "ada").json()["now"]
    is_problem(site.post(f"{API}/clock", "ada", **kwargs), status)
    assert site.get(f"{API}/clock", "ada").json()["now"] == before


def test_nul_in_query__is_400(site: Site) -> None:
    is_problem(site.get(f"{API}/notifications?unread=%00", "alice"), 400)
    is_problem(site.get(f"{API}/notifications?limit=1000000", "alice"), 400)
    is_problem(site.get(f"{API}/notifications?cursor=bm90LWEtY3Vyc29y", "alice"), 400)


# ----------------------------------------------------------------------------- the command line
def test_cli__passwd_and_tokens(db_url: str, tmp_path: Path) -> None:
    prepare(db_url, tmp_path)
    run = CliRunner(env={"TIGAO_USER": None, "TIGAO_DB": None})
    r = run.invoke(main, ["--db", db_url, "passwd", "bob"], input="another-secret\n")
    assert r.exit_code == 0, r.output
    r = run.invoke(main, ["--db", db_url, "passwd", "bob"], input="short\n")
    assert r.exit_code == 3 and "at least 8" in r.output
    r = run.invoke(main, ["--db", db_url, "passwd", "ghost"], input="long-enough-1\n")
    assert r.exit_code == 6
    r = run.invoke(main, ["--db", db_url, "token", "create", "bob", "--name", "phone", "--expires", "P90D"])
    assert r.exit_code == 0, r.output
    tok = r.stdout.strip().splitlines()[-1]
    assert tok.startswith("tgo_")
    r = run.invoke(main, ["--db", db_url, "token", "list", "--user", "bob"])
    assert "phone" in r.output and tok not in r.output
    r = run.invoke(main, ["--db", db_url, "token", "create", "bob", "--expires", "soon"])
    assert r.exit_code == 3
    ident = Identity(Engine(db_url))
    tid = next(t.id for t in ident.tokens("bob") if t.name == "phone")
    assert ident.token_user(tok) == "bob"
    r = run.invoke(main, ["--db", db_url, "token", "revoke", str(tid)])
    assert r.exit_code == 0 and "revoked" in r.output
    with pytest.raises(NotAuthenticated, match="revoked"):
        ident.token_user(tok)
    assert run.invoke(main, ["--db", db_url, "token", "revoke", "9999"]).exit_code == 6
    assert ident.check_password("bob", "another-secret")
    ident.engine.close()


@pytest.mark.slow
def test_real_server__serves_and_stops_cleanly_on_sigterm(db_url: str, tmp_path: Path) -> None:
    tokens, _ = prepare(db_url, tmp_path)
    srv = Server(db_url)
    try:
        assert httpx.get(srv.base + f"{API}/health").json()["status"] == "ok"
        r = httpx.get(srv.base + f"{API}/session", headers={"Authorization": f"Bearer {tokens['alice']}"})
        assert r.json()["user"] == "alice"
        assert httpx.get(srv.base + f"{API}/clock").status_code == 401
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert '"GET /api/v1/health" 200' in err and "server stopped" in err
    assert "Traceback" not in err


def test_serve__missing_database_is_a_clear_error(tmp_path: Path) -> None:
    r = CliRunner(env={"TIGAO_DB": None}).invoke(main, ["--db", str(tmp_path / "none.db"), "serve"])
    assert r.exit_code == 9 and "tigao init" in r.output
