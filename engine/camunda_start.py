"""What Camunda 7 reads from a process's start event: the initiator variable and the start form.

* `camunda:initiator="starter"`: the id of the user who starts the instance is stored in process
  variable `starter` (usable as `camunda:assignee="${starter}"`). It is set for every start a
  person makes (`tigao start --as U`, `/api/v1`, `/engine-rest` start and submit-form, a message or
  signal sent by U); a timer start has no initiator. It replaces a variable of the same name sent
  with the start, so nobody can start an instance in someone else's name.
* A start form: `camunda:formData`, a Camunda Form (`camunda:formRef`, `camunda-forms:` keys) or a
  JSON Schema `camunda:formKey` on the plain (none) start event. Starting the process validates
  the data against it, as completing a task validates its form, and fills in each field's
  `defaultValue` that was not sent. A message or signal start is not a form submission and is not
  validated. HTML form keys (`embedded:`, `app:`) are refused at deployment, as on user tasks.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from . import camunda_forms
from .errors import NotFound, Problem

if TYPE_CHECKING:
    from .core import Engine

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
NO_INITIATOR = ("system", "")  # the engine's own acts (a timer start) have no initiating user


@dataclass
class StartInfo:
    """What a process's start events say beyond their trigger."""

    initiators: dict[str, str] = field(default_factory=dict)  # trigger -> variable name
    form_key: str | None = None  # the (generated) form key of the plain start event's form
    declared_key: str | None = None  # camunda:formKey as written (Camunda's startForm `key`)
    form_ref: str | None = None  # camunda:formRef as written


def trigger_of(start: etree._Element, root: etree._Element) -> str:
    """`none`, `message:NAME`, `signal:NAME`, `timer` or `other` for one start event."""
    med = start.find("bpmn:messageEventDefinition", NS)
    if med is not None:
        msg = root.find(f"bpmn:message[@id='{med.get('messageRef')}']", NS) if med.get("messageRef") else None
        return f"message:{msg.get('name') if msg is not None else start.get('name')}"
    sed = start.find("bpmn:signalEventDefinition", NS)
    if sed is not None:
        sig = root.find(f"bpmn:signal[@id='{sed.get('signalRef')}']", NS) if sed.get("signalRef") else None
        return f"signal:{sig.get('name') if sig is not None else sed.get('signalRef')}"
    if start.find("bpmn:timerEventDefinition", NS) is not None:
        return "timer"
    if any(etree.QName(c).localname.endswith("EventDefinition") for c in start if isinstance(c.tag, str)):
        return "other"
    return "none"


def analyse(file: str, root: etree._Element, proc: etree._Element, files: dict[str, str], forms: dict[str, Any],
            problems: list[Problem], process: Any) -> StartInfo:
    """Read the top-level start events of one executable process (see the module docstring); also
    record in `process` (its definitions.ProcessInfo) the messages that start it and the forms its
    start events need (the start form, the public form of engine/public.py)."""
    info = StartInfo()
    key = str(proc.get("id"))
    for start in proc.iterfind("bpmn:startEvent", NS):
        trigger = trigger_of(start, root)
        if trigger.startswith("message:"):
            process.message_starts.append(trigger[len("message:"):])
        public_form = start.find(f"bpmn:extensionElements/{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"
                                 "[@name='tigao.publicForm']", NS)
        if public_form is not None and public_form.get("value"):
            process.form_keys.add(str(public_form.get("value")))
            if str(public_form.get("value")) not in forms:
                problems.append(Problem(file, f"public form '{public_form.get('value')}' has no schema",
                                        element=start.get("id"), line=public_form.sourceline))
        var = (start.get(f"{{{CAMUNDA_NS}}}initiator") or "").strip()
        if var:
            if not var.isidentifier():
                problems.append(Problem(file, f"camunda:initiator '{var}' is not a variable name (letters, digits "
                                              "and _, not starting with a digit)",
                                        element=start.get("id"), line=start.sourceline))
            info.initiators[trigger] = var
        declared = (start.get(f"{{{CAMUNDA_NS}}}formKey") or "").strip()
        ref = (start.get(f"{{{CAMUNDA_NS}}}formRef") or "").strip()
        has_data = start.find(f"bpmn:extensionElements/{{{CAMUNDA_NS}}}formData", NS) is not None
        if not (declared or ref or has_data):
            continue
        if camunda_forms.is_html_form_key(declared):
            problems.append(Problem(file, f"start form key '{declared}' names an HTML form, which only Camunda's "
                                          "Tasklist can show; use camunda:formData fields, a Camunda Form "
                                          "(camunda:formRef) or a JSON Schema form key",
                                    element=start.get("id"), line=start.sourceline))
            continue
        if trigger != "none":
            continue  # only a person starting the process fills in a form; a message carries data
        generated = camunda_forms.form_for(file, start, key, files, forms, problems)
        if generated == "":
            continue  # refused, the problem is recorded
        form_key = generated or declared
        if form_key not in forms:
            problems.append(Problem(file, f"start form key '{form_key}' has no schema: add {form_key}.json beside "
                                          "the BPMN file or in forms/", element=start.get("id"),
                                    line=start.sourceline))
            continue
        info.form_key, info.declared_key, info.form_ref = form_key, declared or None, ref or None
        process.form_keys.add(form_key)
    return info


def initiator_data(start: StartInfo | None, how: dict[str, Any], actor: str | None) -> dict[str, Any]:
    """The initiator variable for a start made `how` (`Engine._new_run`'s record) by `actor`."""
    if start is None or not start.initiators or not actor or actor in NO_INITIATOR:
        return {}
    via = how.get("via")
    trigger = {"start": "none", "message": f"message:{how.get('message')}",
               "signal": f"signal:{how.get('signal')}"}.get(str(via))
    var = start.initiators.get(trigger or "")
    return {var: actor} if var else {}


def with_start_form(start: StartInfo | None, forms: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` validated against the start form, with the defaults of the fields not sent filled in."""
    from . import forms as formsmod

    if start is None or start.form_key is None:
        return data
    schema = forms.get(start.form_key)
    if schema is None:
        return data
    formsmod.validate(start.form_key, schema, data)
    filled = dict(data)
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, dict) and "default" in prop and name not in filled:
            filled[name] = deepcopy(prop["default"])
    return filled


def start_form(engine: Engine, key: str) -> dict[str, Any]:
    """The start form of the newest version of `key`: its keys and JSON Schema (None without one)."""
    with engine._tx(read=True) as s:
        d = engine._latest_definition(s, key)
        if d is None:
            raise NotFound(f"no process '{key}' is deployed; 'tigao definitions' lists what is")
        built = engine._built(d)
    info = built.analysis.processes[key].start
    schema = built.forms.get(info.form_key) if info is not None and info.form_key else None
    return {"key": key, "version": d.version, "form_key": info.form_key if info else None,
            "declared_key": info.declared_key if info else None, "form_ref": info.form_ref if info else None,
            "schema": schema}
