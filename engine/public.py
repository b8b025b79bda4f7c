"""Public cases: processes anyone may start without an account (the 24-hour complaint hotline).

A process is publicly startable when its start event carries the extension property
`tigao.public = true` (Camunda Modeler: the start event's Extensions tab, or `camunda:properties`).
Further properties on that start event:

- `tigao.publicForm`: the form key of the public start form (a JSON Schema in the bundle). What
  a member of the public submits is validated against it and becomes the start data, or the
  payload of the start message when the start event is a message start.
- `tigao.publicRoutedAfter`: the element whose completed task means the case was routed to the
  department that owns it (default: the first user task completed);
- `tigao.publicAnsweredAfter`: the element whose completed task means the complainant has the
  answer (default: the instance's end);
- `tigao.publicAnswer`: the process variable holding the answer shown to the public.

Starting a public case returns a tracking code: 12 random characters from an alphabet without
look-alikes, shown as `XXXX-XXXX-XXXX` (60 bits: guessing one is hopeless, and /track answers
the same for a wrong code and a malformed one). The tracking view shows only the public stage
(registered, routed, being handled, answered), the times and the answer; nothing internal.

Floods are bounded twice: per address (an hourly limit, addresses kept only as salted hashes) and
in total (an hourly ceiling over all addresses), so a spam flood cannot fill the database.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from storage.models import Event, Instance, PublicCase

from . import forms as formsmod
from .values import PUBLIC_ACTOR
from .errors import InputError, NotFound, TooManyRequests

if TYPE_CHECKING:
    from .core import Engine

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": "http://camunda.org/schema/1.0/bpmn"}
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
STAGES = ("registered", "routed", "being_handled", "answered")


def _limit(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def per_address_limit() -> int:
    """Public submissions one address may make per hour (TIGAO_PUBLIC_PER_HOUR, default 5)."""
    return _limit("TIGAO_PUBLIC_PER_HOUR", 5)


def total_limit() -> int:
    """Public submissions accepted per hour over all addresses (TIGAO_PUBLIC_TOTAL_PER_HOUR, default 300)."""
    return _limit("TIGAO_PUBLIC_TOTAL_PER_HOUR", 300)


@dataclass
class PublicStart:
    key: str
    name: str | None
    form_key: str | None
    message: str | None  # the start message, when the public start is a message start
    routed_after: str | None
    answered_after: str | None
    answer_var: str | None


def public_start(files: dict[str, str], key: str) -> PublicStart | None:
    """The public start event of process `key` in a version's files, or None."""
    from .bundles import parse_xml

    for name, text in files.items():
        if not name.endswith((".bpmn", ".bpmn20.xml", ".xml")) or name.startswith("forms/"):
            continue
        root = parse_xml(name, text)
        messages = {m.get("id"): m.get("name") for m in root.iterfind("bpmn:message", NS)}
        for proc in root.iterfind("bpmn:process", NS):
            if proc.get("id") != key:
                continue
            for start in proc.iterfind("bpmn:startEvent", NS):
                props = {str(p.get("name")): str(p.get("value") or "") for p in
                         start.iterfind("bpmn:extensionElements/camunda:properties/camunda:property", NS)}
                if props.get("tigao.public", "").strip().lower() not in ("true", "yes", "1"):
                    continue
                med = start.find("bpmn:messageEventDefinition", NS)
                message = messages.get(med.get("messageRef")) if med is not None else None
                return PublicStart(key, proc.get("name"), props.get("tigao.publicForm") or None, message,
                                   props.get("tigao.publicRoutedAfter") or None,
                                   props.get("tigao.publicAnsweredAfter") or None,
                                   props.get("tigao.publicAnswer") or None)
    return None


def _salted(address: str) -> str:
    return hashlib.sha256(f"tigao-public:{address}".encode()).hexdigest()[:32]


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(text: str) -> str | None:
    raw = "".join(c for c in (text or "").upper() if c.isalnum())
    if len(raw) != 12 or any(c not in ALPHABET for c in raw):
        return None
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


