"""Every operation of the OpenAPI document, fuzzed by schemathesis with bounded examples: the
server answers anything it is sent with a non-5xx response (SQLite, the app in-process)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from web_support import prepare

from engine import Engine
from web.app import create_app

EXAMPLES = 12
# The app is made at import (schemathesis reads its OpenAPI document while collecting); its
# database is created by the fixture below before any request, as Engines connect lazily.
_DB = Path(tempfile.mkdtemp(prefix="tigao-fuzz-")) / "fuzz.db"
APP = create_app(str(_DB), worker=False)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture(scope="module")
def tokens() -> Iterator[dict[str, str]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("TIGAO_LOGIN_SLOWDOWN", "0")
    Engine(str(_DB)).init()
    toks, _ = prepare(str(_DB), _DB.parent)
    eng = Engine(str(_DB))
    eng.start("user_task", {"name": "fuzz"}, actor="alice")  # something to find: ids 1.. exist
    eng.close()
    yield toks
    APP.state.pool.close()
    mp.undo()
    shutil.rmtree(_DB.parent, ignore_errors=True)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api__no_server_error_for_any_input(case: Any, tokens: dict[str, str]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens['ada']}"}, checks=[not_a_server_error])


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_api__no_server_error_for_staff_or_anonymous(case: Any, tokens: dict[str, str]) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens['alice']}"}, checks=[not_a_server_error])
    case.call_and_validate(checks=[not_a_server_error])
