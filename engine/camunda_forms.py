"""Camunda's forms, turned into JSON Schema at deployment so they behave like any other form.

* **Generated task forms** (`camunda:formData`): each `camunda:formField` (types `string`, `long`,
  `boolean`, `date`, `enum` with its `camunda:value`s) becomes a property with its label as
  `title`; constraints `required`, `min`, `max`, `minlength`, `maxlength`, `readonly` and the
  field's `defaultValue` become `required`, `minimum`/`maximum` (numbers) or `minLength`/
  `maxLength` (strings), `readOnly` and `default`. A read-only field may not be submitted (as in
  Camunda, where the read-only validator refuses any value).
* **Camunda Forms** (form-js JSON, `.form` files in the bundle), named by
  `camunda:formRef="formId"` (the form's `id`) or by a form key
  `camunda-forms:deployment:NAME.form` / `camunda-forms:app:PATH/NAME.form` / any key ending in
  `.form` such as `deployment:PATH/NAME.form` (the file's name):
  `textfield`, `textarea`, `number`, `checkbox`, `select`, `radio`, `checklist`, `datetime` with
  their `validate` settings (`required`, `min`, `max`, `minLength`, `maxLength`, `pattern`,
  `validationType` email); groups are flattened (or nested under their `path`); display-only
  components (text, image, button, spacer, separator) hold no data.

The generated schema is stored with the version as `forms/KEY.json` (KEY `camunda-formdata.PROCESS.TASK`
or `camunda-form.NAME`), so a rebuilt version sees exactly what was validated.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from lxml import etree

from .errors import Problem

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
TIME_PATTERN = r"^\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
NO_DATA = {"text", "image", "button", "spacer", "separator", "html", "iframe", "table", "documentPreview"}
FORM_JS_FIELDS = {"textfield", "textarea", "number", "checkbox", "select", "radio", "checklist", "datetime",
                  "taglist", "expression", "filepicker"}


def _c(tag: str) -> str:
    return f"{{{CAMUNDA_NS}}}{tag}"


def is_camunda_form_key(key: str) -> bool:
    """`camunda-forms:deployment:x.form`, `camunda-forms:app:forms/x.form`, `deployment:path/x.form`."""
    return key.startswith("camunda-forms:") or key.endswith(".form")


def is_html_form_key(key: str) -> bool:
    """`embedded:app:forms/x.html`, `app:x.html`, `embedded:deployment:x.html`: HTML for Camunda's Tasklist."""
    return not is_camunda_form_key(key) and (key.startswith(("embedded:", "app:")) or key.endswith((".html", ".htm")))


