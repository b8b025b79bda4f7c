"""HTML forms from a task's JSON Schema, and the submitted fields back into typed JSON.

The page renders a `Field` tree (one per schema property, nested objects as fieldsets) with a
Jinja macro; every input's `name` is the field's dotted path (`address.street`), so a browser
without JavaScript posts a flat form that `parse_submission` turns back into the nested object
the schema describes. What the user typed is kept (`raw`) so a page shown again after a failed
validation shows it unchanged, with each error next to its field.

Supported: string (with `format` date, date-time, email; `ui:widget` textarea/password), number,
integer (min/max), boolean, `enum` and `oneOf`/`anyOf` of `const`s with their titles, arrays of
strings (one item per line, or checkboxes when the items have an enum), nested objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

MAX_FIELDS = 500  # a schema with more properties than this is not a form a person fills in


@dataclass
class Option:
    value: str  # the posted text
    label: str
    const: Any  # the JSON value it stands for


@dataclass
class Field:
    name: str  # dotted path
    key: str  # the property name
    title: str
    description: str | None
    kind: str  # text, textarea, password, email, date, datetime, number, integer, boolean, select,
    #            radio, lines, checklist, object, json
    required: bool
    value: Any = None  # what to show (raw text, or the stored value formatted)
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    readonly: bool = False
    options: list[Option] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def input_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


def _options(schema: dict[str, Any]) -> list[Option]:
    alts = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(alts, list) and alts and all(isinstance(a, dict) and "const" in a for a in alts):
        return [Option(_text(a["const"]), str(a.get("title") or _text(a["const"])), a["const"]) for a in alts]
    enum = schema.get("enum")
    if isinstance(enum, list):
        titles = schema.get("enumNames") or schema.get("x-enumNames") or []
        return [Option(_text(v), str(titles[i]) if i < len(titles) else _text(v), v) for i, v in enumerate(enum)]
    return []


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _type(schema: dict[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


def build_fields(schema: dict[str, Any] | None, ui: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
                 errors: dict[str, list[str]] | None = None, raw: dict[str, str | list[str]] | None = None,
                 tz: ZoneInfo | None = None, prefix: str = "") -> list[Field]:
    """The fields of an object schema, filled with `raw` (what was typed) or else `values`."""
    schema = schema or {}
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        return []
    required = set(schema.get("required") or [])
    order = list((ui or {}).get("ui:order") or []) if isinstance((ui or {}).get("ui:order"), list) else []
    keys = [k for k in order if k in props] + [k for k in props if k not in order]
    out: list[Field] = []
    for key in keys[:MAX_FIELDS]:
        sub = props[key] if isinstance(props[key], dict) else {}
        sub_ui = (ui or {}).get(key) if isinstance((ui or {}).get(key), dict) else {}
        name = f"{prefix}{key}"
        value = (values or {}).get(key) if isinstance(values, dict) else None
        f = _field(name, key, sub, sub_ui, key in required, value, errors or {}, raw, tz)
        out.append(f)
    return out


def _field(name: str, key: str, sub: dict[str, Any], ui: dict[str, Any], required: bool, value: Any,
           errors: dict[str, list[str]], raw: dict[str, Any] | None, tz: ZoneInfo | None) -> Field:
    t = _type(sub)
    widget = ui.get("ui:widget")
    f = Field(name=name, key=key, title=str(sub.get("title") or key), description=sub.get("description"),
              kind="text", required=required, readonly=bool(sub.get("readOnly") or ui.get("ui:readonly")),
              errors=list(errors.get(name, [])))
    options = _options(sub)
    typed = raw is not None and name in raw
    shown: Any = raw.get(name) if typed and raw is not None else value
    if t == "object" and not options:
        f.kind = "object"
        f.children = build_fields(sub, ui, value if isinstance(value, dict) else {}, errors, raw, tz,
                                  prefix=name + ".")
        return f
    if options:
        f.kind = "radio" if widget == "radio" else "select"
        f.options = options
        f.selected = [shown] if typed else ([_text(value)] if value is not None else [])
        f.value = shown if typed else _text(value)
        return f
    if t == "array":
        items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
        item_opts = _options(items)
        if item_opts:
            f.kind = "checklist"
            f.options = item_opts
            picked = shown if typed else [_text(v) for v in (value or [])] if isinstance(value, list) else []
            f.selected = list(picked) if isinstance(picked, list) else [picked]
            return f
        if _type(items) in (None, "string"):
            f.kind = "lines"
            f.value = shown if typed else "\n".join(map(_text, value)) if isinstance(value, list) else ""
            f.min_length, f.max_length = sub.get("minItems"), sub.get("maxItems")
            return f
        f.kind = "json"
        f.value = shown if typed else (_json(value) if value is not None else "")
        return f
    if t == "boolean":
        f.kind = "boolean"
        f.value = (shown in ("true", "on", True)) if typed else bool(value)
        return f
    if t in ("integer", "number"):
        f.kind = t
        f.minimum = sub.get("minimum", sub.get("exclusiveMinimum"))
        f.maximum = sub.get("maximum", sub.get("exclusiveMaximum"))
        f.value = shown if typed else _text(value)
        return f
    fmt = sub.get("format")
    f.kind = {"date": "date", "date-time": "datetime", "email": "email"}.get(fmt, "text")
    if widget in ("textarea", "password"):
        f.kind = widget
    f.min_length, f.max_length, f.pattern = sub.get("minLength"), sub.get("maxLength"), sub.get("pattern")
    if typed:
        f.value = shown
    elif f.kind == "datetime" and isinstance(value, str):
        f.value = _local_datetime(value, tz)
    else:
        f.value = _text(value) if not isinstance(value, (dict, list)) else _json(value)
    return f


def _json(v: Any) -> str:
    import json

    return json.dumps(v, ensure_ascii=False)


def _local_datetime(text: str, tz: ZoneInfo | None) -> str:
    """An RFC 3339 time as the `datetime-local` input shows it, in the display zone."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if dt.tzinfo is not None and tz is not None:
        dt = dt.astimezone(tz)
    return dt.strftime("%Y-%m-%dT%H:%M")


