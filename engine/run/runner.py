"""Runs READY subtasks in threads, within a cap, and records every outcome.

One Runner per Engine. Subtasks are claimed into its slots (``parallelism``) in write
transactions, by a *driver* thread per task (``start``) or, in a daemon, by one dispatcher across
tasks (``dispatch``); claimed runs go to worker threads, and a worker that finishes a step claims
what that made READY in the same transaction and runs it next itself. The watchdog
(``watchdog``) keeps running steps within their deadlines and leases; an ``Execution`` is one run
(``execution``); who holds a subtask is written by ``leases`` alone.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select

from engine.context import Context
from engine.db import subtask_log
from engine.db.compiled import CompiledStatement, StatementConn
from engine.db.records import SUBTASKS, TASKS
from engine.db.store import Store
from engine.db.subtask_log import SubtaskLogger
from engine.enums import Operation, SubtaskStatus, TaskStatus
from engine.errors import Cancelled
from engine.states import leases, transitions
from engine.step import StepContext

from . import execution
from .drivers import Drivers
from .execution import Execution, Phase
from .services import Services
from .slots import Slots
from .watchdog import GRACE_SECONDS, Watchdog
from .workers import Workers

log = logging.getLogger("ocptask.runner")

LEASE_SECONDS = 30.0  # how long a claim holds without renewal; renewed every quarter of it
S = SubtaskStatus

_READY = (
    select(
        *transitions.ROW_COLUMNS,
        SUBTASKS.c.name,
        SUBTASKS.c.class_name,
        SUBTASKS.c.timeout,
        SUBTASKS.c.context,
        SUBTASKS.c.lost_executor,
    )
    .where(SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status == S.READY.value)
    .limit(bindparam("n"))
)
_READY_IN_ORDER = CompiledStatement(_READY.order_by(SUBTASKS.c.id))
# A rollback undoes the most recently started first: the reverse of execution order.
_READY_NEWEST_FIRST = CompiledStatement(
    _READY.order_by(SUBTASKS.c.start_time.desc(), SUBTASKS.c.id.desc())
)
# Running tasks with READY subtasks, oldest first: what a cross-task dispatcher claims from.
_READY_TASKS = (
    select(TASKS.c.id, TASKS.c.payload)
    .where(
        TASKS.c.status == TaskStatus.RUNNING.value,
        select(SUBTASKS.c.id)
        .where(SUBTASKS.c.task_id == TASKS.c.id, SUBTASKS.c.status == S.READY.value)
        .exists(),
    )
    .order_by(TASKS.c.id)
    .limit(bindparam("n"))
)

_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()


def running_here(subtask_id: int) -> bool:
    """Whether some Runner of this process is executing the subtask right now."""
    return any(runner.slots.get(subtask_id) is not None for runner in list(_RUNNERS))


class Runner:
    def __init__(
        self,
        store: Store,
        services: Services,
        *,
        parallelism: int,
        executor: str,
        lease_seconds: float = LEASE_SECONDS,
        log_keep: int | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.log_keep = subtask_log.keep_bytes() if log_keep is None else log_keep
        """Bytes of an execution's log kept at each end (``subtask_log``)."""
        self.store = store
        self.services = services
        self.slots = Slots(parallelism)
        self.executor = executor
        self.lease_seconds = lease_seconds
        # Called (on a worker thread) when a slot came free and nothing here claimed it: a
        # cross-task dispatcher (the daemon's) wants to know at once rather than at its next poll.
        self.on_free_slot: Callable[[], None] | None = None
        self.draining = False  # set on shutdown: nothing new is claimed
        self._closed = False
        self._workers = Workers("ocptask-step")
        self.drivers = Drivers(self)
        self.watchdog = Watchdog(self)
        _RUNNERS.add(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def running(self) -> list[Execution]:
        return self.slots.running()

    def in_background(self, work: Callable[[], None]) -> None:
        self._workers.submit(work)

    def start(self, task_id: int) -> None:
        """Run the task's READY subtasks here, on a driver thread of its own."""
        self.drivers.start(task_id)

    def join(self, task_id: int, timeout: float | None) -> bool:
        return self.drivers.join(task_id, timeout)

    def dispatch(self) -> int:
        """Claim READY subtasks across all tasks into free slots, on the caller's thread.

        The daemon's way in, instead of a driver thread per task: with many tasks, drivers all
        wake and poll whenever a slot frees. Tasks another executor is claiming for right now are
        passed over (SKIP LOCKED), so daemons never wait on each other. Returns subtasks started.
        """
        started = 0
        with self.store.engine.connect() as conn:
            candidates = conn.execute(_READY_TASKS, {"n": 4 * self.slots.parallelism}).all()
        for task_id, payload in candidates:
            if self.draining or self._closed:
                break
            free = self.slots.reserve()
            if free <= 0:
                break
            started += self.claim(task_id, free, payload or {})
        return started

    def task_active(self, task_id: int) -> bool:
        """Whether any subtask of the task may still progress (READY, RUNNING, CANCELING)."""
        with self.store.engine.connect() as conn:
            return transitions.has_active(conn, task_id)

    # -- claims -----------------------------------------------------------------------------

    def claim(self, task_id: int, free: int, payload: dict[str, Any]) -> int:
        """Claim up to ``free`` (reserved) READY subtasks and start them. Returns progress made."""
        launched: list[Execution] = []
        progressed = 0
        committed = False
        try:
            with self.store.raw_write() as conn:
                operation = transitions.try_lock_task(conn, task_id)
                if operation is not None:  # else another executor moves this task: next round
                    launched, progressed = self._claim_in(conn, task_id, free, payload, operation)
                if launched:  # the task's record names who runs it now (a worker continuing
                    # a task here keeps it, so the fast path needs no such write)
                    leases.name_task_executor(conn, task_id, self.executor)
            committed = True
        finally:
            self._launch(launched if committed else [], reserved=free)
        return progressed + len(launched)

    def _claim_in(
        self, conn: StatementConn, task_id: int, free: int, payload: dict[str, Any], operation: str
    ) -> tuple[list[Execution], int]:
        """Claim inside the caller's transaction, which holds the task's lock; the caller
        launches after it commits."""
        launched: list[Execution] = []
        progressed = 0
        if self.draining:
            return launched, progressed
        rolling_back = operation == Operation.ROLLBACK
        query = _READY_NEWEST_FIRST if rolling_back else _READY_IN_ORDER
        for sub in query.run(conn, {"task_id": task_id, "n": free}):
            if self.slots.get(sub["id"]) is not None:  # handed back; its old run still ends
                continue
            header = subtask_log.header(sub["operation"])
            if sub["operation"] in (Operation.SKIP, Operation.ROLLBACK_SKIP):
                note = header + subtask_log.line("INFO", "skipped by operator")
                subtask_log.append_row(conn, sub["id"], note)
                leases.finish(conn, task_id, sub, ok=True, rolling_back=rolling_back)
                progressed += 1
                continue
            if not leases.claim(conn, sub["id"], self.executor, self.lease_seconds):
                continue  # claimed by someone else in between
            log_ = SubtaskLogger(sub["id"], keep=self.log_keep)
            log_.write(header)  # stored with the first flush of the step's lines
            ctx = StepContext(
                task_id=task_id,
                subtask_id=sub["id"],
                name=sub["name"],
                operation=sub["operation"],
                context=Context.from_json(sub["context"]),
                payload=dict(payload),
                log=log_,
                services=self.services,
                executor=self.executor,
                lost_executor=sub["lost_executor"],
            )
            launched.append(Execution.claimed(sub, ctx, rolling_back=rolling_back))
        return launched, progressed

    def _launch(
        self, launched: list[Execution], finished: Execution | None = None, reserved: int = 0
    ) -> Execution | None:
        """Hand claimed subtasks to workers; a finishing one gives its slot up in the same step.

        With ``finished`` (called from a worker), the first of ``launched`` is returned for that
        worker to run next itself: no new thread, no hand-off.
        """
        self.slots.launch(launched, finished, reserved)
        keep = launched[0] if finished is not None and launched else None
        if finished is not None and not launched and self.on_free_slot is not None:
            self.on_free_slot()
        for e in launched:
            if e is not keep:
                self._workers.submit(lambda e=e: self._work(e))
        return keep

    # -- workers ----------------------------------------------------------------------------

    def _work(self, first: Execution) -> None:
        e: Execution | None = first
        while e is not None:
            ok, interrupted = execution.run_step(e, lambda e=e: self._cleaned(e))
            e = self._complete(e, ok=ok, interrupted=interrupted)

    def _cleaned(self, e: Execution) -> None:
        with self.store.begin_write() as conn:
            leases.cleaned(conn, e.subtask_id, self.executor, e.ctx.lost_executor)

    def _complete(self, e: Execution, *, ok: bool, interrupted: bool) -> Execution | None:
        """Record the run's end (unless it was abandoned); return a follow-up to run here."""
        if not execution.finished(e):
            return None
        return self._end(e, ok=ok, interrupted=interrupted)

    def record_abandoned(self, e: Execution) -> None:
        """The end of a run the watchdog abandoned, recorded on a worker thread."""
        next_up = self._end(e, ok=False, interrupted=True)
        if next_up is not None:
            self._work(next_up)

    def _end(self, e: Execution, *, ok: bool, interrupted: bool) -> Execution | None:
        follow_ups: list[Execution] = []
        reserved = 0
        try:
            follow_ups, reserved = self._record_end_safely(e, ok=ok, interrupted=interrupted)
        finally:
            next_up = self._launch(follow_ups, finished=e, reserved=reserved)
        return next_up

    def _record_end_safely(
        self, e: Execution, *, ok: bool, interrupted: bool
    ) -> tuple[list[Execution], int]:
        """Record the outcome; if that fails, at least record FAILED so nothing hangs RUNNING.

        Returns the follow-ups it claimed and the slots it reserved for them.
        """
        try:
            return self._record_end(e, ok=ok, interrupted=interrupted)
        except Exception as exc:
            log.exception("recording the end of subtask %s failed", e.subtask_id)
            e.log.error(f"engine error while recording the outcome: {type(exc).__name__}: {exc}")
        try:
            self._record_end(e, ok=False, interrupted=interrupted, claim=False)
        except Exception:
            log.exception("subtask %s could not be marked FAILED", e.subtask_id)
        return [], 0

    def _record_end(
        self, e: Execution, *, ok: bool, interrupted: bool, claim: bool = True
    ) -> tuple[list[Execution], int]:
        """Record the outcome and, in the same transaction, claim what it made READY.

        Claiming here saves a transaction and a thread hand-off per node on a chain; the
        driver still claims everything this does not.
        """
        if (e.released or e.revoked) and interrupted:
            self._hand_back(e)
            return [], 0
        reserved = 0
        try:
            e.log.end()  # the marker of what was left out, and the tail, go with the end
            with e.flush_lock, self.store.raw_write() as conn:
                operation = transitions.lock_task(conn, e.task_id)
                subtask_log.append_row(conn, e.subtask_id, e.log.drain())
                if not self._recorded(conn, e, ok=ok, interrupted=interrupted):
                    subtask_log.append_row(conn, e.subtask_id, e.log.drain())
                    return [], 0
                if not claim or self._closed:
                    return [], 0
                reserved = self.slots.reserve_after(e.task_id)
                if reserved <= 0:
                    return [], 0
                launched, _ = self._claim_in(conn, e.task_id, reserved, e.ctx.payload, operation)
                return launched, reserved
        except BaseException:  # the claim or the commit failed: give the reservation back
            if reserved > 0:
                self.slots.unreserve(reserved)
            raise

    def _recorded(self, conn: StatementConn, e: Execution, *, ok: bool, interrupted: bool) -> bool:
        """The run's end, written only while this executor holds the row; False if it was not
        RUNNING any more (whatever happened instead is logged)."""
        common: dict[str, Any] = {
            "context": e.ctx.context,
            "rolling_back": e.rolling_back,
            "owner": self.executor,  # a run given to another executor records nothing
        }
        running, canceling = (S.RUNNING.value,), (S.CANCELING.value,)
        if leases.finish(
            conn, e.task_id, e.row, ok=ok, interrupted=interrupted, expect=running, **common
        ):
            return True
        # Not RUNNING any more: cancelled meanwhile, or someone else decided its fate.
        canceled = leases.finish(
            conn, e.task_id, e.row, ok=False, interrupted=True, expect=canceling, **common
        )
        if canceled and not interrupted:
            e.log.error("cancelled: the step finished after the cancel request")
        elif not canceled:
            e.log.error("outcome not recorded: the subtask is no longer this executor's")
        return False

    def _hand_back(self, e: Execution) -> None:
        """A run this executor gave up (it is stopping): re-run elsewhere or FAILED, as if lost."""
        e.log.end()
        with e.flush_lock, self.store.begin_write() as conn:
            transitions.lock_task(conn, e.task_id)
            # An abandoned thread may still be inside the step: no re-run while it lives.
            rerun = e.phase is not Phase.ABANDONED
            mine = leases.hand_back(conn, e.task_id, e.subtask_id, self.executor, rerun=rerun)
            if not mine:
                e.log.error("outcome not recorded: the subtask is no longer this executor's")
            subtask_log.append_row(conn, e.subtask_id, e.log.drain())

    # -- stopping ---------------------------------------------------------------------------

    def cancel_requested(self, subtask_id: int) -> None:
        """Fast path for a cancel made through this process; others arrive by polling."""
        e = self.slots.get(subtask_id)
        if e is not None:
            execution.interrupt(e, Cancelled)

    def renew_leases(self) -> None:
        running = self.running()
        if running:
            self.watchdog.renew(running)

    def release(self, executions: list[Execution]) -> None:
        """Interrupt these runs and hand them back (idempotent steps run again elsewhere)."""
        for e in executions:
            with e.lock:
                if e.interrupt is not None:  # timed out or cancelled already: that stands
                    continue
                e.released = True
            execution.interrupt(e, Cancelled)

    def drain(self, grace: float) -> list[Execution]:
        """Stop claiming; wait up to ``grace`` seconds for running steps; return the rest."""
        self.draining = True
        return self.slots.drain(grace)

    def settle_released(self) -> None:
        """After ``release``: the interrupt grace, then the abandon and its record."""
        self.slots.drain(2 * GRACE_SECONDS + 1.0)

    def close(self) -> None:
        self._closed = True
        self.watchdog.close()
        with self.slots.cv:
            self.slots.changed()
