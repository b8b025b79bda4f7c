"""The restricted script engine that process scripts, conditions and attribute expressions run in.

Scripts come from administrators but are treated as untrusted (DESIGN.md, Scripts):

* checked statically at deployment: no imports, no name or attribute starting with `_`, no
  reflective or I/O builtins (exec, eval, open, compile, globals, getattr, ...), no class
  definitions, no `str.format` (its field syntax reaches attributes);
* run with a small set of builtins, plus the engine's own helper functions.

One convention for expressions: `${ ... }` and a bare expression mean the same Python expression,
so Camunda-style `${amount > 100}` and spiff-style `amount > 100` both work.
"""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Callable
from datetime import timezone
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .clock import Clock
from .juel import JuelError, expression_source, is_juel

if TYPE_CHECKING:
    from .assignment import Directory

SAFE_BUILTIN_NAMES = (
    "abs all any bool dict divmod enumerate filter float frozenset int isinstance len list map max "
    "min range reversed round set sorted str sum tuple zip ValueError KeyError TypeError Exception "
    "True False None"
).split()
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}

FORBIDDEN_NAMES = frozenset(
    "exec eval open compile globals locals vars getattr setattr delattr hasattr __import__ input "
    "breakpoint help exit quit memoryview type object super classmethod staticmethod property dir "
    "id print bytearray bytes".split()
)
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "mro"})
# Frame, code and function internals of generators, coroutines and tracebacks: a way back to the
# interpreter's globals without any underscore.
FORBIDDEN_ATTRIBUTE_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
FORBIDDEN_NODES: dict[type, str] = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.ClassDef: "class definitions are not allowed",
    ast.AsyncFunctionDef: "async code is not allowed",
    ast.Await: "async code is not allowed",
    ast.Global: "'global' is not allowed",
    ast.Nonlocal: "'nonlocal' is not allowed",
    ast.With: "'with' is not allowed",
    ast.AsyncWith: "'with' is not allowed",
    ast.Yield: "generators are not allowed",
    ast.YieldFrom: "generators are not allowed",
}

# The engine's helper functions (TigaoScriptEngine._functions): a variable may not take their names.
HELPER_NAMES = frozenset({"now", "add_duration", "departments", "department_head", "staff", "role_members",
                          "user_department"})

# Literal names Camunda (JUEL) users write in conditions.
JUEL_LITERALS = {"true": True, "false": False, "null": None}


def strip_expression(text: str) -> str:
    """`${ expr }` -> `expr`; anything else is returned stripped. JUEL becomes Python (engine/juel.py)."""
    try:
        return expression_source(text)
    except JuelError:
        pass  # neither Python nor JUEL: the check reports it (definitions.py says why, at deployment)
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip()
    return text


def is_expression(text: str | None) -> bool:
    return is_juel(text)


