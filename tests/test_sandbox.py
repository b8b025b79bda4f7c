"""The sandbox on its own: the whitelist policy, the run-time guards, the bounds and JSON-only data.

Every escape here is either refused when the code is compiled (as at deployment, naming the line)
or stopped when it runs, within its bound; none returns anything of the interpreter.
"""

from __future__ import annotations

import threading

import pytest

from engine import limits
from engine.errors import ScriptError
from engine.scripting import RestrictedEnvironment, ScriptCheckError, TigaoScriptEngine, check_source
from engine.clock import SettableClock
from conftest import T0

SECRET = {"a": 1, "order": {"amount": 5, "lines": [1, 2]}, "name": "x"}

# Refused at compile time: syntax not reviewed, underscore names, reflective builtins, frames.
STATIC = [
    ("match x:\n    case object(__class__=c):\n        y = c", "match"),
    ("match a:\n    case int(real=r):\n        y = r", "match"),
    ("class A:\n    pass", "class"),
    ("import os", "import"),
    ("from os import environ", "import"),
    ("async def f():\n    pass", "async"),
    ("def f():\n    global a\n    a = 2", "global"),
    ("def f():\n    x = 1\n    def g():\n        nonlocal x\n    return g", "nonlocal"),
    ("with a:\n    pass", "with"),
    ("def g():\n    yield 1", "yield"),
    ("def g():\n    yield from [1]", "yield"),
    ("@len\ndef g():\n    pass", "decorator"),
    ("try:\n    pass\nexcept:\n    pass", "bare 'except:'"),
    ("try:\n    pass\nexcept BaseException:\n    pass", "'except' may name only"),
    ("try:\n    while True:\n        pass\nfinally:\n    y = 1", "finally"),
    ("x: int = 1", "annotated"),
    ("y = b'abc'", "bytes"),
    ("y = a @ a", "'@'"),
    ("y = '{0.__class__}'.format(a)", "str.format"),
    ("y = '{x}'.format_map(order)", "format_map"),
    ("y = ().__class__", "__class__"),
    ("y = a.__class__.__mro__[1].__subclasses__()", "not allowed"),
    ("y = [].__len__", "__len__"),
    ("y = __builtins__", "__builtins__"),
    ("y = __import__('os')", "__import__"),
    ("y = getattr(a, 'real')", "getattr"),
    ("y = vars()", "vars"),
    ("y = globals()", "globals"),
    ("y = type(a)", "type"),
    ("y = object", "object"),
    ("y = eval('1')", "eval"),
    ("exec('y = 1')", "exec"),
    ("y = open('/etc/passwd').read()", "open"),
    ("y = compile('1', 'f', 'eval')", "compile"),
    ("y = iter(int, 1)", "iter"),
    ("y = (i for i in [1]).gi_frame", "gi_frame"),
    ("y = (i for i in [1]).gi_code", "gi_code"),
    ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    y = e.__traceback__", "__traceback__"),
    ("y = order.tb_frame", "tb_frame"),
    ("y = order.f_back", "f_back"),
    ("y = (lambda: 0).__code__", "__code__"),
    ("f = lambda q=__builtins__: q", "__builtins__"),
    ("y = [__class__ for q in [1]]", "__class__"),
    ("y = {q: q.__class__ for q in [1]}", "__class__"),
    ("y = f'{a.__class__}'", "__class__"),
    ("y = f'{a!r:{order.__class__}}'", "__class__"),
    ("y = ｅｖａｌ('1')", "eval"),
    ("y = 'a'.encode()", "encode"),
    ("y = str.mro()", "mro"),
    ("order.amount = 7", "assigning to '.amount'"),
    ("order.amount += 7", "attribute"),
    ("len = 5", "builtin or helper"),
    ("now = 'tomorrow'", "builtin or helper"),
    ("def str():\n    pass", "builtin or helper"),
    ("_private = 1", "'_private'"),
    ("print(a)", "print"),
]


@pytest.mark.parametrize(("source", "words"), STATIC)
def test_policy__unreviewed_or_dangerous_code__is_refused_naming_it(source: str, words: str) -> None:
    with pytest.raises(ScriptCheckError) as info:
        check_source(source)
    assert words.lower() in str(info.value).lower()


def test_policy__refusal_names_the_line() -> None:
    with pytest.raises(ScriptCheckError) as info:
        check_source("x = 1\ny = 2\nmatch x:\n    case 1:\n        pass")
    assert info.value.line == 3


