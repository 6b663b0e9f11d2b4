"""Who holds a running subtask, and until when: every write of the holding columns.

A subtask is claimed (READY → RUNNING, its ``executor`` and ``acquired_until`` set) by the
executor that will run it, which renews the lease every quarter of its length while the step
runs. ``finish`` records its end, releasing the lease in the same write, guarded by the owner: a
run whose row was given to another records nothing.

Once a lease lapses (a missing lease counts as lapsed: ``NULL < now`` is never true in SQL, which
is how Airflow's zombies survived) the run is lost. Nothing else is trusted: executor ids
(``<ip>:<pid>``) of different machines can look alike (``127.0.1.1``), so a missing
``/proc/<pid>`` proves nothing. An executor fences itself before that point: it stops its own
steps once it could not renew a lease for most of its length (see the watchdog), so a lapsed
lease means the run has stopped.

A lost run of a step that declares itself idempotent goes back to READY as a RETRY (``runTime``
+ 1), at most ``MAX_AUTOMATIC_RUNS`` runs in all, so that a step that kills every executor does
not crash-loop the daemons; any other is FAILED with "executor <id> lost while running" so that
the operator decides: retry, skip or roll back. Either way the subtask remembers the lost
executor, and its next run (of any kind) first calls the step's ``clean`` to stop what the lost
run left going; ``cleaned`` forgets it once that is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, or_, select, update

from engine.clock import as_utc, utcnow
from engine.context import Context
from engine.db import revisions, subtask_log
from engine.db.compiled import CompiledStatement, StatementConn, in_list, list_params
from engine.db.records import SUBTASKS, TASKS
from engine.db.store import Store
from engine.enums import Operation, SubtaskStatus
from engine.errors import StepLoadError
from engine.step import load_step

from . import transitions

S = SubtaskStatus
MAX_AUTOMATIC_RUNS = 3
HELD = (S.RUNNING.value, S.CANCELING.value)
RunningHere = Callable[[int], bool]
"""Whether this process is executing the subtask right now (the runner knows)."""

# Statements are built once: building a SQLAlchemy statement costs several times executing it.
_CLAIMED = {
    "status": S.RUNNING.value,
    "executor": bindparam("executor"),
    "acquired_until": bindparam("lease_until"),
    "start_time": func.coalesce(SUBTASKS.c.start_time, bindparam("now")),
    "finish_time": None,
    **revisions.bumped(SUBTASKS),
}
_CLAIM = CompiledStatement(
    update(SUBTASKS)
    .where(SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status == S.READY.value)
    .values(_CLAIMED)
)
_FEW = 32  # ids per batched claim; each count up to it has its statement compiled once


@lru_cache(maxsize=_FEW)
def _claim_of(count: int) -> CompiledStatement:
    return CompiledStatement(
        update(SUBTASKS)
        .where(in_list(SUBTASKS.c.id, "id", count), SUBTASKS.c.status == S.READY.value)
        .values(_CLAIMED)
        .returning(SUBTASKS.c.id)
    )


_TASK_EXECUTOR = CompiledStatement(
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_id"), TASKS.c.executor != bindparam("executor"))
    .values(executor=bindparam("executor"))
)
_LOCK_IN_ORDER = (
    select(SUBTASKS.c.id)
    .where(SUBTASKS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(SUBTASKS.c.id)
    .with_for_update()
)
_RENEW = (
    update(SUBTASKS)
    .where(
        SUBTASKS.c.id.in_(bindparam("ids", expanding=True)),
        SUBTASKS.c.executor == bindparam("owner"),
        SUBTASKS.c.status.in_(HELD),
    )
    .values(acquired_until=bindparam("lease_until"))
    .returning(SUBTASKS.c.id)
)
_CLEANED = (  # only while this run still holds the row: a mark set since stays for the next run
    update(SUBTASKS)
    .where(
        SUBTASKS.c.id == bindparam("sid"),
        SUBTASKS.c.executor == bindparam("owner"),
        SUBTASKS.c.status.in_(HELD),
        SUBTASKS.c.lost_executor == bindparam("seen"),
    )
    .values(lost_executor=None)
)
_HELD_COLUMNS = (
    SUBTASKS.c.id,
    SUBTASKS.c.status,
    SUBTASKS.c.operation,
    SUBTASKS.c.class_name,
    SUBTASKS.c.executor,
    SUBTASKS.c.acquired_until,
    SUBTASKS.c.run_time,
)
_HELD_OF_TASK = (
    select(*_HELD_COLUMNS)
    .where(SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status.in_(HELD))
    .order_by(SUBTASKS.c.id)
)
_HELD_ONE = select(*_HELD_COLUMNS).where(
    SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status.in_(HELD)
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
    .where(*_STILL_HELD_AS_SEEN, SUBTASKS.c.status.in_(HELD))
    .values(lost_executor=bindparam("lost"))
)
# Tasks with a RUNNING subtask whose lease lapsed, oldest first: what a sweep looks at.
_LAPSED_TASKS = (
    select(SUBTASKS.c.task_id)
    .where(
        SUBTASKS.c.status.in_(HELD),
        or_(SUBTASKS.c.acquired_until.is_(None), SUBTASKS.c.acquired_until < bindparam("now")),
    )
    .group_by(SUBTASKS.c.task_id)
    .order_by(SUBTASKS.c.task_id)
    .limit(200)
)


# -- the holder's verbs -------------------------------------------------------------------------


def claim(conn: StatementConn, subtask_id: int, executor: str, lease_seconds: float) -> bool:
    """READY → RUNNING for ``executor``, with a fresh lease. False if it was not READY any
    more (claimed by someone else in between): the guard holds without the task lock too."""
    now = utcnow()
    params = {
        "sid": subtask_id,
        "executor": executor,
        "now": now,
        "lease_until": now + timedelta(seconds=lease_seconds),
    }
    return _CLAIM.run(conn, params).rowcount == 1


def claim_many(
    conn: StatementConn, subtask_ids: Sequence[int], executor: str, lease_seconds: float
) -> set[int]:
    """``claim`` for several subtasks of one task in one statement (a batch of ``_FEW`` at
    most per statement); returns those claimed (the others were not READY any more)."""
    now = utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    params = {"executor": executor, "now": now, "lease_until": lease_until}
    claimed: set[int] = set()
    for start in range(0, len(subtask_ids), _FEW):
        part = list(subtask_ids[start : start + _FEW])
        rows = _claim_of(len(part)).run(conn, {**params, **list_params("id", part)})
        claimed.update(row["id"] for row in rows)
    return claimed


def name_task_executor(conn: StatementConn, task_id: int, executor: str) -> None:
    """The task's record names who runs it now."""
    _TASK_EXECUTOR.run(conn, {"task_id": task_id, "executor": executor})