def parse_submission(schema: dict[str, Any] | None, form: Any, tz: ZoneInfo | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """Posted fields -> (data, raw, errors).

    `form` is a multi-dict (`getlist`) or a plain dict. `data` is the nested, typed object to
    validate against the schema; `raw` what was typed, by dotted name, to show again; `errors`
    the fields that could not even be read as their type (a number that is not a number), by
    dotted name, so the page can put them next to the field together with the schema's errors.
    Optional fields left empty are omitted, as a JSON form would leave them out.
    """
    data: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    _parse_object(schema or {}, form, "", data, raw, errors, tz)
    return data, raw, errors


def _getlist(form: Any, name: str) -> list[str]:
    if hasattr(form, "getlist"):
        return [v for v in form.getlist(name) if isinstance(v, str)]
    v = form.get(name) if isinstance(form, dict) else None
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _parse_object(schema: dict[str, Any], form: Any, prefix: str, out: dict[str, Any], raw: dict[str, Any],
                  errors: dict[str, list[str]], tz: ZoneInfo | None) -> None:
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        return
    required = set(schema.get("required") or [])
    for key, sub in list(props.items())[:MAX_FIELDS]:
        sub = sub if isinstance(sub, dict) else {}
        name = f"{prefix}{key}"
        t = _type(sub)
        options = _options(sub)
        if t == "object" and not options:
            child: dict[str, Any] = {}
            _parse_object(sub, form, name + ".", child, raw, errors, tz)
            if child or key in required:
                out[key] = child
            continue
        values = _getlist(form, name)
        if t == "array":
            items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
            item_opts = _options(items)
            if item_opts:
                raw[name] = values
                by_text = {o.value: o.const for o in item_opts}
                picked = [by_text[v] for v in values if v in by_text]
                bad = [v for v in values if v not in by_text]
                if bad:
                    errors.setdefault(name, []).append(f"not one of the choices: {', '.join(bad)}")
                if picked or key in required:
                    out[key] = picked
                continue
            text = values[0] if values else ""
            raw[name] = text
            if _type(items) in (None, "string"):
                lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
                if lines or key in required:
                    out[key] = lines
                continue
            _parse_json_field(text, key, name, out, errors, key in required)
            continue
        text = values[0] if values else ""
        if t == "boolean" and not options:
            raw[name] = "true" if text in ("true", "on", "1") else "false"
            out[key] = text in ("true", "on", "1")
            continue
        raw[name] = text
        if text == "" and not (t == "string" and key in required and not options):
            continue  # left out: the schema says so if it is required
        if options:
            by_text = {o.value: o.const for o in options}
            if text in by_text:
                out[key] = by_text[text]
            else:
                errors.setdefault(name, []).append("choose one of the listed values")
            continue
        if t == "integer":
            try:
                out[key] = int(text.strip())
            except ValueError:
                errors.setdefault(name, []).append("enter a whole number")
            continue
        if t == "number":
            try:
                num = float(text.strip())
                out[key] = int(num) if num.is_integer() and "." not in text and "e" not in text.lower() else num
            except ValueError:
                errors.setdefault(name, []).append("enter a number")
            continue
        if sub.get("format") == "date-time":
            out[key] = _rfc3339(text, tz)
            continue
        out[key] = text


def _parse_json_field(text: str, key: str, name: str, out: dict[str, Any], errors: dict[str, list[str]],
                      required: bool) -> None:
    import json

    if not text.strip():
        if required:
            out[key] = []
        return
    try:
        out[key] = json.loads(text)
    except ValueError:
        errors.setdefault(name, []).append("enter a JSON list")


def _rfc3339(text: str, tz: ZoneInfo | None) -> str:
    """A `datetime-local` value (no zone) read in the display zone, as RFC 3339 with its offset."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # the schema's format check reports it
    if dt.tzinfo is None and tz is not None:
        dt = dt.replace(tzinfo=tz)
    return dt.isoformat()


def errors_by_name(problems: list[tuple[str, str]]) -> dict[str, list[str]]:
    """FormError paths (`$.address.street`, `$.tags[2]`) -> dotted field names."""
    out: dict[str, list[str]] = {}
    for path, message in problems:
        name = path[2:] if path.startswith("$.") else ("" if path == "$" else path.lstrip("$"))
        name = name.split("[", 1)[0]
        out.setdefault(name, []).append(message)
    return out
