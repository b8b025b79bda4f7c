"""The Engine facade: every command is one transaction over storage, SpiffWorkflow and history.

`Engine` is assembled here from its parts, one module per concern:

* base.py         construction, connection and transactions, clock, directory, who may act;
* deployments.py  validate and deploy, the deployed definitions;
* instances.py    start, cancel, migrate and modify instances, read them and their history;
* tasks.py        the task list, claim, unclaim, delegate, complete; notifications;
* messaging.py    messages and signals from outside;
* external.py     external tasks (fetch and lock, complete, failures);
* incidents.py    incidents and stuck instances;
* run.py          `Run`, one instance loaded in a transaction;
* values.py       checking and reading values from outside (data, JSON, dates).
"""

from __future__ import annotations

from .base import MAX_CLOCK_YEAR, MAX_ID, WF_CACHE_SIZE, EngineBase
from .deployments import DeploymentApi, DeployResult
from .external import ExternalTaskApi
from .incidents import IncidentApi
from .instances import InstanceApi
from .messaging import MessagingApi
from .run import Run
from .tasks import TaskApi, TaskView
from .values import (
    MAX_DATA_BYTES,
    PUBLIC_ACTOR,
    READ_ONLY_ROLE,
    check_data as _check_data,
    parse_json_arg,
    parse_when,
    process_data,
)


class Engine(DeploymentApi, InstanceApi, TaskApi, MessagingApi, ExternalTaskApi, IncidentApi, EngineBase):
    """The public facade of the runtime. One instance per database URL; thread-safe per call."""


__all__ = [
    "MAX_CLOCK_YEAR",
    "MAX_DATA_BYTES",
    "MAX_ID",
    "PUBLIC_ACTOR",
    "READ_ONLY_ROLE",
    "WF_CACHE_SIZE",
    "DeployResult",
    "Engine",
    "Run",
    "TaskView",
    "_check_data",
    "parse_json_arg",
    "parse_when",
    "process_data",
]
