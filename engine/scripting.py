"""The restricted script engine that process scripts, conditions and attribute expressions run in.

Scripts come from administrators but are treated as untrusted (DESIGN.md, Scripts):

* compiled by the whitelist policy of `engine.sandbox` (syntax not reviewed is refused, naming the
  construct and the line) and guarded at run time by `engine.guards`;
* run under the CPU-time and memory bounds of `engine.bounds` and the size bounds of
  `engine.limits`; a bound hit is a ScriptError naming the element and the bound;
* they see JSON values (plus the allowed builtins and the engine's helpers) and must write JSON:
  sets, tuples, ranges, functions and NaN are refused naming the variable.

One convention for expressions: `${ ... }` and a bare expression mean the same Python expression,
so Camunda-style `${amount > 100}` and spiff-style `amount > 100` both work.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from datetime import timezone
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import limits
from .bounds import BoundExceeded, enter, leave
from .clock import Clock
from .juel import JuelError, expression_source, is_juel
from .errors import ScriptError
from .guards import GUARDS, allow_callables, g_int, g_range, g_sum
from .jsoncheck import JsonProblem, check_json, check_value
from .sandbox import SAFE_EXCEPTIONS, Refused, compile_checked

if TYPE_CHECKING:
    from .assignment import Directory

SAFE_BUILTIN_NAMES = (
    "abs all any bool dict divmod enumerate filter float frozenset int isinstance len list map max "
    "min range reversed round set sorted str sum tuple zip True False None"
).split() + sorted(SAFE_EXCEPTIONS)
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}
SAFE_BUILTINS.update({"range": g_range, "int": g_int, "sum": g_sum})

# The engine's helper functions (TigaoScriptEngine._functions): a variable may not take their names.
HELPER_NAMES = frozenset({"now", "add_duration", "departments", "department_head", "staff", "role_members",
                          "user_department"})

# Literal names Camunda (JUEL) users write in conditions.
JUEL_LITERALS = {"true": True, "false": False, "null": None}

# Names data may not use: a data key would shadow the builtin or helper scripts rely on.
RESERVED_NAMES = frozenset(SAFE_BUILTINS) | HELPER_NAMES | frozenset(JUEL_LITERALS)
allow_callables(v for v in SAFE_BUILTINS.values() if callable(v))


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


_CODE: dict[tuple[str, str], Any] = {}  # compiled code per (source, mode), for the process lifetime
_NAMES: dict[str, frozenset[str]] = {}  # the names a script's source mentions
# Expressions that can run long: with a comprehension or a lambda. Any other expression is bounded
# by its own length (every operation in it is size-checked), so it skips the trace hook: conditions
# are evaluated constantly.
_LOOPING: set[str] = set()


def _compiled(source: str, mode: str) -> Any:
    key = (source, mode)
    code = _CODE.get(key)
    if code is None:
        code = compile_checked(source, mode, RESERVED_NAMES)
        if len(_CODE) > 5000:
            _CODE.clear()
            _NAMES.clear()
            _LOOPING.clear()
        tree = ast.parse(source, mode=mode)
        if mode == "exec":
            _NAMES[source] = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
        elif any(isinstance(n, (ast.comprehension, ast.Lambda)) for n in ast.walk(tree)):
            _LOOPING.add(source)
        _CODE[key] = code
    return code


def check_source(source: str, mode: str = "exec") -> None:
    """Raise ScriptCheckError if the code is not allowed to run. `mode` is "exec" or "eval"."""
    try:
        _compiled(source, mode)
    except Refused as exc:
        raise ScriptCheckError(str(exc), exc.line) from None


def reserved_keys(data: dict[str, Any]) -> list[str]:
    """The keys of `data` that would shadow a builtin, a helper or the sandbox's own names."""
    return sorted(k for k in data if k in RESERVED_NAMES or not isinstance(k, str) or k.startswith("_"))


