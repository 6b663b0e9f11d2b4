"""Finding subtasks whose executor is gone, and deciding their fate.

A RUNNING subtask belongs to the executor named in it for as long as its lease lasts. Once the
lease lapses (a missing lease counts as lapsed: ``NULL < now`` is never true in SQL, which is how
Airflow's zombies survived) the run is lost. Nothing else is trusted: executor ids (``<ip>:<pid>``)
of different machines can look alike (``127.0.1.1``), so a missing ``/proc/<pid>`` proves nothing.
An executor fences itself before that point: it stops its own steps once it could not renew a
lease for most of its length (see the runner), so a lapsed lease means the run has stopped.

A step that declares itself idempotent goes back to READY as a RETRY (``runTime`` + 1), at most
``MAX_AUTOMATIC_RUNS`` runs in all, so that a step that kills every executor does not crash-loop
the daemons; any other is FAILED with "executor <id> lost while running" so that the operator
decides: retry, skip or roll back. Either way the subtask remembers the lost executor, and its
next run (of any kind) first calls the step's ``clean`` to stop what the lost run left going.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select, update

from . import runner, subtask_log, transitions
from .clock import as_utc, utcnow
from .enums import Operation, SubtaskStatus
from .errors import StepLoadError
from .step import load_step
from .store import Store

S = SubtaskStatus
SUBTASKS = transitions.SUBTASKS
MAX_AUTOMATIC_RUNS = 3
_HELD_COLUMNS = (
    SUBTASKS.c.id,
    SUBTASKS.c.status,
    SUBTASKS.c.operation,
    SUBTASKS.c.class_name,
    SUBTASKS.c.executor,
    SUBTASKS.c.acquired_until,
    SUBTASKS.c.run_time,
)
_ACTIVE = [S.RUNNING.value, S.CANCELING.value]
_HELD = (
    select(*_HELD_COLUMNS)
    .where(SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status.in_(_ACTIVE))
    .order_by(SUBTASKS.c.id)
)
HELD_ONE = select(*_HELD_COLUMNS).where(
    SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status.in_(_ACTIVE)
)
# Compare-and-set: only if the executor read is still the holder and its lease ends before
# ``:lapsed_by`` (a renewal that landed after the read wins; the run is not lost after all).
_STILL_HELD_AS_SEEN = (
    SUBTASKS.c.id == bindparam("sid"),
    SUBTASKS.c.executor.is_not_distinct_from(bindparam("seen")),
    or_(SUBTASKS.c.acquired_until.is_(None), SUBTASKS.c.acquired_until < bindparam("lapsed_by")),
)
_RERUN = (
    update(SUBTASKS)
    .where(*_STILL_HELD_AS_SEEN, SUBTASKS.c.status == S.RUNNING.value)
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
    .where(*_STILL_HELD_AS_SEEN, SUBTASKS.c.status.in_(_ACTIVE))
    .values(lost_executor=bindparam("lost"))
)
# Tasks with a RUNNING subtask whose lease lapsed, oldest first: what a sweep looks at.
LAPSED_TASKS = (
    select(SUBTASKS.c.task_id)
    .where(
        SUBTASKS.c.status.in_(_ACTIVE),
        or_(SUBTASKS.c.acquired_until.is_(None), SUBTASKS.c.acquired_until < bindparam("now")),
    )
    .group_by(SUBTASKS.c.task_id)
    .order_by(SUBTASKS.c.task_id)
    .limit(200)
)


def recover_lost(store: Store, task_id: int, me: str, *, wait: bool = True) -> None:
    """Re-run or fail the task's subtasks whose executor is lost; ``me`` is the caller's id.

    With ``wait=False`` a task whose lock another executor holds is passed over (a sweep will
    come back to it).
    """
    with store.connect() as conn:
        if wait:
            transitions.lock_task(conn, task_id)
        elif transitions.try_lock_task(conn, task_id) is None:
            return
        now = utcnow()
        for row in conn.execute(_HELD, {"task_id": task_id}).all():
            if is_lost(row.id, row.executor, as_utc(row.acquired_until), me, now):
                give_up(conn, task_id, row, "lost while running", lapsed_by=now)


def give_up(
    conn: Connection,
    task_id: int,
    row: Row[Any],
    why: str,
    *,
    lapsed_by: datetime | None = None,
    rerun: bool = True,
) -> bool:
    """Decide the fate of a run its executor will not finish: re-run it (idempotent) or fail it.

    ``row`` is as ``HELD_ONE`` reads it; the caller holds the task lock. ``lapsed_by``: act only
    if the lease still ends before it (None: whatever the lease, for an executor handing back its
    own run). ``rerun=False``: FAILED even if idempotent. Returns False if the row changed since
    it was read (nothing done).
    """
    params = {
        "sid": row.id,
        "seen": row.executor,
        "lost": row.executor or "unknown",
        "lapsed_by": lapsed_by or utcnow() + timedelta(days=36500),
    }
    lost = f"executor {row.executor} {why}"
    if rerun and _rerunnable(row):
        if conn.execute(_RERUN, params).rowcount != 1:
            return False
        note = f"{lost}; the step is idempotent: it runs again (RETRY, run {row.run_time + 1})"
        subtask_log.append_row(conn, row.id, subtask_log.line("WARN", note))
        return True
    if conn.execute(_MARK_LOST, params).rowcount != 1:
        return False
    if rerun and _rerunnable(row, ignore_limit=True):
        lost += f"; not run again automatically after {MAX_AUTOMATIC_RUNS} runs"
    subtask_log.append_row(conn, row.id, subtask_log.line("ERROR", lost))
    sub = transitions.subtask_row(conn, row.id)
    cancelling = row.status == S.CANCELING.value  # the operator's cancel stands: FAILED/CANCEL
    expect = (S.RUNNING.value, S.CANCELING.value)
    transitions.finish(conn, task_id, sub, ok=False, interrupted=cancelling, expect=expect)  # type: ignore[arg-type]
    return True


def _rerunnable(row: Row[Any], *, ignore_limit: bool = False) -> bool:
    """Only a forward run (not a rollback, not a cancel in progress) of an idempotent step."""
    if row.status != S.RUNNING.value:
        return False
    if row.operation not in (Operation.EXECUTE.value, Operation.RETRY.value):
        return False
    if not ignore_limit and row.run_time >= MAX_AUTOMATIC_RUNS:
        return False
    try:
        return load_step(row.class_name).idempotent
    except StepLoadError:
        return False


def is_lost(
    subtask_id: int,
    executor: str | None,
    lease: datetime | None,
    me: str,
    now: datetime | None = None,
) -> bool:
    """Lost: no executor, or a lapsed (or never taken) lease.

    A subtask of this very executor is lost only if, besides, nothing of this process runs it (a
    claim in flight holds a fresh lease, so a lapsed one is never a claim still being handed out).
    """
    if executor and lease is not None and lease >= (now or utcnow()):
        return False
    return executor != me or not runner.running_here(subtask_id)
