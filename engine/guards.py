"""Run-time guards for sandboxed code, and operations that refuse too large a result before computing it.

The policy (`engine.sandbox`) rewrites attribute access, item access, iteration, writes, calls and
the operators that can blow up into calls of the functions here. Values a script can reach are
JSON-like (dict, list, str, int, float, bool, None), the containers and iterators the allowed
builtins make of them, the script's own functions and the engine's helpers: every guard admits
those types only, so no spelling reaches an underscore name, a frame, code, a module, a class or a
builtin outside the allowed set.
"""

from __future__ import annotations

import re
from types import BuiltinMethodType, FunctionType, GeneratorType
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from .bounds import SCRIPT_FILENAME, BoundExceeded
from .limits import current

_STR_METHODS = frozenset(
    "capitalize casefold count endswith find index isalnum isalpha isdecimal isdigit islower isnumeric "
    "isspace istitle isupper lower lstrip partition removeprefix removesuffix rfind rindex rpartition "
    "rsplit rstrip split splitlines startswith strip swapcase title upper".split())
_LIST_METHODS = frozenset("append clear copy count index insert pop remove reverse sort".split())
_DICT_METHODS = frozenset("clear copy get items keys pop popitem setdefault update values".split())
_ITERABLE = (dict, list, tuple, str, set, frozenset, range, GeneratorType, map, filter, zip, enumerate,
             reversed, type({}.keys()), type({}.values()), type({}.items()))
_CONTAINERS = (dict, list, tuple, str, range)


def _check_len(value_kind: type, n: int) -> None:
    lim = current()
    if value_kind is str:
        if n > lim.max_string:
            raise BoundExceeded("output size bound", f"a string of {n:,} characters; the limit is "
                                f"{lim.max_string:,} (TIGAO_MAX_STRING)")
    elif n > lim.max_items:
        raise BoundExceeded("output size bound", f"a {value_kind.__name__} of {n:,} items; the limit is "
                            f"{lim.max_items:,} (TIGAO_MAX_ITEMS)")


def _check_bits(bits: int) -> None:
    lim = current()
    if bits > lim.max_int_bits:
        raise BoundExceeded("output size bound", f"a number of about {bits:,} bits; the limit is "
                            f"{lim.max_int_bits:,} (TIGAO_MAX_INT_BITS)")


_CONTAINER_TYPES = (list, tuple, dict, set, frozenset)


def _check_repr(value: Any) -> None:
    """Refuse to turn a container into text when the text would exceed the string bound: a list
    holding one long string many times would otherwise become gigabytes in one call."""
    limit = current().max_string
    size = 0
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
            size += 2 + 4 * len(v)
        elif isinstance(v, _CONTAINER_TYPES):
            stack.extend(v)
            size += 2 + 2 * len(v)
        elif t is str:
            size += len(v) + 2
        else:
            size += 24  # numbers, booleans, None: short
        if size > limit:
            _check_len(str, size)


def _is_int(v: Any) -> bool:
    return type(v) is int or type(v) is bool