class ScriptCheckError(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def check_source(source: str, mode: str = "exec") -> None:
    """Raise ScriptCheckError if the code is not allowed to run. `mode` is "exec" or "eval"."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise ScriptCheckError(f"syntax error: {exc.msg}", exc.lineno) from exc
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        for kind, why in FORBIDDEN_NODES.items():
            if isinstance(node, kind):
                raise ScriptCheckError(why, line)
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ScriptCheckError(f"name '{node.id}' is not allowed (names may not start with '_')", line)
            if node.id in FORBIDDEN_NAMES:
                raise ScriptCheckError(f"'{node.id}' is not allowed in process scripts", line)
            if isinstance(node.ctx, (ast.Store, ast.Del)) and node.id in HELPER_NAMES:
                raise ScriptCheckError(f"'{node.id}' is the name of a helper function; store the value under "
                                       f"another name (e.g. '{node.id}_list')", line)
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise ScriptCheckError(
                    f"attribute '{node.attr}' is not allowed (attributes may not start with '_')", line)
            if node.attr in FORBIDDEN_ATTRIBUTES or node.attr.startswith(FORBIDDEN_ATTRIBUTE_PREFIXES):
                raise ScriptCheckError(f"'.{node.attr}' is not allowed in process scripts", line)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            for arg in args.args + args.kwonlyargs + args.posonlyargs:
                if arg.arg.startswith("_"):
                    raise ScriptCheckError(f"name '{arg.arg}' is not allowed", line)


class _CodeCache:
    """Compiled code per (source, mode); checking and compiling once per process lifetime."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, source: str, mode: str) -> Any:
        key = (source, mode)
        code = self._cache.get(key)
        if code is None:
            check_source(source, mode)
            code = compile(source, "<string>", mode)
            if len(self._cache) > 5000:
                self._cache.clear()
            self._cache[key] = code
        return code


_CODE = _CodeCache()


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Runs checked code with restricted builtins; task data are the script's variables."""

    def __init__(self, functions: dict[str, Callable[..., Any]]):
        super().__init__({})
        self.functions = functions

    def _globals(self, context: dict[str, Any], external: dict[str, Any] | None) -> dict[str, Any]:
        g: dict[str, Any] = {"__builtins__": SAFE_BUILTINS}
        g.update(JUEL_LITERALS)
        g.update(self.functions)
        if external:
            g.update(external)
        g.update(context)
        return g

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        code = _CODE.get(strip_expression(expression), "eval")
        return eval(code, self._globals(context, external_context))  # noqa: S307 - checked code

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        code = _CODE.get(script, "exec")
        g = self._globals(context, external_context)
        provided = {k: v for k, v in g.items() if k not in context}
        exec(code, g)  # noqa: S102 - checked code
        for key in list(context):
            if key not in g:
                del context[key]
        for key, value in g.items():
            if key.startswith("_"):
                continue  # interpreter bookkeeping such as __warningregistry__
            if key in provided and provided[key] is value:
                continue  # a builtin, helper or literal the script did not rebind
            if callable(value):
                continue
            context[key] = value
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks are not supported")


class TigaoScriptEngine(PythonScriptEngine):
    """The script engine every workflow runs with; it also carries the clock and the directory."""

    def __init__(self, clock: Clock, directory: Directory | None = None):
        self.clock = clock
        self.directory = directory
        super().__init__(environment=RestrictedEnvironment(self._functions()))

    def validate(self, expression: str) -> None:
        source = strip_expression(expression)
        ast.parse(source, mode="eval")  # a SyntaxError here is what SpiffWorkflow's DMN engine expects
        check_source(source, "eval")

    def _dir(self) -> Directory:
        if self.directory is None:
            raise ValueError("no directory is loaded: run 'tigao directory load FILE'")
        return self.directory

    def _functions(self) -> dict[str, Callable[..., Any]]:
        def now() -> str:
            return self.clock.now().astimezone(timezone.utc).isoformat()

        def add_duration(when: str, duration: str) -> str:
            from .timeutil import add_iso_duration, parse_datetime

            return add_iso_duration(parse_datetime(when), duration).isoformat()

        def departments() -> list[str]:
            return self._dir().department_ids()

        def department_head(dept: str) -> str | None:
            return self._dir().head_of(dept)

        def staff(dept: str | None = None) -> list[str]:
            return self._dir().staff(dept)

        def role_members(role: str) -> list[str]:
            return self._dir().role_members(role)

        def user_department(user: str) -> str | None:
            return self._dir().department_of(user)

        return {
            "now": now,
            "add_duration": add_duration,
            "departments": departments,
            "department_head": department_head,
            "staff": staff,
            "role_members": role_members,
            "user_department": user_department,
        }


def ensure_json(data: dict[str, Any]) -> None:
    """Task data stays JSON: refuse values (sets, objects, datetimes) that would not round-trip."""
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"task data must be JSON (strings, numbers, booleans, lists, objects): {exc}") from exc

