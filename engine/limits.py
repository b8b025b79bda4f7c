"""Bounds on the work one input may cause: script CPU time and memory, sizes, depths and counts.

Every figure has a default, an environment variable that changes it for the whole deployment, and
(for the two script bounds) a process extension property that changes it for one process within
the administrator's limit:

==========================  ================================  =======  ==============================
bound                       environment variable              default  process property (limit var)
==========================  ================================  =======  ==============================
script CPU seconds          ``TIGAO_SCRIPT_CPU``              1        ``tigao.script.cpu``
                                                                        (``TIGAO_SCRIPT_CPU_MAX``, 10)
script memory growth, MB    ``TIGAO_SCRIPT_MEMORY``           256      ``tigao.script.memory``
                                                                        (``TIGAO_SCRIPT_MEMORY_MAX``,
                                                                        1024)
string length, characters   ``TIGAO_MAX_STRING``              1000000
list/dict/range length      ``TIGAO_MAX_ITEMS``               100000
integer size, bits          ``TIGAO_MAX_INT_BITS``            4096 
JSON nesting depth          ``TIGAO_MAX_JSON_DEPTH``          64
JSON size, bytes            ``TIGAO_MAX_JSON_BYTES``          1000000
call activity depth         ``TIGAO_MAX_CALL_DEPTH``          20
multi-instance size         ``TIGAO_MAX_MULTI_INSTANCE``      1000
engine steps per command    ``TIGAO_MAX_STEPS``               1000 
tasks created per command   ``TIGAO_MAX_NEW_TASKS``           1000
cycle timer catch-up        ``TIGAO_TIMER_CATCHUP``           10
==========================  ================================  =======  ==============================

The environment is read when a value is first needed and again after `reset()` (tests).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from .errors import InputError, ScriptError

CPU_PROPERTY = "tigao.script.cpu"
MEMORY_PROPERTY = "tigao.script.memory"

_DEFAULTS: dict[str, tuple[str, float]] = {
    "cpu_seconds": ("TIGAO_SCRIPT_CPU", 1.0),
    "memory_mb": ("TIGAO_SCRIPT_MEMORY", 256.0),
    "cpu_max": ("TIGAO_SCRIPT_CPU_MAX", 10.0),
    "memory_max": ("TIGAO_SCRIPT_MEMORY_MAX", 1024.0),
    "max_string": ("TIGAO_MAX_STRING", 1_000_000),
    "max_items": ("TIGAO_MAX_ITEMS", 100_000),
    "max_int_bits": ("TIGAO_MAX_INT_BITS", 4096),
    "max_json_depth": ("TIGAO_MAX_JSON_DEPTH", 64),
    "max_json_bytes": ("TIGAO_MAX_JSON_BYTES", 1_000_000),
    "max_call_depth": ("TIGAO_MAX_CALL_DEPTH", 20),
    "max_multi_instance": ("TIGAO_MAX_MULTI_INSTANCE", 1000),
    "max_steps": ("TIGAO_MAX_STEPS", 1000),
    "max_new_tasks": ("TIGAO_MAX_NEW_TASKS", 1000),
    "timer_catchup": ("TIGAO_TIMER_CATCHUP", 10),
}


@dataclass(frozen=True)
class Limits:
    """One set of bounds; `current()` is the set in force in this thread."""

    cpu_seconds: float
    memory_mb: float
    cpu_max: float
    memory_max: float
    max_string: int
    max_items: int
    max_int_bits: int
    max_json_depth: int
    max_json_bytes: int
    max_call_depth: int
    max_multi_instance: int
    max_steps: int
    max_new_tasks: int
    timer_catchup: int

    def env_name(self, field: str) -> str:
        """The environment variable that sets `field`."""
        return _DEFAULTS[field][0]


def _read_env() -> Limits:
    values: dict[str, Any] = {}
    for field, (var, default) in _DEFAULTS.items():
        raw = os.environ.get(var)
        value: float = default
        if raw is not None and raw.strip():
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"{var}={raw!r} is not a number; unset it or give a number "
                                 f"(default {default:g})") from None
            if value <= 0:
                raise InputError(f"{var}={raw!r} must be greater than 0 (default {default:g})")
        values[field] = value if isinstance(default, float) else int(value)
    limits = Limits(**values)
    # The deployment-wide default may not exceed the administrator's limit either.
    return replace(limits, cpu_seconds=min(limits.cpu_seconds, limits.cpu_max),
                   memory_mb=min(limits.memory_mb, limits.memory_max))


_lock = threading.Lock()
_base: Limits | None = None
_per_process: dict[tuple[str | None, str | None], Limits] = {}
_local = threading.local()


def base() -> Limits:
    """The deployment's bounds (environment variables and defaults)."""
    global _base
    if _base is None:
        with _lock:
            _base = _read_env()
    return _base


def reset() -> None:
    """Forget the bounds read from the environment (after changing it, e.g. in tests)."""
    global _base
    with _lock:
        _base = None
        _per_process.clear()


def current() -> Limits:
    """The bounds in force in this thread: those of the process being run, else the base."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else base()


def _number(name: str, raw: str, limit: float, var: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ScriptError(f"process property {name}={raw!r} is not a number") from None
    if value <= 0:
        raise ScriptError(f"process property {name}={raw!r} must be greater than 0")
    if value > limit:
        raise ScriptError(f"process property {name}={raw!r} exceeds the administrator's limit {limit:g} "
                          f"({var})")
    return value


def for_process(properties: dict[str, str] | None) -> Limits:
    """The bounds for a process with these extension properties (checked against the limits)."""
    props = properties or {}
    key = (props.get(CPU_PROPERTY), props.get(MEMORY_PROPERTY))
    found = _per_process.get(key)
    if found is not None:
        return found
    b = base()
    cpu, mem = b.cpu_seconds, b.memory_mb
    if key[0] is not None:
        cpu = _number(CPU_PROPERTY, key[0], b.cpu_max, "TIGAO_SCRIPT_CPU_MAX")
    if key[1] is not None:
        mem = _number(MEMORY_PROPERTY, key[1], b.memory_max, "TIGAO_SCRIPT_MEMORY_MAX")
    found = replace(b, cpu_seconds=cpu, memory_mb=mem)
    _per_process[key] = found
    return found


def check_properties(properties: dict[str, str]) -> str | None:
    """At deployment: why the process's bound properties cannot be used, or None."""
    try:
        for_process(properties)
    except ScriptError as exc:
        return exc.message
    return None


@contextmanager
def scope(limits: Limits) -> Iterator[Limits]:
    """Run the body with `limits` in force in this thread."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(limits)
    try:
        yield limits
    finally:
        stack.pop()


def limit_error(what: str, field: str, hint: str = "") -> ScriptError:
    """The error for a bounded count that was exceeded, naming its limit and setting."""
    var = _DEFAULTS[field][0]
    value = getattr(current(), field)
    return ScriptError(f"{what}: the limit is {value:,} ({var}){'; ' + hint if hint else ''}; nothing was changed")


def check_count(n: int, field: str, what: str, hint: str = "") -> None:
    """Raise the limit error when `n` exceeds the limit `field`."""
    if n > getattr(current(), field):
        raise limit_error(f"{what}: {n:,}", field, hint)
