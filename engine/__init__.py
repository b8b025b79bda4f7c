"""Tigao: a durable BPMN 2.0 engine on SpiffWorkflow.

The public names are re-exported here; everything else is internal. The errors and the clock
are imported at once; the engine and the worker (which pull in SQLAlchemy and SpiffWorkflow)
only when first used (PEP 562), so that `tigao --help` and other light commands start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .clock import Clock, SettableClock
from .errors import (
    Conflict,
    DefinitionError,
    EngineError,
    FormError,
    InputError,
    NotAllowed,
    NotFound,
    Problem,
    ScriptError,
    StorageError,
)

if TYPE_CHECKING:
    from .core import DeployResult, Engine
    from .deadlines import Worker
    from .taskview import TaskView

_LAZY = {"DeployResult": ".core", "Engine": ".core", "TaskView": ".taskview", "Worker": ".deadlines"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute '{name}'")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "Clock",
    "Conflict",
    "DefinitionError",
    "DeployResult",
    "Engine",
    "EngineError",
    "FormError",
    "InputError",
    "NotAllowed",
    "NotFound",
    "Problem",
    "ScriptError",
    "SettableClock",
    "StorageError",
    "TaskView",
    "Worker",
]