def renew(
    conn: Connection, subtask_ids: Iterable[int], owner: str, lease_seconds: float
) -> set[int]:
    """Extend the leases ``owner`` still holds; returns those it renewed. Rows are locked in id
    order first: the order a sweep locks them in, so the two never deadlock."""
    params = {
        "ids": list(subtask_ids),
        "owner": owner,
        "lease_until": utcnow() + timedelta(seconds=lease_seconds),
    }
    conn.execute(_LOCK_IN_ORDER, params)
    return set(conn.execute(_RENEW, params).scalars())


def cleaned(conn: Connection, subtask_id: int, owner: str, seen: str | None) -> None:
    """The lost run ``seen`` has been cleaned up after: later runs need not clean again."""
    conn.execute(_CLEANED, {"sid": subtask_id, "owner": owner, "seen": seen})


def finish(
    conn: StatementConn,
    task_id: int,
    sub: Row[Any] | Mapping[str, Any],
    *,
    ok: bool,
    interrupted: bool = False,
    context: Context | None = None,
    rolling_back: bool | None = None,
    expect: Iterable[str] | None = None,
    owner: str | None = None,
    settles: bool = True,
) -> bool:
    """Record the end of one execution (or skip), release its lease, and advance whatever it
    unblocks (``transitions.advance``, which ``settles`` the task unless told not to); one
    write for the subtask.

    ``sub`` needs id, operation, upstreams, downstreams. With ``expect``, nothing happens (and
    False is returned) unless the subtask's status is one of those; with ``owner``, unless that
    executor still holds it (a run whose lease lapsed and was given to another records nothing).
    """
    if rolling_back is None:
        rolling_back = transitions.task_operation(conn, task_id) == Operation.ROLLBACK
    ended = transitions.end_values(sub, ok=ok, interrupted=interrupted, context=context)
    values = {**ended, "acquired_until": None}
    if not transitions.set_subtask(conn, sub["id"], expect=expect, owner=owner, **values):
        return False
    transitions.advance(conn, task_id, sub, ended, rolling_back=rolling_back, settles=settles)
    return True


def hand_back(conn: Connection, task_id: int, subtask_id: int, owner: str, *, rerun: bool) -> bool:
    """A run its executor gives up (it is stopping): re-run elsewhere or FAILED, as if lost.
    False (nothing done) if the row is no longer ``owner``'s. The caller holds the task lock."""
    row = conn.execute(_HELD_ONE, {"sid": subtask_id}).first()
    if row is None or row.executor != owner:
        return False
    give_up(conn, task_id, row, "stopped before the step finished", rerun=rerun)
    return True


# -- judging lost runs --------------------------------------------------------------------------


def lapsed_tasks(conn: Connection) -> list[int]:
    """Tasks with a held subtask whose lease lapsed (at most 200, oldest first)."""
    return list(conn.execute(_LAPSED_TASKS, {"now": utcnow()}).scalars())


def recover_lost(
    store: Store, task_id: int, me: str, running_here: RunningHere, *, wait: bool = True
) -> None:
    """Re-run or fail the task's subtasks whose executor is lost; ``me`` is the caller's id.

    With ``wait=False`` a task whose lock another executor holds is passed over (a sweep will
    come back to it).
    """
    with store.begin_write() as conn:
        if wait:
            transitions.lock_task(conn, task_id)
        elif transitions.try_lock_task(conn, task_id) is None:
            return
        now = utcnow()
        for row in conn.execute(_HELD_OF_TASK, {"task_id": task_id}).all():
            lease = as_utc(row.acquired_until)
            if is_lost(row.id, row.executor, lease, me, running_here, now):
                give_up(conn, task_id, row, "lost while running", lapsed_by=now)


def is_lost(
    subtask_id: int,
    executor: str | None,
    lease: datetime | None,
    me: str,
    running_here: RunningHere,
    now: datetime | None = None,
) -> bool:
    """Lost: no executor, or a lapsed (or never taken) lease.

    A subtask of this very executor is lost only if, besides, nothing of this process runs it (a
    claim in flight holds a fresh lease, so a lapsed one is never a claim still being handed out).
    """
    if executor and lease is not None and lease >= (now or utcnow()):
        return False
    return executor != me or not running_here(subtask_id)


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

    ``row`` is a held row as this module reads it; the caller holds the task lock. ``lapsed_by``:
    act only if the lease still ends before it (None: whatever the lease, for an executor handing
    back its own run). ``rerun=False``: FAILED even if idempotent. Returns False if the row changed
    since it was read (nothing done).
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
    finish(conn, task_id, sub, ok=False, interrupted=cancelling, expect=HELD)  # type: ignore[arg-type]
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