class PublicDesk:
    """Starts public cases and answers their tracking codes."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def offer(self, key: str) -> tuple[PublicStart, dict[str, Any] | None]:
        """The public start of the newest version of `key`, with its form; NotFound if not public."""
        from .inspection import definition_files

        d, files = definition_files(self.engine, key)
        ps = public_start(files, key)
        if ps is None:
            raise NotFound(f"process '{key}' does not take cases from the public")
        form = None
        if ps.form_key:
            import json

            raw = files.get(f"forms/{ps.form_key}.json")
            form = json.loads(raw) if raw else None
        return ps, form

    def offers(self) -> list[PublicStart]:
        from .inspection import definition_files

        out = []
        for key in sorted({d["key"] for d in self.engine.definitions()}):
            _d, files = definition_files(self.engine, key)
            ps = public_start(files, key)
            if ps is not None:
                out.append(ps)
        return out

    def submit(self, key: str, data: dict[str, Any], address: str) -> str:
        """Validate, check the flood bounds, start the case; return its tracking code."""
        ps, form = self.offer(key)
        if form is not None:
            formsmod.validate(ps.form_key or key, form, data)
        elif data:
            raise InputError("this process takes no data from the public")
        salted = _salted(address)
        with self.engine._tx() as s:
            since = self.engine.clock.now() - timedelta(hours=1)
            mine = s.scalar(select(func.count()).select_from(PublicCase)
                            .where(PublicCase.address == salted, PublicCase.created_at >= since)) or 0
            every = s.scalar(select(func.count()).select_from(PublicCase).where(PublicCase.created_at >= since)) or 0
        if mine >= per_address_limit():
            raise TooManyRequests("too many submissions from this address in the last hour; please call the "
                                  "hotline or try again later", retry_after=3600)
        if every >= total_limit():
            raise TooManyRequests("the desk is receiving too many submissions; please try again later",
                                  retry_after=600)
        self.engine.public_desk = True  # the one place the engine acts as PUBLIC_ACTOR
        try:
            if ps.message:
                result = self.engine.message(ps.message, data, actor=PUBLIC_ACTOR)
                started = result.get("started") or []
                instance_id = started[0] if started else result.get("delivered_to")
            else:
                instance_id = self.engine.start(key, data, actor=PUBLIC_ACTOR)
        finally:
            self.engine.public_desk = False
        if instance_id is None:
            raise NotFound(f"process '{key}' did not start")
        code = new_code()
        with self.engine._tx() as s:
            s.add(PublicCase(code=code, instance_id=int(instance_id), process_key=key, address=salted,
                             created_at=self.engine.clock.now()))
        return code

    def track(self, code: str) -> dict[str, Any]:
        """The public view of a case: stage, times and the answer once given; nothing internal."""
        norm = normalise_code(code)
        unknown = NotFound("no case has that tracking code; check it and try again")
        if norm is None:
            raise unknown
        with self.engine._tx() as s:
            case = s.scalar(select(PublicCase).where(PublicCase.code == norm))
            if case is None:
                raise unknown
            inst = s.get(Instance, case.instance_id)
            events = list(s.execute(select(Event.type, Event.element_id, Event.at)
                                    .where(Event.instance_id == case.instance_id).order_by(Event.seq)))
            status = inst.status if inst else "unknown"
            key, received = case.process_key, case.created_at
        ps, _form = self.offer(key)
        stage, since = "registered", received
        routed_at = answered_at = None
        for type_, element, at in events:
            if type_ == "task_completed" and routed_at is None and (ps.routed_after in (None, element)):
                routed_at = at
                stage, since = "routed", at
            elif type_ == "task_created" and routed_at is not None and stage == "routed":
                stage, since = "being_handled", at
            if type_ == "task_completed" and ps.answered_after and element == ps.answered_after:
                answered_at = at
        if answered_at is None and status == "completed" and not ps.answered_after:
            answered_at = events[-1][2] if events else None
        answer = None
        if answered_at is not None:
            stage, since = "answered", answered_at
            if ps.answer_var:
                data = self.engine.instance(case.instance_id)["data"]
                value = data.get(ps.answer_var)
                answer = str(value) if value is not None else None
        if status == "cancelled":
            stage = "closed"
        return {"code": norm, "process": ps.name or key, "stage": stage, "since": since, "received": received,
                "answer": answer, "stages": list(STAGES)}
