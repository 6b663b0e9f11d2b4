"""Finding subtasks whose executor is gone, and deciding their fate.

A RUNNING subtask belongs to the executor named in it for as long as its lease lasts. Once the
lease lapses (a missing lease counts as lapsed: ``NULL < now`` is never true in SQL, which is how
Airflow's zombies survived) or its process of this machine is dead, the run is lost. A step that
declares itself idempotent goes back to READY as a RETRY (``runTime`` + 1); any other is FAILED
with "executor <id> lost while running" so that the operator decides: retry, skip or roll back.
Either way the subtask remembers the lost executor, and its next run (of any kind) first calls
the step's ``clean`` to stop what the lost run may have left going.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from . import runner, subtask_log, transitions
from .clock import as_utc, utcnow
from .enums import Operation, SubtaskStatus
from .errors import StepLoadError
from .step import load_step
from .store import Store

S = SubtaskStatus
SUBTASKS = transitions.SUBTASKS
_HELD_COLUMNS = (
    SUBTASKS.c.id,
    SUBTASKS.c.status,
    SUBTASKS.c.operation,
    SUBTASKS.c.class_name,
    SUBTASKS.c.executor,
    SUBTASKS.c.acquired_until,
)
_ACTIVE = [S.RUNNING.value, S.CANCELING.value]
_HELD = select(*_HELD_COLUMNS).where(
    SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status.in_(_ACTIVE)
)
HELD_ONE = select(*_HELD_COLUMNS).where(
    SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status.in_(_ACTIVE)
)
_RERUN = (
    update(SUBTASKS)
    .where(SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status == S.RUNNING.value)
    .values(
        status=S.READY.value,
        operation=Operation.RETRY.value,
        run_time=SUBTASKS.c.run_time + 1,
        executor=None,
        acquired_until=None,
        lost_executor=bindparam("lost"),
        finish_time=None,
    )
)

_MARK_LOST = (
    update(SUBTASKS)
    .where(SUBTASKS.c.id == bindparam("sid"))
    .values(lost_executor=bindparam("lost"))
)


def recover_lost(store: Store, task_id: int, me: str) -> None:
    """Re-run or fail the task's subtasks whose executor is lost; ``me`` is the caller's id."""
    with store.connect() as conn:
        transitions.lock_task(conn, task_id)
        for row in conn.execute(_HELD, {"task_id": task_id}).all():
            if is_lost(task_id, row.id, row.executor, as_utc(row.acquired_until), me):
                give_up(conn, task_id, row, "lost while running")


def give_up(conn: Connection, task_id: int, row: Row[Any], why: str) -> None:
    """Decide the fate of a run its executor will not finish: re-run it (idempotent) or fail it.

    ``row`` has id, status, operation, class_name and executor; the caller holds the task lock.
    """
    lost = f"executor {row.executor} {why}"
    if _rerunnable(row):
        note = subtask_log.line("WARN", f"{lost}; the step is idempotent: it runs again (RETRY)")
        subtask_log.append_row(conn, row.id, note)
        conn.execute(_RERUN, {"sid": row.id, "lost": row.executor or "unknown"})
        return
    subtask_log.append_row(conn, row.id, subtask_log.line("ERROR", lost))
    conn.execute(_MARK_LOST, {"sid": row.id, "lost": row.executor or "unknown"})
    sub = transitions.subtask_row(conn, row.id)
    expect = (S.RUNNING.value, S.CANCELING.value)
    transitions.finish(conn, task_id, sub, ok=False, expect=expect)  # type: ignore[arg-type]


def _rerunnable(row: Row[Any]) -> bool:
    """Only a forward run (not a rollback, not a cancel in progress) of an idempotent step."""
    if row.status != S.RUNNING.value:
        return False
    if row.operation not in (Operation.EXECUTE.value, Operation.RETRY.value):
        return False
    try:
        return load_step(row.class_name).idempotent
    except StepLoadError:
        return False


def is_lost(
    task_id: int, subtask_id: int, executor: str | None, lease: datetime | None, me: str
) -> bool:
    """Lost: no executor, a lapsed (or never taken) lease, or a dead process of this machine.

    The caller's own subtasks are lost only if nothing of this process runs them, no driver
    here may be claiming them, and their lease lapsed too (a claim just committed is not yet in
    a worker's hands, but its lease is fresh).
    """
    address, _, pid = (executor or "").rpartition(":")
    same_machine = address == me.rpartition(":")[0] and pid.isdigit()
    lapsed = lease is None or lease < utcnow()
    if same_machine and int(pid) == os.getpid():
        return lapsed and not runner.running_here(subtask_id) and not runner.driving_here(task_id)
    if not executor or lapsed:
        return True
    return same_machine and not os.path.exists(f"/proc/{pid}")