# --------------------------------------------------------------------------------- operators
def g_pow(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1:
        _check_bits(max(a.bit_length() - 1, 1) * b)
    return a ** b


def g_mul(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        _check_bits(a.bit_length() + b.bit_length())
    elif isinstance(a, (str, list, tuple)) and _is_int(b):
        _check_len(type(a), len(a) * b)
    elif isinstance(b, (str, list, tuple)) and _is_int(a):
        _check_len(type(b), len(b) * a)
    return a * b


def g_lshift(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and a:
        _check_bits(a.bit_length() + b)
    return a << b


def g_add(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is type(b) and (ta is str or ta is list or ta is tuple):
        _check_len(ta, len(a) + len(b))
    return a + b


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def g_mod(a: Any, b: Any) -> Any:
    if isinstance(a, str):
        if isinstance(b, _CONTAINER_TYPES):
            _check_repr(b)
        for m in _PERCENT.finditer(a):
            for part in m.groups():
                if part == "*":
                    raise BoundExceeded("output size bound", "'*' widths in % formatting are not allowed")
                if part and len(part) > 7 or part and int(part) > current().max_string:
                    _check_len(str, int(part))
        result = a % b
        _check_len(str, len(result))
        return result
    return a % b


_SPEC = re.compile(r"(\d+)?(?:[,_])?(?:\.(\d+))?[a-zA-Z%]?$")


def g_format(value: Any, conversion: int, spec: str) -> str:
    """One `{value!c:spec}` field of an f-string, with its width and precision bounded."""
    if isinstance(value, _CONTAINER_TYPES):
        _check_repr(value)
    if conversion == 114:
        value = repr(value)
    elif conversion == 115:
        value = str(value)
    elif conversion == 97:
        value = ascii(value)
    if spec:
        m = _SPEC.search(spec)
        if m:
            for part in m.groups():
                if part and (len(part) > 7 or int(part) > current().max_string):
                    _check_len(str, int(part) if len(part) <= 18 else 10 ** 18)
    result = format(value, spec)
    _check_len(str, len(result))
    return result


_INPLACE = {"+=": g_add, "*=": g_mul, "**=": g_pow, "<<=": g_lshift, "%=": g_mod,
            "-=": lambda a, b: a - b, "/=": lambda a, b: a / b, "//=": lambda a, b: a // b,
            ">>=": lambda a, b: a >> b, "&=": lambda a, b: a & b, "|=": lambda a, b: a | b,
            "^=": lambda a, b: a ^ b}


def g_inplacevar(op: str, a: Any, b: Any) -> Any:
    if type(a) is list and op in ("+=", "*="):  # in place, as Python does for lists
        if op == "+=":
            items = list(g_getiter(b))
            _check_len(list, len(a) + len(items))
            a.extend(items)
        elif _is_int(b):
            _check_len(list, len(a) * b)
            a *= b
        else:
            raise TypeError(f"can't multiply a list by a {_kind(b)}")
        return a
    fn = _INPLACE.get(op)
    if fn is None:
        raise TypeError(f"'{op}' is not allowed in process scripts")
    return fn(a, b)


def g_augitem(container: Any, key: Any, op: str, value: Any) -> None:
    """`container[key] op= value` (e.g. `counts[k] += 1`)."""
    g_write(container)[key] = g_inplacevar(op, g_getitem(container, key), value)


# --------------------------------------------------------------------------------- builtins with bounds
def g_range(*args: int) -> range:
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = 1 << 64
    _check_len(range, n)
    return r


def g_sum(items: Any, start: Any = 0) -> Any:
    if not isinstance(start, (int, float)):
        # sum(lists, []) concatenates in one C call, quadratically: refuse, as Python does for strings.
        raise TypeError("sum() adds numbers only; join lists with a comprehension")
    return sum(items, start)


def g_int(x: Any = 0, *base: int) -> int:
    if isinstance(x, str) and len(x) > 5000:
        raise BoundExceeded("output size bound", f"int() of a {len(x):,}-character string; the limit is 5,000")
    return int(x, *base)


def _str_pad(name: str) -> Any:
    def pad(s: str, width: int, *fill: str) -> str:
        _check_len(str, width)
        return getattr(s, name)(width, *fill)
    return pad


def _str_join(s: str, items: Any) -> str:
    parts = list(g_getiter(items))
    _check_len(list, len(parts))
    total = sum(len(p) for p in parts if isinstance(p, str)) + len(s) * max(len(parts) - 1, 0)
    _check_len(str, total)
    return s.join(parts)


def _str_replace(s: str, old: str, new: str, count: int = -1) -> str:
    if len(new) > len(old):
        n = (len(s) + 1) if old == "" else s.count(old)
        if count >= 0:
            n = min(n, count)
        _check_len(str, len(s) + n * (len(new) - len(old)))
    return s.replace(old, new, count)


def _str_expandtabs(s: str, tabsize: int = 8) -> str:
    _check_len(str, len(s) + s.count("\t") * max(tabsize, 0))
    return s.expandtabs(tabsize)


def _list_extend(lst: list[Any], items: Any) -> None:
    items = list(g_getiter(items))
    _check_len(list, len(lst) + len(items))
    lst.extend(items)


_STR_GUARDED = {"center": _str_pad("center"), "ljust": _str_pad("ljust"), "rjust": _str_pad("rjust"),
                "zfill": _str_pad("zfill"), "join": _str_join, "replace": _str_replace,
                "expandtabs": _str_expandtabs}


class _Bound:
    """A guarded method bound to its value (`s.join` -> `_Bound(_str_join, s)`)."""

    __slots__ = ("fn", "obj")

    def __init__(self, fn: Any, obj: Any):
        self.fn = fn
        self.obj = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(self.obj, *args, **kwargs)


# --------------------------------------------------------------------------------- access guards
def g_getattr(obj: Any, name: str, default: Any = None) -> Any:
    """`obj.name`: a dict's key (as Camunda users write `order.amount`) or a whitelisted method."""
    if name.startswith("_"):
        raise AttributeError(f"attribute '{name}' is not allowed")
    t = type(obj)
    if t is dict:
        if name in obj:
            return obj[name]
        if name in _DICT_METHODS:
            return getattr(obj, name)
        raise AttributeError(f"no field '{name}' (the object has: {', '.join(sorted(map(str, obj))[:10])})")
    if t is str:
        if name in _STR_METHODS:
            return getattr(obj, name)
        if name in _STR_GUARDED:
            return _Bound(_STR_GUARDED[name], obj)
    elif t is list:
        if name in _LIST_METHODS:
            return getattr(obj, name)
        if name == "extend":
            return _Bound(_list_extend, obj)
    elif t is float and name == "is_integer" or t is int and name == "bit_length":
        return getattr(obj, name)
    elif isinstance(obj, BaseException) and name == "args":
        return obj.args
    raise AttributeError(f"'.{name}' is not allowed on a {_kind(obj)} in process scripts")


def _kind(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t in (dict, list, str, int, float, bool, tuple, set) else "value of this kind"


def g_getitem(obj: Any, key: Any) -> Any:
    if isinstance(obj, _CONTAINERS):
        return obj[key]
    raise TypeError(f"a {_kind(obj)} cannot be indexed in process scripts")


def g_write(obj: Any) -> Any:
    if type(obj) is dict or type(obj) is list:
        return obj
    raise TypeError(f"a {_kind(obj)} cannot be changed in process scripts (only lists and objects)")


def g_getiter(obj: Any) -> Any:
    if isinstance(obj, _ITERABLE):
        return iter(obj)
    raise TypeError(f"a {_kind(obj)} cannot be iterated in process scripts")


def g_iter_unpack(it: Any, spec: Any, _getiter: Any = None) -> Any:
    return guarded_iter_unpack_sequence(it, spec, g_getiter)


def g_unpack(it: Any, spec: Any, _getiter: Any = None) -> Any:
    return guarded_unpack_sequence(it, spec, g_getiter)


_allowed_callables: set[int] = set()  # ids of the builtins, exceptions and helpers a script may call


_allowed_refs: list[Any] = []  # kept alive, so that their ids are never reused by another object


def allow_callables(values: Any) -> None:
    for v in values:
        if id(v) not in _allowed_callables:
            _allowed_callables.add(id(v))
            _allowed_refs.append(v)


def g_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Every call: the allowed builtins and helpers, guarded or whitelisted methods, script functions."""
    t = type(fn)
    if id(fn) in _allowed_callables or t is _Bound:
        if fn is str and args and isinstance(args[0], _CONTAINER_TYPES):
            _check_repr(args[0])
        return fn(*args, **kwargs)
    if t is FunctionType and fn.__code__.co_filename == SCRIPT_FILENAME:
        return fn(*args, **kwargs)
    if t is BuiltinMethodType and type(getattr(fn, "__self__", None)) in (str, list, dict, int, float):
        return fn(*args, **kwargs)
    raise TypeError(f"a {_kind(fn)} cannot be called in process scripts")


GUARDS: dict[str, Any] = {
    "_getattr_": g_getattr, "_getitem_": g_getitem, "_write_": g_write, "_getiter_": g_getiter,
    "_iter_unpack_sequence_": g_iter_unpack, "_unpack_sequence_": g_unpack, "_call_": g_call,
    "_apply_": g_call, "_inplacevar_": g_inplacevar, "_augitem_": g_augitem, "_pow_": g_pow,
    "_mul_": g_mul, "_lshift_": g_lshift, "_add_": g_add, "_mod_": g_mod, "_format_": g_format,
    "_tick_": None,
}
