"""The restricted script engine: static checks and restricted builtins."""

from __future__ import annotations

import pytest

from engine.clock import SettableClock
from engine.scripting import RestrictedEnvironment, ScriptCheckError, TigaoScriptEngine, check_source
from conftest import T0


@pytest.mark.parametrize("source", [
    "import os",
    "from os import path",
    "x = __import__('os')",
    "y = ().__class__",
    "z = [].__class__.__mro__",
    "open('/etc/passwd').read()",
    "eval('1')",
    "exec('x=1')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "getattr(x, 'y')",
    "'{0.__class__}'.format(1)",
    "class A: pass",
    "_private = 1",
    "type(1)",
])
def test_check_source__dangerous_code__is_refused(source: str) -> None:
    with pytest.raises(ScriptCheckError):
        check_source(source)


@pytest.mark.parametrize("source", [
    "total = a + b",
    "names = sorted(x.upper() for x in people)",
    "ok = len(items) > 0 and all(i['done'] for i in items)",
    "d = dict(a=1); d.update({'b': 2})",
])
def test_check_source__ordinary_code__passes(source: str) -> None:
    check_source(source)


def test_execute__runs_with_restricted_builtins_and_keeps_data_json() -> None:
    env = RestrictedEnvironment({})
    data = {"a": 1, "b": 2}
    env.execute("total = a + b\nnames = sorted(['b', 'a'])\ndel a", data)
    assert data == {"b": 2, "total": 3, "names": ["a", "b"]}


def test_evaluate__dollar_brace_and_plain_expressions_are_the_same() -> None:
    env = RestrictedEnvironment({})
    assert env.evaluate("${amount > 100}", {"amount": 150}) is True
    assert env.evaluate("amount > 100", {"amount": 50}) is False
    assert env.evaluate("${approved == true}", {"approved": True}) is True


def test_helpers__now_comes_from_the_engine_clock() -> None:
    se = TigaoScriptEngine(SettableClock(T0))
    assert se.environment.evaluate("now()", {}) == T0.isoformat()
    assert se.environment.evaluate("add_duration(now(), 'P3D')", {}).startswith("2012-03-04T09:00")


def test_builtins__open_is_not_reachable_at_run_time() -> None:
    env = RestrictedEnvironment({})
    with pytest.raises(Exception):
        env.evaluate("__builtins__", {})
