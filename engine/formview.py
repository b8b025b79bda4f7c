"""A task's form as a person reads it: fields, descriptions, choices, and the values already known.

Pure functions over a JSON Schema form (no validator needed), shared by the command line, the
server and `Engine.complete`, so that what a form shows and what completing it accepts agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Field:
    """One declared field of a form."""

    name: str
    type: str
    required: bool
    title: str = ""
    description: str = ""
    choices: list[tuple[Any, str]] = field(default_factory=list)  # (value, title or "")
    has_value: bool = False  # the task's data already holds a value for it
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required, "title": self.title,
                "description": self.description, "choices": [{"value": v, "title": t} for v, t in self.choices],
                "has_value": self.has_value, "value": self.value}


def _type(prop: dict[str, Any]) -> str:
    t = prop.get("type", "")
    if isinstance(t, list):
        t = "|".join(str(x) for x in t)
    if t == "array" and isinstance(prop.get("items"), dict) and prop["items"].get("type"):
        return f"array of {prop['items']['type']}"
    return str(t)


def _choices(prop: dict[str, Any]) -> list[tuple[Any, str]]:
    """Allowed values with their titles: `oneOf`/`anyOf` of `const` (the titled enum idiom), else `enum`."""
    for key in ("oneOf", "anyOf"):
        alts = prop.get(key)
        if isinstance(alts, list) and alts and all(isinstance(a, dict) and "const" in a for a in alts):
            return [(a["const"], str(a.get("title", ""))) for a in alts]
    items = prop.get("items") if prop.get("type") == "array" else None
    if isinstance(items, dict) and (items.get("oneOf") or items.get("enum")):
        return _choices(items)
    if isinstance(prop.get("enum"), list):
        return [(v, "") for v in prop["enum"]]
    return []


def declared(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    props = (schema or {}).get("properties")
    return {k: v for k, v in props.items() if isinstance(v, dict)} if isinstance(props, dict) else {}


def task_defaults(schema: dict[str, Any] | None, task_data: dict[str, Any]) -> dict[str, Any]:
    """The values the task's data already holds for the form's declared fields (delivered by a
    message, set by an earlier task): completing the task need not send them again."""
    return {k: task_data[k] for k in declared(schema) if k in task_data}


def with_defaults(schema: dict[str, Any] | None, task_data: dict[str, Any], submitted: dict[str, Any]) \
        -> dict[str, Any]:
    """What a completion is validated as: the known values, overridden by what was submitted."""
    return {**task_defaults(schema, task_data), **submitted}


def fields(schema: dict[str, Any] | None, task_data: dict[str, Any] | None = None) -> list[Field]:
    required = set((schema or {}).get("required") or [])
    data = task_data or {}
    return [Field(name=k, type=_type(p), required=k in required, title=str(p.get("title", "")),
                  description=str(p.get("description", "")), choices=_choices(p), has_value=k in data,
                  value=data.get(k)) for k, p in declared(schema).items()]


def undeclared_fields(schema: dict[str, Any] | None) -> str:
    """What happens to a submitted field the form does not declare, in words."""
    extra = (schema or {}).get("additionalProperties", True)
    if extra is False:
        return "refused: the form accepts only the fields above"
    if isinstance(extra, dict):
        return "accepted if they match the form's rule for other fields, and kept as process variables"
    return "accepted and kept as process variables (the form does not forbid them)"
