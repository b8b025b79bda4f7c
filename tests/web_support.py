"""Fixtures for the server tests: a database with the test directory (plus an administrator),
the test diagrams, a password and a token for every user, and the app in-process (httpx)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import BPMN, ORG, set_simulated
from engine import Engine
from engine.identity import Identity, utcnow
from storage.models import Credential
from web.app import create_app

WEB_ORG_EXTRA = """
[roles.admin]
name = "Administrator"

[users.ada]
name = "Ada"
department = "hq"
roles = ["admin"]
"""
USERS = ["alice", "bob", "carol", "dora", "erin", "ada"]


def password(user: str) -> str:
    return f"pw-{user}-secret"


@dataclass
class Site:
    """A prepared database: its URL, one token per user, and a client on the app."""

    url: str
    tokens: dict[str, str]
    client: TestClient
    engine: Engine
    org: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str | None = None, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth(user) if user else {}, **kw)

    def post(self, path: str, user: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**(self.auth(user) if user else {}), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)


_HASHES: dict[str, str] = {}


def _hash(user: str) -> str:
    # argon2 is slow on purpose (about half a second here): hash each test password once per run.
    if user not in _HASHES:
        from argon2 import PasswordHasher

        _HASHES[user] = PasswordHasher().hash(password(user))
    return _HASHES[user]


def prepare(url: str, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Directory with an admin, the test diagrams, passwords and tokens: what an operator sets up."""
    set_simulated(url)
    org = tmp_path / "web_org.toml"
    org.write_text(ORG.read_text(encoding="utf-8") + WEB_ORG_EXTRA, encoding="utf-8")
    eng = Engine(url)
    eng.load_directory(org)
    eng.deploy([BPMN], actor="ada")
    ident = Identity(eng)
    tokens = {}
    with eng._tx() as s:  # what Identity.set_password stores, with the hashes made once
        s.add_all(Credential(user_id=u, password_hash=_hash(u), updated_at=utcnow()) for u in USERS)
    for u in USERS:
        tokens[u] = ident.create_token(u, "tests")[1]
    eng.close()
    return tokens, org


@pytest.fixture
def site(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("TIGAO_LOGIN_SLOWDOWN", "0.001")
    tokens, org = prepare(db_url, tmp_path)
    app = create_app(db_url, worker=False)
    eng = Engine(db_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Site(db_url, tokens, client, eng, org)
    eng.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `tigao serve` process on a free loopback port."""

    def __init__(self, db: str, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "--db", db, "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "TIGAO_LOGIN_SLOWDOWN": "0.001", **(env or {})},
            cwd=Path(__file__).parent.parent)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tigao serve exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                if httpx.get(self.base + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("tigao serve did not answer within 30 s")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait, and return (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return self.proc.returncode, err