@pytest.mark.parametrize("source", [
    "total = a + 1", "y = [i * 2 for i in range(10) if i % 2]", "y = {k: v for k, v in order.items()}",
    "y = order.amount + order['amount']", "if (n := len(name)) > 0:\n    y = n",
    "def double(v):\n    return v * 2\ny = double(a)", "y = sorted([3, 1, 2], key=lambda v: -v)",
    "y = f'{a:>5}|{name!r}|{1.5:.2f}'", "y = '%s-%05d' % (name, a)", "y = ', '.join(['a', 'b'])",
    "try:\n    y = 1 / 0\nexcept ZeroDivisionError:\n    y = 0", "counts = {'a': 1}\ncounts['a'] += 1",
    "y = 'abc'.upper().replace('B', 'b').ljust(6, '.')", "y = 2 ** 10 + (1 << 8)", "y = true and not false",
    "y = int('42') + round(2.5) + max([1, 2]) + sum(range(5))", "ｙ = 1",
    "y = [1]\nz = y\ny += [2]\ny *= 2\nassert z == [1, 2, 1, 2]",
])
def test_policy__ordinary_code__runs(source: str) -> None:
    data = dict(SECRET)
    RestrictedEnvironment({}).execute(source, data)
    assert "y" in data or "total" in data or "counts" in data


# Compiled, then stopped at run time by a guard or a bound.
RUNTIME = [
    ("y = order.nothing", "no field 'nothing'"),
    ("g = (i for i in [1])\ny = g.send", "not allowed"),
    ("y = (1.5).hex", "not allowed"),
    ("y = len.name", "not allowed"),
    ("y = dict.fromkeys", "not allowed"),
    ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    y = e.with_traceback", "not allowed"),
    ("y = 10 ** 10 ** 10", "TIGAO_MAX_INT_BITS"),
    ("y = 1 << 10 ** 10", "TIGAO_MAX_INT_BITS"),
    ("y = 'x' * 10 ** 9", "TIGAO_MAX_STRING"),
    ("y = [0] * 10 ** 9", "TIGAO_MAX_ITEMS"),
    ("y = f'{a:>9999999999}'", "TIGAO_MAX_STRING"),
    ("y = f'{1.5:.9999999999f}'", "TIGAO_MAX_STRING"),
    ("w = 9999999999\ny = f'{a:>{w}}'", "TIGAO_MAX_STRING"),
    ("y = '%9999999999d' % a", "TIGAO_MAX_STRING"),
    ("y = '%*d' % (10 ** 9, a)", "'*' widths"),
    ("y = 'x'.ljust(10 ** 9)", "TIGAO_MAX_STRING"),
    ("y = 'x'.zfill(10 ** 9)", "TIGAO_MAX_STRING"),
    ("y = ('x' * 1000).replace('x', 'y' * 10000)", "TIGAO_MAX_STRING"),
    ("y = ('x' * 1000).replace('', 'y' * 10000)", "TIGAO_MAX_STRING"),
    ("y = ('\\t' * 1000).expandtabs(10 ** 6)", "TIGAO_MAX_STRING"),
    ("y = ('x' * 100000).join(['a'] * 1000)", "TIGAO_MAX_STRING"),
    ("y = list(range(10 ** 12))", "TIGAO_MAX_ITEMS"),
    ("y = int('9' * 100000)", "int()"),
    ("s = 'x' * 999999\ny = str([s] * 100000)", "TIGAO_MAX_STRING"),
    ("s = 'x' * 999999\ny = f'{[s] * 100000}'", "TIGAO_MAX_STRING"),
    ("s = 'x' * 999999\ny = '%s' % ([s] * 100000,)", "TIGAO_MAX_STRING"),
    ("s = 'x' * 999999\nd = {'a': [s] * 100000}\ny = f'{d!r}'", "TIGAO_MAX_STRING"),
    ("s = 'x' * 999999\ny = [s] * 100000", "TIGAO_MAX_JSON_BYTES"),
    ("s = 'x' * 999999\nwhile True:\n    s = s + s", "TIGAO_MAX_STRING"),
    ("s = [1]\nwhile True:\n    s += s", "TIGAO_MAX_ITEMS"),
    ("s = [1]\nwhile True:\n    s.extend(s)", "TIGAO_MAX_ITEMS"),
    ("s = [1]\nwhile True:\n    s *= 2", "TIGAO_MAX_ITEMS"),
    ("y = sum([[1] * 100000] * 100000, [])", "adds numbers only"),
    ("while True:\n    pass", "CPU time"),
    ("while True: pass", "CPU time"),
    ("y = [q for q in range(10 ** 5) for r in range(10 ** 5)]", "CPU time"),
    ("def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\ny = f(60)", "CPU time"),
    ("try:\n    while True:\n        pass\nexcept Exception:\n    y = 'caught'", "CPU time"),
    ("x = []\nwhile True:\n    x.append('a' * 100000)", "memory"),
    ("y = {1, 2}", "variable 'y' is a set"),
    ("y = (1, 2)", "variable 'y' is a tuple"),
    ("y = float('nan')", "variable 'y' is nan"),
    ("y = {1: 'a'}", "not a string"),
    ("y = range(3)", "variable 'y' is a range"),
    ("y = order.keys()", "variable 'y' is a dict_keys"),
    ("y = [[[[1]]]]\nfor i in range(70):\n    y = [y]", "nested more than 64"),
]


