"""Is a value JSON that round-trips unchanged, within the depth and size bounds? Iterative, so data
nested 10,000 levels deep is refused with a message instead of exhausting the interpreter's stack."""

from __future__ import annotations

import json
import math
from typing import Any

from .limits import current


class JsonProblem(Exception):
    """A value is not JSON, or exceeds a bound; the message names where."""


_NOT_JSON = {set: "a set (use a list)", frozenset: "a set (use a list)",
             tuple: "a tuple (it would come back as a list; use a list)",
             range: "a range (use list(range(...)))", bytes: "bytes"}


def check_value(value: Any, where: str = "the value") -> None:
    """A scalar: finite floats, strings and integers within the size bounds."""
    t = type(value)
    if t is float:
        if not math.isfinite(value):
            raise JsonProblem(f"{where} is {value}, which JSON cannot hold; use null or a number")
    elif t is str:
        lim = current().max_string
        if len(value) > lim:
            raise JsonProblem(f"{where} is a string of {len(value):,} characters; the limit is {lim:,} "
                              "(TIGAO_MAX_STRING)")
    elif t is int:
        lim = current().max_int_bits
        if value.bit_length() > lim:
            raise JsonProblem(f"{where} is a number of {value.bit_length():,} bits; the limit is {lim:,} "
                              "(TIGAO_MAX_INT_BITS)")


_INF = float("inf")


def check_json(value: Any, what: str, exact_size: bool = False) -> None:
    """Raise JsonProblem naming `what` (and the path inside it) unless `value` is plain JSON.

    A fast walk decides; only when it finds a problem does a second walk name where it is.
    """
    lim = current()
    max_str, max_bits, max_items, max_depth = lim.max_string, lim.max_int_bits, lim.max_items, lim.max_json_depth
    size = 0
    ok = True
    stack: list[tuple[Any, int]] = [([value], -1)]
    while stack and ok:
        v, depth = stack.pop()
        if depth >= max_depth or len(v) > max_items:
            ok = False
            break
        if type(v) is dict:
            for k in v:
                if type(k) is not str:
                    ok = False
                    break
                size += len(k) + 3
            items: Any = v.values()
        else:
            items = v
        for x in items:
            t = type(x)
            if t is str:
                n = len(x)
                if n > max_str:
                    ok = False
                size += n + 2
            elif t is int:
                if x.bit_length() > max_bits:
                    ok = False
                size += 8
            elif t is float:
                if x != x or x == _INF or x == -_INF:
                    ok = False
                size += 8
            elif t is dict or t is list:
                stack.append((x, depth + 1))
                size += 2
            elif not (x is None or t is bool):
                ok = False
            else:
                size += 4
    if ok and not exact_size and size <= lim.max_json_bytes:
        return
    _explain(value, what, exact_size)


def _explain(value: Any, what: str, exact_size: bool) -> None:
    lim = current()
    stack: list[tuple[Any, str, int]] = [(value, what, 0)]
    size = 0
    while stack:
        v, where, depth = stack.pop()
        t = type(v)
        if v is None or t is bool:
            size += 4
        elif t is int or t is float or t is str:
            check_value(v, where)
            size += len(v) + 2 if t is str else 8
        elif t is list or t is dict:
            if depth >= lim.max_json_depth:
                raise JsonProblem(f"{what} is nested more than {lim.max_json_depth} levels deep "
                                  "(TIGAO_MAX_JSON_DEPTH); flatten it")
            if len(v) > lim.max_items:
                raise JsonProblem(f"{where} has {len(v):,} items; the limit is {lim.max_items:,} (TIGAO_MAX_ITEMS)")
            size += 2 + len(v)
            if t is dict:
                for k, item in v.items():
                    if type(k) is not str:
                        raise JsonProblem(f"{where} has the key {k!r}, which is not a string (JSON keys are "
                                          "strings)")
                    size += len(k) + 3
                    stack.append((item, f"{where}[{k!r}]" if len(where) < 120 else where, depth + 1))
            else:
                for i, item in enumerate(v):
                    stack.append((item, f"{where}[{i}]" if len(where) < 120 else where, depth + 1))
        else:
            kind = _NOT_JSON.get(t) or (f"a {t.__name__}" if t.__module__ == "builtins" else "an object")
            raise JsonProblem(f"{where} is {kind}; process data must be JSON (strings, numbers, booleans, "
                              "null, lists, objects)")
    if exact_size or size > lim.max_json_bytes:
        actual = len(json.dumps(value, ensure_ascii=False, allow_nan=False)) if size <= 4 * lim.max_json_bytes \
            else size
        if actual > lim.max_json_bytes:
            raise JsonProblem(f"{what} is about {actual:,} bytes of JSON; the limit is {lim.max_json_bytes:,} "
                              "(TIGAO_MAX_JSON_BYTES)")