def schema_text(schema: dict[str, Any]) -> str:
    """The stored text of a generated schema (stable, so redeploying is a no-op)."""
    return json.dumps(schema, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def form_for(file: str, task: etree._Element, process: str, files: dict[str, str], forms: dict[str, Any],
             problems: list[Problem]) -> str | None:
    """The form key a user task's Camunda form becomes, registering its schema in `files`/`forms`.

    Returns None when the task uses no Camunda form (its `camunda:formKey` is then a JSON Schema
    key as usual), "" when its form key was refused elsewhere (an HTML form).
    """
    element = str(task.get("id"))
    form_data = task.find(f"{{*}}extensionElements/{_c('formData')}")
    form_ref = (task.get(_c("formRef")) or "").strip()
    key = (task.get(_c("formKey")) or "").strip()
    if is_html_form_key(key):
        return ""
    generated = _generated_key(process, element, form_data, form_ref, key)
    if generated is not None and f"forms/{generated}.json" in files and generated in forms:
        return generated  # a stored version: its schema was generated when it was deployed
    try:
        if form_data is not None and len(form_data):
            schema = from_form_data(form_data, task.get("name") or element)
            return _register(f"camunda-formdata.{process}.{element}", schema, files, forms)
        if form_ref and ("${" in form_ref or "#{" in form_ref):
            problems.append(Problem(file, f"camunda:formRef '{form_ref}' is an expression: Tigao binds a task's "
                                          "Camunda Form at deployment, so name the form's \"id\" itself",
                                    element=element, line=task.sourceline))
            return ""
        if form_ref:
            name = _form_file_by_id(form_ref, files)
            if name is None:
                problems.append(Problem(file, f"camunda:formRef '{form_ref}' names no Camunda Form: add the .form file "
                                              f"whose \"id\" is '{form_ref}' beside the BPMN file",
                                        element=element, line=task.sourceline))
                return ""
            return _register(f"camunda-form.{form_ref}", from_form_js(json.loads(files[name])), files, forms)
        if is_camunda_form_key(key):
            base = PurePosixPath(key.split(":")[-1]).name
            name = f"forms/{base}"
            if name not in files:
                problems.append(Problem(file, f"form key '{key}' names the Camunda Form '{base}', which is not in "
                                              "the bundle: put it beside the BPMN file or in forms/",
                                        element=element, line=task.sourceline))
                return ""
            stem = base[: -len(".form")] if base.endswith(".form") else base
            return _register(f"camunda-form.{stem}", from_form_js(json.loads(files[name])), files, forms)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        problems.append(Problem(file, f"cannot read the task's form: {exc}", element=element, line=task.sourceline))
        return ""
    return None


def _generated_key(process: str, element: str, form_data: Any, form_ref: str, key: str) -> str | None:
    if form_data is not None and len(form_data):
        return f"camunda-formdata.{process}.{element}"
    if form_ref:
        return f"camunda-form.{form_ref}"
    if is_camunda_form_key(key):
        base = PurePosixPath(key.split(":")[-1]).name
        return f"camunda-form.{base[: -len('.form')] if base.endswith('.form') else base}"
    return None


def _register(key: str, schema: dict[str, Any], files: dict[str, str], forms: dict[str, Any]) -> str:
    files[f"forms/{key}.json"] = schema_text(schema)
    forms[key] = schema
    return key


def _form_file_by_id(form_id: str, files: dict[str, str]) -> str | None:
    for name in sorted(files):
        if name.startswith("forms/") and name.endswith(".form"):
            try:
                if json.loads(files[name]).get("id") == form_id:
                    return name
            except (json.JSONDecodeError, AttributeError):
                continue
    return None


# ---------------------------------------------------------------------------------------------
# camunda:formData


def from_form_data(form_data: etree._Element, title: str) -> dict[str, Any]:
    """A JSON Schema for a `camunda:formData` element; ValueError naming a bad field."""
    props: dict[str, Any] = {}
    required: list[str] = []
    read_only: list[str] = []
    for field in form_data.iterfind(_c("formField")):
        fid = (field.get("id") or "").strip()
        if not fid:
            raise ValueError("a camunda:formField has no id")
        kind = (field.get("type") or "string").strip()
        prop: dict[str, Any] = {"title": field.get("label") or fid}
        constraints = {(c.get("name") or "").strip(): c.get("config")
                       for c in field.iterfind(f"{_c('validation')}/{_c('constraint')}")}
        if kind in ("string", "textarea"):
            prop["type"] = "string"
        elif kind == "long":
            prop["type"] = "integer"
        elif kind == "boolean":
            prop["type"] = "boolean"
        elif kind == "date":
            prop.update({"type": "string", "pattern": DATE_PATTERN, "format": "date-time"})
        elif kind == "enum":
            values = [(str(v.get("id")), v.get("name") or str(v.get("id"))) for v in field.iterfind(_c("value"))]
            if not values:
                raise ValueError(f"enum field '{fid}' has no camunda:value")
            prop["oneOf"] = [{"const": vid, "title": name} for vid, name in values]
        else:
            raise ValueError(f"field '{fid}' has type '{kind}'; use string, long, boolean, date or enum")
        default = field.get("defaultValue")
        if default is not None and "${" not in default and "#{" not in default:
            prop["default"] = _typed(default, kind, fid)
        for name, config in constraints.items():
            _constraint(prop, name, config, kind, fid)
        if "readonly" in constraints:
            prop["readOnly"] = True
            read_only.append(fid)
        elif "required" in constraints:
            required.append(fid)
        props[fid] = prop
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
                              "type": "object", "properties": props}
    if required:
        schema["required"] = required
    if read_only:
        # Camunda's read-only validator refuses any submitted value for the field.
        schema["propertyNames"] = {"not": {"enum": read_only}}
    return schema


def _typed(text: str, kind: str, fid: str) -> Any:
    if kind == "long":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"field '{fid}': defaultValue '{text}' is not a whole number") from None
    if kind == "boolean":
        if text.strip().lower() not in ("true", "false"):
            raise ValueError(f"field '{fid}': defaultValue '{text}' is not true or false")
        return text.strip().lower() == "true"
    return text


