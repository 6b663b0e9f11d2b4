"""ocptask's engine: OCP-shaped task records, DAG templates, state machine and runner.

This module is the public API; everything else in the package may change.
"""

from __future__ import annotations

from .context import Context
from .credentials import Credential, Credentials
from .definitions import Definition, Definitions
from .engine import Engine
from .enums import NodeType, Operation, SplitMethod, SubtaskStatus, TaskStatus, TaskType
from .errors import (
    AccessKeyNotFound,
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
    ObClusterNotFound,
    OcpTaskError,
    RequestInvalid,
    ResourceBusy,
    RollbackProhibited,
    RunnerError,
    StepLoadError,
    TaskNotFound,
    TemplateError,
    TimeLimitExceeded,
    UserNotFound,
    WaitTimeout,
)
from .hosts import Host, HostRegistry, HostStatus
from .ob_clusters import ObCluster, ObClusters
from .picture import FORMATS as DAG_FORMATS
from .picture import PictureError
from .picture import render as render_dag
from .step import Step, StepContext
from .task import Subtask, Task
from .template import Node, Split, Template
from .users import AccessKey, User, Users

__all__ = [
    # Engine and records
    "Engine",
    "Subtask",
    "Task",
    # Hosts and the SSH credentials they are created with
    "Credential",
    "Credentials",
    "Host",
    "HostRegistry",
    "HostStatus",
    # OceanBase clusters obLinks name; API users and access keys
    "ObCluster",
    "ObClusters",
    "AccessKey",
    "User",
    "Users",
    # Scheduled task definitions
    "Definition",
    "Definitions",
    # Defining tasks
    "Context",
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
    "NotFound",
    "ObClusterNotFound",
    "HostNotFound",
    "DefinitionNotFound",
    "CredentialNotFound",
    "UserNotFound",
    "AccessKeyNotFound",
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
