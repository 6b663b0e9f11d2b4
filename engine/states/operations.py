"""Operator actions on a task (OCP's retry, rollback, and a subtask's retry, skip, cancel).

Each runs inside the caller's write transaction, on ORM records (they are rare, and clearer so),
and only changes states: the runner picks up what turns READY. Illegal ones raise
InvalidOperation (20003) or RollbackProhibited (20004); then nothing is written.
"""

from __future__ import annotations

from sqlmodel import Session, col
from sqlmodel import select as orm_select

from engine.db.records import SubtaskRecord, TaskRecord
from engine.db.row_ids import is_row_id
from engine.enums import Operation, SubtaskStatus, TaskStatus
from engine.errors import InvalidOperation, RollbackProhibited, TaskNotFound, found
from engine.task import rollback_prohibited

from . import permitted
from .transitions import promote, settle

S = SubtaskStatus


def load_task(session: Session, task_id: int, *, lock: bool = False) -> TaskRecord:
    task = found(
        session.get(TaskRecord, task_id, with_for_update=lock) if is_row_id(task_id) else None,
        TaskNotFound,
        task_id,
    )
    return task


def load_subtask(session: Session, task_id: int, subtask_id: int) -> SubtaskRecord:
    sub = session.get(SubtaskRecord, subtask_id) if is_row_id(subtask_id) else None
    if sub is None or sub.task_id != task_id:
        raise TaskNotFound(f"Subtask {subtask_id} of task {task_id} does not exist.")
    return sub


def subtasks_of(session: Session, task_id: int) -> list[SubtaskRecord]:
    query = orm_select(SubtaskRecord).where(SubtaskRecord.task_id == task_id)
    return list(session.exec(query.order_by(col(SubtaskRecord.id))).all())


# -- operator actions -------------------------------------------------------------------------


def _reopen(task: TaskRecord, operation: Operation | None = None) -> None:
    task.status = TaskStatus.RUNNING.value
    task.finish_time = None
    if operation is not None:
        task.operation = operation.value


def _mark_retry(sub: SubtaskRecord) -> bool:
    """READY again; True if it never ran and must first re-merge its upstreams' contexts."""
    sub.operation = Operation.RETRY.value
    sub.run_time += 1
    if sub.start_time is None and sub.upstreams:  # failed before running: a context conflict
        sub.status = S.PENDING.value
        return True
    sub.status = S.READY.value
    return False


def _remerge(session: Session, task_id: int, subs: list[SubtaskRecord]) -> None:
    session.flush()
    conn = session.connection()
    if subs:
        promote(conn, [s.id for s in subs], rolling_back=False)  # type: ignore[misc]
    settle(conn, task_id)


def retry_task(session: Session, task: TaskRecord) -> None:
    """Retry every FAILED subtask (OCP: "retry all failed subtasks")."""
    if not permitted.task_retry(task.status, task.operation):
        raise InvalidOperation(task.id, task.status)
    _reopen(task, Operation.RETRY)
    failed = [s for s in subtasks_of(session, task.id) if s.status == S.FAILED]  # type: ignore[arg-type]
    _remerge(session, task.id, [s for s in failed if _mark_retry(s)])  # type: ignore[arg-type]


def rollback_task(session: Session, task: TaskRecord) -> None:
    """Undo everything that ran, in reverse dependency order; refused when prohibited."""
    if not permitted.task_rollback(task.status, prohibited=False):  # 20004 is told below
        raise InvalidOperation(task.id, task.status)
    subs = subtasks_of(session, task.id)  # type: ignore[arg-type]
    if rollback_prohibited(task, subs):
        raise RollbackProhibited(task.id)  # type: ignore[arg-type]
    _reopen(task, Operation.ROLLBACK)
    started = [s for s in subs if s.status != S.PENDING]
    status = {s.id: s.status for s in subs}
    for sub in started:
        sub.operation = Operation.ROLLBACK.value
        if all(status[d] == S.PENDING for d in sub.downstreams):
            sub.status = S.READY.value
    session.flush()
    settle(session.connection(), task.id)  # type: ignore[arg-type]


def retry_subtask(session: Session, task: TaskRecord, sub: SubtaskRecord) -> None:
    if not permitted.subtask_retry(sub.status, sub.operation, task.operation):
        raise InvalidOperation(sub.id, sub.status)
    _reopen(task, Operation.RETRY)
    _remerge(session, task.id, [sub] if _mark_retry(sub) else [])  # type: ignore[arg-type]


def skip_subtask(session: Session, task: TaskRecord, sub: SubtaskRecord) -> None:
    """Skip a FAILED subtask: SUCCESSFUL without running, or (in a rollback) back to PENDING."""
    if not permitted.subtask_skip(sub.status):
        raise InvalidOperation(sub.id, sub.status)
    rolling_back = task.operation == Operation.ROLLBACK
    sub.operation = (Operation.ROLLBACK_SKIP if rolling_back else Operation.SKIP).value
    sub.status = S.READY.value
    _reopen(task)


def cancel_subtask(session: Session, task: TaskRecord, sub: SubtaskRecord) -> None:
    """Ask the worker running it to stop; it ends FAILED with operation CANCEL."""
    if not permitted.subtask_cancel(sub.status):
        raise InvalidOperation(sub.id, sub.status)
    sub.status = S.CANCELING.value