def _constraint(prop: dict[str, Any], name: str, config: str | None, kind: str, fid: str) -> None:
    if name in ("required", "readonly", ""):
        return
    if name in ("min", "max", "minlength", "maxlength"):
        try:
            number = float(config or "")
        except ValueError:
            raise ValueError(f"field '{fid}': constraint {name} needs a number, not '{config}'") from None
        value: int | float = int(number) if number.is_integer() else number
        if name in ("minlength", "maxlength") or (kind in ("string", "textarea") and name in ("min", "max")):
            prop["minLength" if name.startswith("min") else "maxLength"] = int(value)
        else:
            prop["minimum" if name == "min" else "maximum"] = value
        return
    raise ValueError(f"field '{fid}': constraint '{name}' is not supported (required, min, max, minlength, "
                     "maxlength, readonly); custom validators are Java classes Tigao cannot run")


# ---------------------------------------------------------------------------------------------
# form-js (Camunda Forms)


def from_form_js(form: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema for a form-js schema (the content of a `.form` file); ValueError if unusable."""
    if not isinstance(form, dict) or not isinstance(form.get("components"), list):
        raise ValueError("a Camunda Form is a JSON object with a 'components' list")
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                              "properties": {}}
    if form.get("id"):
        schema["title"] = str(form["id"])
    _components(form["components"], schema)
    return schema


def _components(components: list[Any], target: dict[str, Any]) -> None:
    for comp in components:
        if not isinstance(comp, dict):
            continue
        kind = comp.get("type")
        if kind in ("group", "dynamiclist") or (comp.get("components") and kind not in FORM_JS_FIELDS):
            inner: dict[str, Any] = {"type": "object", "properties": {}}
            if comp.get("label"):
                inner["title"] = comp["label"]
            _components(comp.get("components") or [], inner)
            path = comp.get("path")
            if kind == "dynamiclist" and path:
                _put(target, str(path), {"type": "array", "title": comp.get("label") or path, "items": inner}, False)
            elif path:
                _put(target, str(path), inner, bool(inner.get("required")))
            else:
                for key, prop in inner["properties"].items():
                    _put(target, key, prop, key in inner.get("required", []))
            continue
        if kind in NO_DATA or kind not in FORM_JS_FIELDS or not comp.get("key"):
            continue
        prop, required = _field(comp)
        _put(target, str(comp["key"]), prop, required)


def _put(target: dict[str, Any], key: str, prop: dict[str, Any], required: bool) -> None:
    target.setdefault("properties", {})[key] = prop
    if required:
        target.setdefault("required", []).append(key)


def _field(comp: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    kind = comp["type"]
    v = comp.get("validate") or {}
    prop: dict[str, Any] = {"title": comp.get("label") or comp["key"]}
    if comp.get("description"):
        prop["description"] = comp["description"]
    options = [{"const": o.get("value"), "title": o.get("label", str(o.get("value")))}
               for o in comp.get("values") or [] if isinstance(o, dict)]
    if kind in ("textfield", "textarea"):
        prop["type"] = "string"
        _lit(prop, "minLength", v.get("minLength"))
        _lit(prop, "maxLength", v.get("maxLength"))
        if isinstance(v.get("pattern"), str) and v["pattern"]:
            re.compile(v["pattern"])  # a bad pattern is refused at deployment
            prop["pattern"] = v["pattern"]
        if v.get("validationType") == "email":
            prop["pattern"] = EMAIL_PATTERN
    elif kind == "number":
        prop["type"] = "integer" if comp.get("decimalDigits") == 0 else "number"
        _lit(prop, "minimum", v.get("min"))
        _lit(prop, "maximum", v.get("max"))
    elif kind == "checkbox":
        prop["type"] = "boolean"
    elif kind in ("select", "radio"):
        if options:
            prop["oneOf"] = options
    elif kind in ("checklist", "taglist"):
        prop["type"] = "array"
        prop["items"] = {"oneOf": options} if options else {}
    elif kind == "datetime":
        sub = comp.get("subtype", "date")
        prop["type"] = "string"
        prop["pattern"] = TIME_PATTERN if sub == "time" else DATE_PATTERN
    if "defaultValue" in comp and not (isinstance(comp["defaultValue"], str) and comp["defaultValue"].startswith("=")):
        prop["default"] = comp["defaultValue"]
    if comp.get("readonly") is True or comp.get("disabled") is True:
        prop["readOnly"] = True
    return prop, v.get("required") is True


def _lit(prop: dict[str, Any], name: str, value: Any) -> None:
    """Only literal numbers; FEEL expressions (`=...`) in form-js settings are not evaluated."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        prop[name] = value
