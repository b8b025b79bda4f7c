"""Tigao: a durable BPMN 2.0 engine on SpiffWorkflow.

The public names are re-exported here; everything else is internal.
"""

from .clock import Clock, SettableClock
from .core import DeployResult, Engine, TaskView
from .deadlines import Worker
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
