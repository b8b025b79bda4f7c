"""Validation of submitted task data against the task's JSON Schema form."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from .errors import FormError

_VALIDATORS: dict[str, Any] = {}


def _validator(schema: dict[str, Any]) -> Any:
    key = json.dumps(schema, sort_keys=True)
    v = _VALIDATORS.get(key)
    if v is None:
        cls = validator_for(schema, default=Draft202012Validator)
        v = cls(schema, format_checker=cls.FORMAT_CHECKER)
        if len(_VALIDATORS) > 1000:
            _VALIDATORS.clear()
        _VALIDATORS[key] = v
    return v


def validate(form_key: str, schema: dict[str, Any], data: Any) -> None:
    """Raise FormError listing every failing field (by JSON path) with the reason."""
    if not isinstance(data, dict):
        raise FormError(form_key, [("$", "the data must be a JSON object of field values")])
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise FormError(form_key, [(_path(e), e.message) for e in errors])


def _path(error: Any) -> str:
    parts = ["$"]
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    if error.validator == "required":
        # Point at the missing field itself.
        missing = error.message.split("'")[1] if "'" in error.message else ""
        if missing:
            parts.append(f".{missing}")
    return "".join(parts)
