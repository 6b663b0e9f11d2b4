"""Runs READY subtasks in threads, enforces timeouts and cancels, records every outcome.

One Runner per Engine. A *driver* thread per task claims READY subtasks (atomically, in a write
transaction) while slots are free and hands them to worker threads; a *watchdog* thread enforces
deadlines, picks up cancel requests from the database (so a cancel from any process works), and
flushes step logs while steps run.

Interrupting a step: the watchdog sets the step's stop event and throws a BaseException-derived
Interrupt into its thread. A step that does not stop within ``GRACE_SECONDS`` (blocked in a C call)
is recorded FAILED/CANCEL anyway and its thread abandoned; its late result is discarded.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from . import interrupts, recovery, subtask_log, transitions
from .clock import utcnow
from .context import Context
from .enums import Operation, SubtaskStatus, TaskStatus
from .errors import Cancelled, Interrupt, OcpTaskError, RunnerError, TimeLimitExceeded
from .step import StepContext, load_step
from .store import Store
from .subtask_log import SubtaskLogger
from .workers import Workers

log = logging.getLogger("ocptask.runner")

GRACE_SECONDS = 1.0
WATCH_INTERVAL = 0.05
CANCEL_POLL_INTERVAL = 0.2
LOG_FLUSH_INTERVAL = 0.5
LEASE_SECONDS = 30.0  # how long a claim holds without renewal; renewed every quarter of it
# A step whose lease went unrenewed until this long before it lapses is stopped by its own
# executor: enough for the interrupt grace and a remote kill to finish before anyone else may
# judge the run lost.
FENCE_MARGIN_SECONDS = 3.0
S = SubtaskStatus
TASKS = transitions.TASKS
SUBTASKS = transitions.SUBTASKS

_CANCELING = select(SUBTASKS.c.id).where(
    SUBTASKS.c.id.in_(bindparam("ids", expanding=True)), SUBTASKS.c.status == S.CANCELING.value
)
_PAYLOAD = select(TASKS.c.payload).where(TASKS.c.id == bindparam("task_id"))
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
_READY_IN_ORDER = _READY.order_by(SUBTASKS.c.id)
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
# A rollback undoes the most recently started first: the reverse of execution order.
_READY_NEWEST_FIRST = _READY.order_by(SUBTASKS.c.start_time.desc(), SUBTASKS.c.id.desc())
_MARK_RUNNING = (
    update(SUBTASKS)
    .where(SUBTASKS.c.id == bindparam("sid"), SUBTASKS.c.status == S.READY.value)
    .values(
        status=S.RUNNING.value,
        executor=bindparam("executor"),
        acquired_until=bindparam("lease_until"),
        start_time=func.coalesce(SUBTASKS.c.start_time, bindparam("now")),
        finish_time=None,
    )
)
_RENEW_LEASES = (
    update(SUBTASKS)
    .where(
        SUBTASKS.c.id.in_(bindparam("ids", expanding=True)),
        SUBTASKS.c.executor == bindparam("owner"),
        SUBTASKS.c.status.in_([S.RUNNING.value, S.CANCELING.value]),
    )
    .values(acquired_until=bindparam("lease_until"))
    .returning(SUBTASKS.c.id)
)
_LOCK_IN_ORDER = (
    select(SUBTASKS.c.id)
    .where(SUBTASKS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(SUBTASKS.c.id)
    .with_for_update()
)
_TASK_EXECUTOR = (
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_id"), TASKS.c.executor != bindparam("executor"))
    .values(executor=bindparam("executor"))
)
_CLEANED = (  # only while this run still holds the row: a mark set since stays for the next run
    update(SUBTASKS)
    .where(
        SUBTASKS.c.id == bindparam("sid"),
        SUBTASKS.c.executor == bindparam("owner"),
        SUBTASKS.c.status.in_([S.RUNNING.value, S.CANCELING.value]),
        SUBTASKS.c.lost_executor == bindparam("seen"),
    )
    .values(lost_executor=None)
)


class Phase(Enum):
    QUEUED = "queued"
    IN_STEP = "in_step"
    LEFT = "left"
    FINISHED = "finished"
    ABANDONED = "abandoned"


@dataclass(eq=False)
class Execution:
    task_id: int
    subtask_id: int
    operation: str
    class_name: str
    timeout: int
    ctx: StepContext
    deadline: float | None
    row: dict[str, Any]  # id, operation, upstreams, downstreams: fixed while it runs
    rolling_back: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held from draining the log buffer until its text is committed, so chunks written by the
    # watchdog and by the worker can never be stored out of order.
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    phase: Phase = Phase.QUEUED
    thread_ident: int | None = None
    interrupt: type[Interrupt] | None = None
    interrupted_at: float = 0.0
    posted: bool = False
    delivered: bool = False
    released: bool = False  # interrupted because this executor stops: handed back, not failed
    revoked: bool = False  # stopped for its lease: another executor may own the subtask now
    renewed_at: float = field(default_factory=time.monotonic)  # last time its lease was renewed

    @property
    def log(self) -> SubtaskLogger:
        return self.ctx.log


_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()


def running_here(subtask_id: int) -> bool:
    """Whether some Runner of this process is executing the subtask right now."""
    return any(subtask_id in runner._active for runner in list(_RUNNERS))


class Runner:
    def __init__(
        self,
        store: Store,
        *,
        parallelism: int,
        executor: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.store = store
        self.parallelism = parallelism
        self.executor = executor
        self.lease_seconds = lease_seconds
        # Called (on a worker thread) when a slot came free and nothing here claimed it: a
        # cross-task dispatcher (the daemon's) wants to know at once rather than at its next poll.
        self.on_free_slot: Callable[[], None] | None = None
        # The watchdog renews leases every quarter of their length, unless someone else schedules
        # ``renew_leases`` (the daemon: an APScheduler job).
        self.renews_leases = True
        self._cv = threading.Condition()
        self._generation = 0
        self._active: dict[int, Execution] = {}
        self._drivers: dict[int, threading.Thread] = {}
        self._failures: dict[int, Exception] = {}
        self._rerun: set[int] = set()
        self._starved: set[int] = set()  # tasks whose drivers wait for a free slot
        self._reserved = 0  # slots promised to claims in progress
        self.draining = False  # set on shutdown: nothing new is claimed
        self._flushing = False
        self._polling = False
        self._workers = Workers("ocptask-step")
        self._closed = False
        self._watchdog = threading.Thread(target=self._watch, name="ocptask-watchdog", daemon=True)
        self._watchdog.start()
        _RUNNERS.add(self)

    # -- drivers ----------------------------------------------------------------------------

    def start(self, task_id: int) -> None:
        with self._cv:
            driver = self._drivers.get(task_id)
            if driver is not None and driver.is_alive():
                self._rerun.add(task_id)  # it may be deciding to stop: make it look again
                return
            driver = threading.Thread(
                target=self._drive, args=(task_id,), name=f"ocptask-task-{task_id}", daemon=True
            )
            self._drivers[task_id] = driver
        driver.start()

    def join(self, task_id: int, timeout: float | None) -> bool:
        """Wait for this runner's driver of the task; True when it has stopped (or never ran).

        Raises RunnerError if the driver died of an unexpected error.
        """
        with self._cv:
            driver = self._drivers.get(task_id)
        if driver is not None:
            driver.join(timeout)
            if driver.is_alive():
                return False
        failure = self._failures.pop(task_id, None)
        if failure is not None:
            raise RunnerError(
                f"the runner of task {task_id} stopped: {type(failure).__name__}: {failure}"
            ) from failure
        return True

    def _drive(self, task_id: int) -> None:
        try:
            with self.store.engine.connect() as conn:
                payload = conn.execute(_PAYLOAD, {"task_id": task_id}).scalar() or {}
            while not self._closed:
                with self._cv:
                    seen = self._generation
                    free = self._free_slots()
                    if free > 0:
                        self._starved.discard(task_id)
                        self._reserved += free  # held until _launch: no one else can take them
                    else:
                        self._starved.add(task_id)
                progressed = self._claim(task_id, free, payload) if free > 0 else 0
                if progressed and progressed >= free:
                    continue  # slots were the limit: more may be READY already
                with self._cv:
                    mine = any(e.task_id == task_id for e in self._active.values())
                if not progressed and not mine and not self._task_active(task_id):
                    with self._cv:
                        if task_id in self._rerun:
                            self._rerun.discard(task_id)
                            continue
                        del self._drivers[task_id]  # from here on, start() makes a new driver
                    return
                with self._cv:
                    if self._generation == seen:
                        self._cv.wait(timeout=CANCEL_POLL_INTERVAL)
        except Exception as exc:  # a bug or a lost database: never a silent dead driver
            log.exception("driver of task %s stopped", task_id)
            self._failures[task_id] = exc
        finally:
            with self._cv:
                self._starved.discard(task_id)
                if self._drivers.get(task_id) is threading.current_thread():
                    del self._drivers[task_id]
                self._generation += 1
                self._cv.notify_all()

    @property
    def fence_seconds(self) -> float:
        """Unrenewed this long, a step is stopped by this executor (see FENCE_MARGIN_SECONDS)."""
        return max(self.lease_seconds - FENCE_MARGIN_SECONDS, self.lease_seconds / 2)

    def dispatch(self) -> int:
        """Claim READY subtasks across all tasks into free slots, on the caller's thread.

        The daemon's way in, instead of a driver thread per task: with many tasks, drivers all
        wake and poll whenever a slot frees. Tasks another executor is claiming for right now are
        passed over (SKIP LOCKED), so daemons never wait on each other. Returns subtasks started.
        """
        started = 0
        with self.store.engine.connect() as conn:
            candidates = conn.execute(_READY_TASKS, {"n": 4 * self.parallelism}).all()
        for task_id, payload in candidates:
            with self._cv:
                free = self._free_slots()
                if free <= 0 or self.draining or self._closed:
                    break
                self._reserved += free
            started += self._claim(task_id, free, payload or {})
        return started

    def _task_active(self, task_id: int) -> bool:
        with self.store.engine.connect() as conn:
            return transitions.has_active(conn, task_id)

    def _free_slots(self) -> int:
        """Slots neither running nor reserved by a claim in progress (caller holds ``_cv``)."""
        return self.parallelism - len(self._active) - self._reserved

    def _claim(self, task_id: int, free: int, payload: dict[str, Any]) -> int:
        """Claim up to ``free`` (reserved) READY subtasks and start them. Returns progress made."""
        launched: list[Execution] = []
        progressed = 0
        committed = False
        try:
            with self.store.connect() as conn:
                operation = transitions.try_lock_task(conn, task_id)
                if operation is not None:  # else another executor moves this task: next round
                    launched, progressed = self._claim_in(conn, task_id, free, payload, operation)
                if launched:  # the task's record names who runs it now (a worker continuing
                    # a task here keeps it, so the fast path needs no such write)
                    conn.execute(_TASK_EXECUTOR, {"task_id": task_id, "executor": self.executor})
            committed = True
        finally:
            self._launch(launched if committed else [], reserved=free)
        return progressed + len(launched)

    def _claim_in(
        self, conn: Connection, task_id: int, free: int, payload: dict[str, Any], operation: str
    ) -> tuple[list[Execution], int]:
        """Claim inside the caller's transaction, which holds the task's lock; the caller
        launches after it commits."""
        launched: list[Execution] = []
        progressed = 0
        if self.draining:
            return launched, progressed
        rolling_back = operation == Operation.ROLLBACK
        query = _READY_NEWEST_FIRST if rolling_back else _READY_IN_ORDER
        now = utcnow()
        for row in conn.execute(query, {"task_id": task_id, "n": free}).all():
            sub = dict(row._mapping)
            if sub["id"] in self._active:  # handed back while its old run here still ends
                continue
            header = subtask_log.header(sub["operation"], now)
            if sub["operation"] in (Operation.SKIP, Operation.ROLLBACK_SKIP):
                note = header + subtask_log.line("INFO", "skipped by operator")
                subtask_log.append_row(conn, sub["id"], note)
                transitions.finish(conn, task_id, sub, ok=True, rolling_back=rolling_back)
                progressed += 1
                continue
            params = {
                "sid": sub["id"],
                "executor": self.executor,
                "now": now,
                "lease_until": now + timedelta(seconds=self.lease_seconds),
            }
            if conn.execute(_MARK_RUNNING, params).rowcount != 1:
                continue  # claimed by someone else in between
            log_ = SubtaskLogger(sub["id"])
            log_.write(header)  # stored with the first flush of the step's lines
            ctx = StepContext(
                task_id=task_id,
                subtask_id=sub["id"],
                name=sub["name"],
                operation=sub["operation"],
                context=Context.from_json(sub["context"]),
                payload=dict(payload),
                log=log_,
                store=self.store,
                executor=self.executor,
                lost_executor=sub["lost_executor"],
            )
            timeout = sub["timeout"]
            launched.append(
                Execution(
                    task_id=task_id,
                    subtask_id=sub["id"],
                    operation=sub["operation"],
                    class_name=sub["class_name"],
                    timeout=timeout,
                    ctx=ctx,
                    deadline=time.monotonic() + timeout if timeout > 0 else None,
                    row=sub,
                    rolling_back=rolling_back,
                )
            )
        return launched, progressed

    def _launch(
        self, launched: list[Execution], finished: Execution | None = None, reserved: int = 0
    ) -> Execution | None:
        """Hand claimed subtasks to workers; a finishing one gives its slot up in the same step.

        With ``finished`` (called from a worker), the first of ``launched`` is returned for that
        worker to run next itself: no new thread, no hand-off.
        """
        with self._cv:
            self._reserved -= reserved
            if finished is not None:
                self._active.pop(finished.subtask_id, None)
            for execution in launched:
                self._active[execution.subtask_id] = execution
            if (finished is None and launched) or (finished is not None and not launched):
                # A slot came free (or a task may be done): drivers should look. A worker that
                # refilled its own slot leaves them asleep, else they would contend for the
                # write lock on every node for nothing.
                self._generation += 1
                self._cv.notify_all()
        keep = launched[0] if finished is not None and launched else None
        if finished is not None and not launched and self.on_free_slot is not None:
            self.on_free_slot()
        for execution in launched:
            if execution is not keep:
                self._workers.submit(lambda e=execution: self._work(e))
        return keep

    # -- workers ----------------------------------------------------------------------------

    def _work(self, first: Execution) -> None:
        e: Execution | None = first
        while e is not None:
            e = self._run(e)

    def _run(self, e: Execution) -> Execution | None:
        """Run one step to its recorded end; returns a follow-up for this thread to run."""
        e.thread_ident = threading.get_ident()
        ok = False
        failure: BaseException | None = None
        late: type[Interrupt] | None = None
        interrupted: type[Interrupt] | None = None
        try:
            try:
                # Inside both tries: an interrupt may land the moment IN_STEP is set.
                with e.lock:
                    if e.interrupt is None and e.phase is Phase.QUEUED:
                        e.phase = Phase.IN_STEP
                    else:  # cancelled (or abandoned) before a worker picked it up
                        interrupted = e.interrupt or Interrupt
                if interrupted is None:
                    step = load_step(e.class_name)()
                    if e.ctx.lost_executor is not None:  # the last run's executor was lost
                        e.log.info(f"cleaning up after the lost run on {e.ctx.lost_executor}")
                        step.clean(e.ctx)
                        self._cleaned(e)  # a later run need not clean again
                    method = {
                        Operation.EXECUTE.value: step.execute,
                        Operation.RETRY.value: step.retry,
                        Operation.ROLLBACK.value: step.rollback,
                    }[e.operation]
                    method(e.ctx)
                    ok = True
            except Interrupt as exc:
                e.delivered = True
                interrupted = type(exc)
            except BaseException as exc:  # a failing step, whatever it raised
                failure = exc
            finally:
                late = self._leave_step(e)
        except Interrupt as exc:  # landed in the handlers above, before the window closed
            e.delivered = True
            interrupted = type(exc)
            late = self._leave_step(e) or late
        # From here on no interrupt can land in this thread.
        interrupted = late or interrupted
        if failure is not None and interrupted is None:
            e.log.exception(failure)
        if interrupted is not None:
            ok = False
            e.log.error(f"{interrupted.reason}: the step was interrupted; its cleanup has run")
        return self._complete(e, ok=ok, interrupted=interrupted is not None)

    def _leave_step(self, e: Execution) -> type[Interrupt] | None:
        """Close the window in which the watchdog may throw; take back a throw not yet landed."""
        late: type[Interrupt] | None = None
        while True:
            try:
                with e.lock:
                    if e.phase is Phase.IN_STEP:
                        e.phase = Phase.LEFT
                    if e.posted and not e.delivered and e.thread_ident is not None:
                        interrupts.withdraw(e.thread_ident)
                        late = e.interrupt
                    e.posted = False
                return late
            except Interrupt as exc:  # landed just after the step returned
                e.delivered = True
                late = type(exc)

    def _complete(self, e: Execution, *, ok: bool, interrupted: bool) -> Execution | None:
        with e.lock:
            if e.phase is Phase.ABANDONED:
                log.info("abandoned subtask %s finished late; result discarded", e.subtask_id)
                return None
            e.phase = Phase.FINISHED
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
            with e.flush_lock, self.store.connect() as conn:
                operation = transitions.lock_task(conn, e.task_id)
                subtask_log.append_row(conn, e.subtask_id, e.log.drain())
                common = {
                    "context": e.ctx.context,
                    "rolling_back": e.rolling_back,
                    "owner": self.executor,  # a run given to another executor records nothing
                }
                running = (S.RUNNING.value,)
                done = transitions.finish(
                    conn, e.task_id, e.row, ok=ok, interrupted=interrupted, expect=running, **common
                )
                if not done:
                    # Not RUNNING any more: cancelled meanwhile, or someone else decided its fate.
                    canceled = transitions.finish(
                        conn,
                        e.task_id,
                        e.row,
                        ok=False,
                        interrupted=True,
                        expect=(S.CANCELING.value,),
                        **common,
                    )
                    if canceled and not interrupted:
                        e.log.error("cancelled: the step finished after the cancel request")
                    elif not canceled:
                        e.log.error(
                            "outcome not recorded: the subtask is no longer this executor's"
                        )
                    subtask_log.append_row(conn, e.subtask_id, e.log.drain())
                    return [], 0
                if not claim or self._closed:
                    return [], 0
                with self._cv:
                    if self._starved - {e.task_id}:
                        return [], 0  # another task waits for a slot: let its driver have it
                    free = self._free_slots() + 1  # + the slot e gives up
                    if free <= 0:
                        return [], 0
                    self._reserved += free
                    reserved = free
                launched, _ = self._claim_in(conn, e.task_id, free, e.ctx.payload, operation)
                return launched, free
        except BaseException:  # the claim or the commit failed: give the reservation back
            if reserved:
                with self._cv:
                    self._reserved -= reserved
            raise

    def _cleaned(self, e: Execution) -> None:
        with self.store.connect() as conn:
            params = {"sid": e.subtask_id, "owner": self.executor, "seen": e.ctx.lost_executor}
            conn.execute(_CLEANED, params)

    def _hand_back(self, e: Execution) -> None:
        """A run this executor gave up (it is stopping): re-run elsewhere or FAILED, as if lost."""
        with e.flush_lock, self.store.connect() as conn:
            transitions.lock_task(conn, e.task_id)
            row = conn.execute(recovery.HELD_ONE, {"sid": e.subtask_id}).first()
            mine = row is not None and row.executor == self.executor
            if not mine:
                e.log.error("outcome not recorded: the subtask is no longer this executor's")
            subtask_log.append_row(conn, e.subtask_id, e.log.drain())
            if mine:
                # An abandoned thread may still be inside the step: no re-run while it lives.
                rerun = e.phase is not Phase.ABANDONED
                why = "stopped before the step finished"
                recovery.give_up(conn, e.task_id, row, why, rerun=rerun)  # type: ignore[arg-type]

    def release(self, executions: list[Execution]) -> None:
        """Interrupt these runs and hand them back (idempotent steps run again elsewhere)."""
        for e in executions:
            with e.lock:
                if e.interrupt is not None:  # timed out or cancelled already: that stands
                    continue
                e.released = True
            self._interrupt(e, Cancelled)

    # -- watchdog ---------------------------------------------------------------------------

    def cancel_requested(self, subtask_id: int) -> None:
        """Fast path for a cancel made through this process; others arrive by polling."""
        with self._cv:
            e = self._active.get(subtask_id)
        if e is not None:
            self._interrupt(e, Cancelled)

    def _interrupt(self, e: Execution, reason: type[Interrupt]) -> None:
        with e.lock:
            if e.interrupt is not None or e.phase not in (Phase.QUEUED, Phase.IN_STEP):
                return
            e.interrupt = reason
            e.interrupted_at = time.monotonic()
            if reason is TimeLimitExceeded:
                e.log.error(f"timed out after {e.timeout} s: interrupting the step")
            else:
                e.log.error("cancel requested: interrupting the step")
            e.ctx.request_stop(reason)
            if e.phase is Phase.IN_STEP and e.thread_ident is not None:
                e.posted = interrupts.throw(e.thread_ident, reason)

    def _abandon(self, e: Execution) -> None:
        """Give up on a step that ignores its interrupt. The watchdog only flips the phase; the
        database work runs on a worker thread, so the watchdog never waits on the database."""
        with e.lock:
            if e.phase not in (Phase.QUEUED, Phase.IN_STEP):
                return
            e.phase = Phase.ABANDONED
        e.log.error(
            f"the step did not stop within {GRACE_SECONDS:g} s of its interrupt (blocked in a "
            "system call); recorded as cancelled, its thread is left to finish"
        )
        self._workers.submit(lambda: self._record_abandoned(e))

    def _record_abandoned(self, e: Execution) -> None:
        follow_ups: list[Execution] = []
        reserved = 0
        try:
            follow_ups, reserved = self._record_end_safely(e, ok=False, interrupted=True)
        finally:
            next_up = self._launch(follow_ups, finished=e, reserved=reserved)
        if next_up is not None:
            self._work(next_up)

    def _watch(self) -> None:
        last_cancel_poll = last_flush = 0.0
        last_renew = time.monotonic()
        while not self._closed:
            time.sleep(WATCH_INTERVAL)
            with self._cv:
                running = list(self._active.values())
            if not running:
                continue
            now = time.monotonic()
            try:
                for e in running:
                    if e.interrupt is None and e.deadline is not None and now >= e.deadline:
                        self._interrupt(e, TimeLimitExceeded)
                    elif e.interrupt is not None and now >= e.interrupted_at + GRACE_SECONDS:
                        self._abandon(e)
                    # Fence: stopped here before anyone else may judge its lease lapsed.
                    if now - e.renewed_at > self.fence_seconds:
                        self._revoke(e, "its lease could not be renewed in time")
                # The watchdog itself never waits on the database (a hung connection must not
                # keep it from timeouts and fencing): polls, renewals and flushes run on workers.
                if now - last_cancel_poll >= CANCEL_POLL_INTERVAL and not self._polling:
                    last_cancel_poll = now
                    self._polling = True
                    self._workers.submit(lambda r=running: self._poll_cancels(r))
                if self.renews_leases and now - last_renew >= self.lease_seconds / 4:
                    last_renew = now
                    self._workers.submit(lambda r=running: self._renew_leases(r))
                if now - last_flush >= LOG_FLUSH_INTERVAL and not self._flushing:
                    last_flush = now
                    self._flushing = True  # one flush at a time, on a worker thread
                    self._workers.submit(lambda r=running: self._flush_logs(r))
            except (OcpTaskError, OSError, RuntimeError) as exc:  # database hiccup: next round
                log.warning("watchdog round failed: %s", exc)
            except Exception:  # never let the watchdog die; it is what stops runaway steps
                log.exception("watchdog round failed")

    def _poll_cancels(self, running: list[Execution]) -> None:
        try:
            ids = [e.subtask_id for e in running if e.interrupt is None]
            if not ids:
                return
            with self.store.engine.connect() as conn:
                cancelled = set(conn.execute(_CANCELING, {"ids": ids}).scalars())
            for e in running:
                if e.subtask_id in cancelled:
                    self._interrupt(e, Cancelled)
        except Exception as exc:  # the next poll tries again
            log.warning("cancel poll failed: %s", exc)
        finally:
            self._polling = False

    def renew_leases(self) -> None:
        with self._cv:
            running = list(self._active.values())
        if running:
            self._renew_leases(running)

    def _renew_leases(self, running: list[Execution]) -> None:
        """Renew the leases of running steps; a step whose row this executor no longer holds
        (judged lost, handed to another) is stopped at once and records nothing."""
        started = time.monotonic()
        params = {
            "ids": [e.subtask_id for e in running],
            "owner": self.executor,
            "lease_until": utcnow() + timedelta(seconds=self.lease_seconds),
        }
        try:
            with self.store.connect() as conn:
                conn.execute(_LOCK_IN_ORDER, params)  # the order recovery locks them in
                renewed = set(conn.execute(_RENEW_LEASES, params).scalars())
        except Exception as exc:  # the next round tries again; the watchdog fences if it lasts
            log.warning("lease renewal failed: %s", exc)
            return
        for e in running:
            if e.subtask_id in renewed:
                e.renewed_at = started
            elif e.phase in (Phase.QUEUED, Phase.IN_STEP):
                self._revoke(e, "its row was taken from this executor (judged lost)")

    def _revoke(self, e: Execution, why: str) -> None:
        """Stop a run this executor may no longer hold. Its end is recorded (FAILED/CANCEL) only
        if the row is still this executor's: every finish is guarded by the owner."""
        if e.revoked:
            return
        e.revoked = True
        e.log.error(f"stopping the step: {why}")
        self._interrupt(e, Cancelled)

    def _flush_logs(self, running: list[Execution]) -> None:
        try:
            for e in running:
                if not e.log.pending:
                    continue
                with e.flush_lock, self.store.connect() as conn:
                    subtask_log.append_row(conn, e.subtask_id, e.log.drain())
        except Exception as exc:  # lines stay buffered: the final record writes them
            log.warning("log flush failed: %s", exc)
        finally:
            self._flushing = False

    def drain(self, grace: float) -> list[Execution]:
        """Stop claiming; wait up to ``grace`` seconds for running steps; return the rest."""
        self.draining = True
        deadline = time.monotonic() + grace
        with self._cv:
            while self._active and time.monotonic() < deadline:
                self._cv.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            return list(self._active.values())

    def close(self) -> None:
        self._closed = True
        with self._cv:
            self._cv.notify_all()
