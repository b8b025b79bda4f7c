"""Values from outside checked and read: process data, JSON and dates of the command line.

Neutral ground: it imports no other part of the engine that runs a process, so every module
(the facade, the worker, modify, external) may use it without an import circle.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .timeutil import parse_datetime

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

READ_ONLY_ROLE = "auditor"
PUBLIC_ACTOR = "public"  # the name history gives a case filed by the public (engine/public.py)
MAX_DATA_BYTES = 5 * 1024 * 1024  # a --data @file


def process_data(wf: BpmnWorkflow) -> dict[str, Any]:
    """The instance's process variables as seen by its most recent task."""
    last = wf.last_task
    if last is None:
        return dict(wf.task_tree.data)
    return dict(last.data)


def check_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("data must be a JSON object, e.g. '{\"amount\": 5}'")
    from .scripting import HELPER_NAMES, ensure_json

    try:
        ensure_json(data)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("data holds text that is not valid UTF-8 (a lone surrogate such as \\ud800, or an "
                         "undecodable byte); give UTF-8 text") from exc
    shadowing = sorted(set(data) & HELPER_NAMES)
    if shadowing:
        raise InputError(f"field name(s) {', '.join(shadowing)} are reserved for the script helpers; "
                         "rename them")
    return data


def short_error(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]


def parse_json_arg(text: str | None) -> dict[str, Any] | None:
    """`JSON` or `@file` from the command line."""
    if text is None:
        return None
    raw = text
    if text.startswith("@"):
        raw = _read_data_file(text[1:])
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise InputError("data is nested too deeply; give a flat JSON object of field values") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"data is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                         "give an object like '{\"field\": 1}' or @file.json") from exc
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits (a CPU-time guard)
        raise InputError(f"data holds a number too long to read ({short_error(exc)}); give numbers of at most "
                         "4,300 digits, or the value as a string") from exc
    if not isinstance(value, dict):
        raise InputError("data must be a JSON object, e.g. '{\"field\": 1}'")
    return value


def _read_data_file(name: str) -> str:
    """A regular file of at most MAX_DATA_BYTES of UTF-8, checked before it is read."""
    import os
    import stat

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"cannot read data file '{name}': {exc.strerror}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_DATA_BYTES:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"data file '{name}' is not a regular file (a device, pipe or folder); "
                             "give a JSON file")
        raise InputError(f"data file '{name}' is {st.st_size:,} bytes; the limit is {MAX_DATA_BYTES:,}")
    with os.fdopen(fd, "rb") as f:
        blob = f.read(MAX_DATA_BYTES + 1)  # a file that grows meanwhile is still cut at the limit
    if len(blob) > MAX_DATA_BYTES:
        raise InputError(f"data file '{name}' is larger than {MAX_DATA_BYTES:,} bytes")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"data file '{name}' is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def parse_when(text: str) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