@pytest.mark.parametrize(("source", "words"), RUNTIME)
def test_guards_and_bounds__escape_or_blow_up__is_stopped(source: str, words: str) -> None:
    check_source(source)  # passes the static check: it is the run-time guard or bound that stops it
    data = dict(SECRET)
    # A guard's refusal is an ordinary error (the engine reports it as a failed step); a bound is a
    # ScriptError the script cannot catch.
    with pytest.raises((ScriptError, AttributeError, TypeError)) as info:
        RestrictedEnvironment({}).execute(source, data)
    assert words.lower() in str(info.value).lower()
    assert data == SECRET, "a stopped script changes nothing"


@pytest.mark.parametrize("key", ["len", "str", "now", "true", "__builtins__", "_getattr_", "_call_"])
def test_data__key_shadowing_a_builtin_or_guard__is_refused_naming_it(key: str) -> None:
    with pytest.raises(ScriptError) as info:
        RestrictedEnvironment({}).evaluate("a + 1", {"a": 1, key: 2})
    assert repr(key) in str(info.value)


def test_expression__result_must_be_json() -> None:
    env = RestrictedEnvironment({})
    assert env.evaluate("${order.amount > 3}", dict(SECRET)) is True
    with pytest.raises(ScriptError, match="set"):
        env.evaluate("{1, 2}", {})


def test_engine__bound_error_names_the_element() -> None:
    se = TigaoScriptEngine(SettableClock(T0))

    class Spec:
        bpmn_id = "Script_loop"
        name = "Script_loop"

    class Task:
        task_spec = Spec()
        data: dict[str, object] = {}

    with pytest.raises(ScriptError) as info:
        se.execute(Task(), "while True:\n    pass")
    assert "script of Script_loop stopped" in str(info.value) and "CPU time" in str(info.value)


def test_bounds__hold_in_a_thread_while_other_threads_go_on() -> None:
    errors: list[BaseException] = []

    def hostile() -> None:
        try:
            RestrictedEnvironment({}).execute("while True:\n    pass", {})
        except ScriptError as exc:
            errors.append(exc)

    worker = threading.Thread(target=hostile)
    worker.start()
    done = 0
    env = RestrictedEnvironment({})
    while worker.is_alive():  # this thread keeps evaluating, unbounded by the other's budget
        assert env.evaluate("a + 1", {"a": done}) == done + 1
        done += 1
    worker.join()
    assert len(errors) == 1 and "CPU time" in str(errors[0])
    assert done > 0


def test_bounds__settable_by_environment_and_process_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIGAO_MAX_STRING", "10")
    monkeypatch.setenv("TIGAO_SCRIPT_CPU_MAX", "2")
    limits.reset()
    try:
        with pytest.raises(ScriptError, match="TIGAO_MAX_STRING"):
            RestrictedEnvironment({}).execute("y = 'x' * 11", {})
        assert limits.for_process({"tigao.script.cpu": "1.5"}).cpu_seconds == 1.5
        assert "administrator's limit 2" in (limits.check_properties({"tigao.script.cpu": "5"}) or "")
        assert "not a number" in (limits.check_properties({"tigao.script.memory": "lots"}) or "")
    finally:
        monkeypatch.delenv("TIGAO_MAX_STRING")
        monkeypatch.delenv("TIGAO_SCRIPT_CPU_MAX")
        limits.reset()


@pytest.mark.parametrize("source", ["y = a._﹍class﹍_", "_﹍class﹍_ = 1", "y = a.﹍﹍class﹍﹍",
                                    "y = ﹍﹍import﹍﹍('os')", "y = a._︳class︳_"])
def test_policy__unicode_identifiers_normalising_to_underscores__are_refused(source: str) -> None:
    """Python normalises identifiers (NFKC) before the policy sees them; either way they are refused."""
    with pytest.raises(ScriptCheckError):
        check_source(source)
