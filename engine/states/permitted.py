"""Which operator actions OCP's state machine allows now: one rule for the operations that refuse
(``operations``, 20003 TASK_STATE_INVALID) and for the surfaces that offer them (the console's
buttons), so a button is shown exactly when its call would be accepted."""

from __future__ import annotations

from engine.enums import Operation, SubtaskStatus, TaskStatus


def task_retry(status: str, operation: str) -> bool:
    """Retry every failed subtask: a FAILED task that is not rolling back."""
    return status == TaskStatus.FAILED and operation != Operation.ROLLBACK


def task_rollback(status: str, prohibited: bool) -> bool:
    """Undo a FAILED task, unless its template or a subtask that ran forbids it (20004)."""
    return status == TaskStatus.FAILED and not prohibited


def subtask_retry(status: str, operation: str, task_operation: str) -> bool:
    return (
        status == SubtaskStatus.FAILED
        and operation != Operation.ROLLBACK
        and task_operation != Operation.ROLLBACK
    )


def subtask_skip(status: str) -> bool:
    return status == SubtaskStatus.FAILED


def subtask_cancel(status: str) -> bool:
    return status == SubtaskStatus.RUNNING
