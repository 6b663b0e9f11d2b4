"""ocptask's engine: OCP-shaped task records, DAG templates, state machine and runner.

This module is the public API; everything else in the package may change. Names are
imported when first used, so a program that needs an error class or an enum does not pay
for SQLAlchemy, paramiko and the scheduler (the CLI's start-up, issue 11).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.remote.credentials import Credential, Credentials
    from engine.remote.host_facts import HostFacts
    from engine.remote.host_record import Host, HostStatus
    from engine.remote.hosts import HostRegistry

    from .context import Context
    from .definitions import Definition, Definitions
    from .engine import Engine
    from .enums import (
        NodeType,
        Operation,
        ServiceType,
        SplitMethod,
        SubtaskStatus,
        TaskStatus,
        TaskType,
    )
    from .errors import (
        Cancelled,
        ContextConflict,
        CredentialNotFound,
        DefinitionError,
        DefinitionNotFound,
        FieldError,
        HostNotFound,
        Interrupt,
        InvalidOperation,
        NotFound,
        OcpTaskError,
        RequestInvalid,
        ResourceBusy,
        RollbackProhibited,
        RunnerError,
        StepLoadError,
        TaskNotFound,
        TemplateError,
        TimeLimitExceeded,
        WaitTimeout,
        members,
    )
    from .packages import Declarations, ServiceSummary
    from .picture import FORMATS as DAG_FORMATS
    from .picture import PictureError
    from .picture import render as render_dag
    from .retention import PurgeReport
    from .step import Step, StepContext
    from .task import Subtask, Task
    from .template import Node, Split, Template

# Where each public name lives: the imports above, for ``__getattr__``.
_HOME = {
    "Context": ("context", "Context"),
    "Credential": ("remote.credentials", "Credential"),
    "Credentials": ("remote.credentials", "Credentials"),
    "Definition": ("definitions", "Definition"),
    "Definitions": ("definitions", "Definitions"),
    "Engine": ("engine", "Engine"),
    "Declarations": ("packages", "Declarations"),
    "ServiceSummary": ("packages", "ServiceSummary"),
    **{n: ("enums", n) for n in ("NodeType", "Operation", "SplitMethod", "SubtaskStatus")},
    **{n: ("enums", n) for n in ("ServiceType", "TaskStatus", "TaskType")},
    **{
        n: ("errors", n)
        for n in (
            "Cancelled",
            "ContextConflict",
            "CredentialNotFound",
            "DefinitionError",
            "DefinitionNotFound",
            "FieldError",
            "HostNotFound",
            "Interrupt",
            "InvalidOperation",
            "members",
            "NotFound",
            "OcpTaskError",
            "RequestInvalid",
            "ResourceBusy",
            "RollbackProhibited",
            "RunnerError",
            "StepLoadError",
            "TaskNotFound",
            "TemplateError",
            "TimeLimitExceeded",
            "WaitTimeout",
        )
    },
    **{n: ("remote.host_record", n) for n in ("Host", "HostStatus")},
    "HostFacts": ("remote.host_facts", "HostFacts"),
    "HostRegistry": ("remote.hosts", "HostRegistry"),
    "DAG_FORMATS": ("picture", "FORMATS"),
    "PictureError": ("picture", "PictureError"),
    "render_dag": ("picture", "render"),
    "PurgeReport": ("retention", "PurgeReport"),
    **{n: ("step", n) for n in ("Step", "StepContext")},
    **{n: ("task", n) for n in ("Subtask", "Task")},
    **{n: ("template", n) for n in ("Node", "Split", "Template")},
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home[0]}", __name__), home[1])
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    # Engine and records
    "Engine",
    "PurgeReport",
    "Subtask",
    "Task",
    # Hosts and the SSH credentials they are created with
    "Credential",
    "Credentials",
    "Host",
    "HostFacts",
    "HostRegistry",
    "HostStatus",
    "ServiceSummary",
    "ServiceType",
    # Scheduled task definitions
    "Definition",
    "Definitions",
    # Defining tasks, and the task packages that hold them
    "Context",
    "Declarations",
    "Node",
    "Split",
    "Step",
    "StepContext",
    "Template",
    # Pictures of a task's DAG (mermaid, dot, svg, png)
    "DAG_FORMATS",
    "render_dag",
    # Enums
    "NodeType",
    "Operation",
    "SplitMethod",
    "SubtaskStatus",
    "TaskStatus",
    "TaskType",
    # Errors
    "ContextConflict",
    "DefinitionError",
    "FieldError",
    "InvalidOperation",
    "members",
    "NotFound",
    "HostNotFound",
    "DefinitionNotFound",
    "CredentialNotFound",
    "OcpTaskError",
    "PictureError",
    "RequestInvalid",
    "ResourceBusy",
    "RollbackProhibited",
    "RunnerError",
    "StepLoadError",
    "TaskNotFound",
    "TemplateError",
    "WaitTimeout",
    # Interrupts (BaseException: steps cannot swallow them)
    "Cancelled",
    "Interrupt",
    "TimeLimitExceeded",
]
