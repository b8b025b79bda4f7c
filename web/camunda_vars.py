"""Camunda 7's typed variables and date format, to and from Tigao's plain JSON values.

Camunda sends and returns variables as `{"name": {"value": ..., "type": "String", "valueInfo": {}}}`;
Tigao keeps plain JSON values. `Json` (and `Object` serialized as application/json) carries its
value as a JSON string, as Camunda does.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from engine.errors import InputError

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def camunda_date(value: datetime | None) -> str | None:
    """Camunda's date format: `2013-01-23T13:42:42.000+0000`."""
    if value is None:
        return None
    v = value.astimezone(UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}" + v.strftime("%z")


def typed(value: Any) -> dict[str, Any]:
    """One Tigao value as a Camunda typed value."""
    if value is None:
        return {"type": "Null", "value": None, "valueInfo": {}}
    if isinstance(value, bool):
        return {"type": "Boolean", "value": value, "valueInfo": {}}
    if isinstance(value, int):
        kind = "Integer" if INT_MIN <= value <= INT_MAX else "Long"
        return {"type": kind, "value": value, "valueInfo": {}}
    if isinstance(value, float):
        return {"type": "Double", "value": value, "valueInfo": {}}
    if isinstance(value, str):
        return {"type": "String", "value": value, "valueInfo": {}}
    return {"type": "Json", "value": json.dumps(value, ensure_ascii=False), "valueInfo": {}}


def typed_map(data: dict[str, Any], names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    return {k: typed(v) for k, v in data.items() if names is None or k in names}


def _bad(name: str, why: str) -> InputError:
    return InputError(f"Cannot convert value of variable '{name}': {why}")


def plain(name: str, var: Any) -> Any:
    """A Camunda typed value (or, leniently, a bare JSON value) as a Tigao value."""
    if not isinstance(var, dict) or "value" not in var and "type" not in var:
        raise _bad(name, "give {\"value\": ..., \"type\": \"String|Integer|Long|Double|Boolean|Json\"}")
    value = var.get("value")
    kind = var.get("type")
    if kind is None:  # some clients leave the type out: take the JSON value as it is
        return value
    if not isinstance(kind, str):
        raise _bad(name, "type must be a string")
    kind = kind.lower()
    if value is None or kind == "null":
        return None
    if kind in ("string", "date"):
        if not isinstance(value, str):
            raise _bad(name, f"a {var['type']} needs a string value")
        return value
    if kind in ("integer", "long", "short"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad(name, f"a {var['type']} needs a whole number")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            raise _bad(name, f"'{value}' is not a whole number")
        low, high = (INT_MIN, INT_MAX) if kind == "integer" else (LONG_MIN, LONG_MAX)
        if not low <= number <= high:
            raise _bad(name, f"{number} is out of range for {var['type']}")
        return number
    if kind == "double":
        if isinstance(value, bool):
            raise _bad(name, "a Double needs a number")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise _bad(name, f"'{value}' is not a number") from None
        if math.isnan(f) or math.isinf(f):
            raise _bad(name, "a Double must be finite")
        return f
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _bad(name, f"'{value}' is not true or false")
    if kind in ("json", "object"):
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise _bad(name, "the value is not a JSON string") from None
    raise _bad(name, f"type '{var['type']}' is not supported; use String, Integer, Long, Double, Boolean or Json")


def plain_map(variables: Any) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise InputError("variables must be an object of {name: {value, type}}")
    return {str(k): plain(str(k), v) for k, v in variables.items()}
