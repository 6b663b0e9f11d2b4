"""OCP's status, operation and type enums, one documented member each (ocp-task-api.md §2)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """Status of a whole task. OCP has no CANCELED: a cancelled subtask leaves its task FAILED."""

    RUNNING = "RUNNING"
    """Some subtask can still make progress (or an operator just retried/rolled it back)."""
    FAILED = "FAILED"
    """Nothing can progress and at least one subtask failed (a run or a rollback)."""
    SUCCESSFUL = "SUCCESSFUL"
    """Every subtask succeeded, or, with operation ROLLBACK, every subtask is back to PENDING."""


class SubtaskStatus(StrEnum):
    """Status of one subtask. There is no SKIPPED: a skipped subtask counts as SUCCESSFUL."""

    PENDING = "PENDING"
    """Waiting for its upstreams (or rolled back to where it started)."""
    READY = "READY"
    """Schedulable: every upstream is done (or, in a rollback, every downstream is PENDING)."""
    RUNNING = "RUNNING"
    """A worker is executing it."""
    CANCELING = "CANCELING"
    """Cancel was asked for; the worker is interrupting it. Ends FAILED with operation CANCEL."""
    FAILED = "FAILED"
    """Its last execution raised, timed out or was cancelled. Retry, skip or roll back."""
    SUCCESSFUL = "SUCCESSFUL"
    """Its last execution finished, or it was skipped."""


class Operation(StrEnum):
    """What was last asked of a subtask (and, for EXECUTE/RETRY/ROLLBACK, of a task)."""

    EXECUTE = "EXECUTE"
    """First run, as submitted."""
    RETRY = "RETRY"
    """Run again after a failure; the step's ``retry`` (by default rollback, then execute)."""
    ROLLBACK = "ROLLBACK"
    """Undo: the step's ``rollback``; a rolled-back subtask returns to PENDING."""
    SKIP = "SKIP"
    """Mark a failed subtask SUCCESSFUL without running it."""
    CANCEL = "CANCEL"
    """Stopped by an operator's cancel or by its timeout; the subtask is FAILED."""
    ROLLBACK_SKIP = "ROLLBACK_SKIP"
    """Skip a subtask whose rollback failed: it returns to PENDING without being undone."""


class TaskType(StrEnum):
    """Who created the task."""

    MANUAL = "MANUAL"
    """Submitted by an operator or an API call."""
    SYS_ONECE = "SYS_ONECE"
    """A one-time task the system starts by itself (OCP's spelling); ocptask starts none, so a
    list filtered on it is empty, as OCP's would be without such tasks."""
    SCHEDULED = "SCHEDULED"
    """Created by a user's scheduled task definition (``taskDefinitionId`` names it)."""
    SYS_SCHEDULED = "SYS_SCHEDULED"
    """Created by a built-in schedule."""


class NodeType(StrEnum):
    """OCP's only node type; kept as a field so records match OCP's."""

    JAVA_TASK = "JAVA_TASK"
    """A step class run in-process (OCP's name, kept for compatibility)."""


class SplitMethod(StrEnum):
    """How a split node's copies (one per ``listMap`` element) relate to each other."""

    PARALLEL = "PARALLEL"
    """Copies run concurrently; a downstream waits for all of them."""
    SERIAL = "SERIAL"
    """Copies run one after another, in element order."""


class ServiceType(StrEnum):
    """What a host runs, as OCP's ServiceSummary and host filters name it (the host module's
    pages). ocptask's task packages declare the services they put on hosts
    (``Declarations.services_on_hosts``); the others are accepted by filters and match nothing."""

    OB_CLUSTER = "OB_CLUSTER"
    """An OBServer of an OceanBase cluster."""
    OB_PROXY = "OB_PROXY"
    """An OBProxy (of an OBProxy cluster)."""
    OCP_AGENT = "OCP_AGENT"
    """OCP's agent; ocptask has none (it works over SSH)."""
    BACKUP_AGENT = "BACKUP_AGENT"
    """A backup agent."""
    RESTORE_AGENT = "RESTORE_AGENT"
    """A restore agent."""
    BACKUP_RESTORE_AGENT = "BACKUP_RESTORE_AGENT"
    """A combined backup and restore agent."""
    OMS = "OMS"
    """OceanBase Migration Service."""