def _stopped(exc: BoundExceeded | Refused | JsonProblem) -> ScriptError:
    return ScriptError(str(exc))


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Runs checked code under the guards and bounds; task data are the script's variables."""

    def __init__(self, functions: dict[str, Callable[..., Any]]):
        super().__init__({})
        self.functions = functions
        allow_callables(functions.values())
        self._base: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, **JUEL_LITERALS, **functions, **GUARDS}
        self._reserved = RESERVED_NAMES | frozenset(self._base)

    def _globals(self, context: dict[str, Any], external: dict[str, Any] | None) -> dict[str, Any]:
        g = dict(context)
        if external:
            g.update(external)
        if not self._reserved.isdisjoint(g):
            bad = sorted(set(g) & self._reserved)
            raise ScriptError(f"data field(s) {', '.join(map(repr, bad))} shadow a builtin, a helper or the "
                              "sandbox's own names; rename them")
        g.update(self._base)  # after the data: a data key can never replace a guard
        return g

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        try:
            source = strip_expression(expression)
            code = _compiled(source, "eval")
            g = self._globals(context, external_context)
            if source not in _LOOPING:
                value = eval(code, g)  # noqa: S307 - compiled by the policy, run under the guards
                if value is None or type(value) in (bool, int, float, str):
                    check_value(value)
                else:
                    check_json(value, "the expression's value")
                return value
            token = enter(limits.current())
            try:
                value = eval(code, g)  # noqa: S307 - compiled by the policy, run under the guards
            finally:
                leave(token)
            if value is None or type(value) in (bool, int, float, str):
                check_value(value)
            else:
                check_json(value, "the expression's value")
            return value
        except (BoundExceeded, Refused, JsonProblem) as exc:
            raise _stopped(exc) from None

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        try:
            code = _compiled(script, "exec")
            g = self._globals(context, external_context)
            token = enter(limits.current())
            try:
                exec(code, g)  # noqa: S102 - compiled by the policy, run under the guards
            finally:
                leave(token)
            # Only a variable the script names can have been changed (data are reached by name
            # only), so only those are checked: the rest of the data was JSON before.
            named = _NAMES[script]
            written: dict[str, Any] = {}
            for key, value in g.items():
                if key in self._base or key.startswith("_") or (external_context and key in external_context):
                    continue
                if callable(value) and not isinstance(value, (dict, list)):
                    continue  # a function the script defined for itself
                if key in named:
                    check_json(value, f"variable '{key}'")
                written[key] = value
            for key in list(context):
                if key not in written:
                    del context[key]
            context.update(written)
            return True
        except (BoundExceeded, Refused, JsonProblem) as exc:
            raise _stopped(exc) from None

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks are not supported")


def _at(exc: ScriptError, task: Any, what: str) -> ScriptError:
    element = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
    err = ScriptError(f"{what} of {element} stopped: {exc.message}; nothing was changed")
    err.element = element  # type: ignore[attr-defined]
    return err


class TigaoScriptEngine(PythonScriptEngine):
    """The script engine every workflow runs with; it also carries the clock and the directory."""

    def __init__(self, clock: Clock, directory: Directory | None = None):
        self.clock = clock
        self.directory = directory
        super().__init__(environment=RestrictedEnvironment(self._functions()))

    def validate(self, expression: str) -> None:
        try:
            _compiled(strip_expression(expression), "eval")
        except Refused as exc:
            if exc.syntax:  # what SpiffWorkflow's DMN engine expects of a unary test such as "< 3"
                raise SyntaxError(str(exc)) from None
            raise ScriptCheckError(str(exc), exc.line) from None

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptError as exc:
            raise _at(exc, task, "expression") from None
        except SpiffWorkflowException as se:
            se.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as e:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}'", task=task, exception=e) \
                from e

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except ScriptError as exc:
            raise _at(exc, task, "script") from None
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err

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
    """Submitted data stays JSON and within the size and depth bounds, with no reserved field name."""
    try:
        check_json(data, "the data", exact_size=True)
    except JsonProblem as exc:
        raise ValueError(str(exc)) from None
    bad = reserved_keys(data)
    if bad:
        raise ValueError(f"field name(s) {', '.join(map(str, bad))} are reserved for the script builtins and "
                         "helpers (or start with '_'); rename them")
