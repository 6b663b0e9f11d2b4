"""Runs READY subtasks in threads, within a cap, and records every outcome.

One Runner per Engine. Subtasks are claimed into its slots (``parallelism``) in write
transactions, by a *driver* thread per task (``start``) or, in a daemon, by one dispatcher across
tasks (``dispatch``); claimed runs go to worker threads. Ends are group-committed (``ends``): the
worker that records them records every end waiting in one transaction, claims what they made
READY in the same transaction, and runs one of those next itself. The watchdog
(``watchdog``) keeps running steps within their deadlines and leases; an ``Execution`` is one run
(``execution``); who holds a subtask is written by ``leases`` alone.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from contextlib import ExitStack
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
from .ends import End, Ends
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
        self.ends = Ends()
        """Ends of runs waiting to be recorded: the group commit (``ends``)."""
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
        launches after it commits. The READY subtasks found are claimed in one statement."""
        launched: list[Execution] = []
        progressed = 0
        if self.draining:
            return launched, progressed
        rolling_back = operation == Operation.ROLLBACK
        query = _READY_NEWEST_FIRST if rolling_back else _READY_IN_ORDER
        runnable: list[dict[str, Any]] = []
        for sub in query.run(conn, {"task_id": task_id, "n": free}):
            if self.slots.get(sub["id"]) is not None:  # handed back; its old run still ends
                continue
            if sub["operation"] in (Operation.SKIP, Operation.ROLLBACK_SKIP):
                note = subtask_log.header(sub["operation"])
                note += subtask_log.line("INFO", "skipped by operator")
                subtask_log.append_row(conn, sub["id"], note)
                leases.finish(conn, task_id, sub, ok=True, rolling_back=rolling_back)
                progressed += 1
                continue
            runnable.append(sub)
        if not runnable:
            return launched, progressed
        ids = [sub["id"] for sub in runnable]
        claimed = leases.claim_many(conn, ids, self.executor, self.lease_seconds)
        for sub in runnable:
            if sub["id"] not in claimed:
                continue  # claimed by someone else in between
            log_ = SubtaskLogger(sub["id"], keep=self.log_keep)
            log_.write(subtask_log.header(sub["operation"]))  # stored with the first flush
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
        self, launched: list[Execution], finished: list[Execution] | None = None, reserved: int = 0
    ) -> Execution | None:
        """Hand claimed subtasks to workers; finishing runs give their slots up in the same step.

        With ``finished`` (called from the worker that recorded their ends), the first of
        ``launched`` is returned for that worker to run next itself: no new thread, no hand-off.
        """
        finished = finished or []
        self.slots.launch(launched, finished, reserved)
        keep = launched[0] if finished and launched else None
        if len(finished) > len(launched) and self.on_free_slot is not None:
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
        """Offer the run's end for recording (``ends``: group commit). The worker that becomes
        the recorder records batches until none is left and gets a follow-up to run itself."""
        e.log.end()  # the marker of what was left out, and the tail, go with the end
        if not self.ends.offer(End(e, ok=ok, interrupted=interrupted)):
            return None  # the worker recording now records this end with its next batch
        return self._recording()

    def _recording(self) -> Execution | None:
        """As the recorder: record batches until none waits; the last follow-up is the
        caller's to run."""
        keep: Execution | None = None
        try:
            while batch := self.ends.take():
                if keep is not None:  # more to record first: that follow-up goes to a worker
                    self._workers.submit(lambda e=keep: self._work(e))
                keep = self._record_batch(batch)
        except BaseException:
            self.ends.resign()
            if len(self.ends):  # offered meanwhile: recorded now, not at some later end
                threading.Thread(target=self._adopt_waiting, daemon=True).start()
            raise
        return keep

    def _adopt_waiting(self) -> None:
        if self.ends.adopt():
            keep = self._recording()
            if keep is not None:
                self._work(keep)

    def _record_batch(self, batch: list[End]) -> Execution | None:
        follow_ups: list[Execution] = []
        reserved = 0
        try:
            follow_ups, reserved = self._record_ends_safely(batch)
        finally:
            next_up = self._launch(follow_ups, finished=[b.e for b in batch], reserved=reserved)
        return next_up

    def _record_ends_safely(self, batch: list[End]) -> tuple[list[Execution], int]:
        """Record the batch in one transaction; if that fails, each end alone (so one bad end
        cannot fail the others), and if that fails too, at least FAILED so nothing hangs
        RUNNING. Nothing is SUCCESSFUL before the transaction that says so has committed.

        Returns the follow-ups claimed and the slots reserved for them.
        """
        handed_back = [b for b in batch if (b.e.released or b.e.revoked) and b.interrupted]
        together = [b for b in batch if not ((b.e.released or b.e.revoked) and b.interrupted)]
        follow_ups: list[Execution] = []
        reserved = 0
        for b in handed_back:
            self._record_alone(b)
        if len(together) > 1:
            try:
                return self._record_ends(together)
            except Exception:
                log.exception("recording %d ends together failed; each alone", len(together))
        for b in together:
            more, reserving = self._record_alone(b)
            follow_ups += more
            reserved += reserving
        return follow_ups, reserved

    def _record_alone(self, b: End) -> tuple[list[Execution], int]:
        try:
            if (b.e.released or b.e.revoked) and b.interrupted:
                self._hand_back(b.e)
                return [], 0
            return self._record_ends([b])
        except Exception as exc:
            log.exception("recording the end of subtask %s failed", b.e.subtask_id)
            b.e.log.error(f"engine error while recording the outcome: {type(exc).__name__}: {exc}")
        try:
            if (b.e.released or b.e.revoked) and b.interrupted:
                self._hand_back(b.e)
            else:
                failed = End(b.e, ok=False, interrupted=b.interrupted, text=b.text)
                self._record_ends([failed], claim=False)
        except Exception:
            log.exception("subtask %s could not be marked FAILED", b.e.subtask_id)
        return [], 0

    def _record_ends(self, ends: list[End], *, claim: bool = True) -> tuple[list[Execution], int]:
        """Record the outcomes and, in the same transaction, claim what they made READY.

        Claiming here saves a transaction and a thread hand-off per node on a chain; the
        driver still claims everything this does not. Tasks are locked in id order, then the
        ended rows written in subtask id order (the order a lease renewal locks them), so two
        executors' batches, or a batch and a renewal, cannot deadlock on PostgreSQL.
        """
        ends = sorted(ends, key=lambda b: b.e.subtask_id)
        firsts: dict[int, End] = {}  # each task's first end
        count: dict[int, int] = {}
        for b in ends:
            firsts.setdefault(b.e.task_id, b)
            count[b.e.task_id] = count.get(b.e.task_id, 0) + 1
        reserved = 0
        try:
            with ExitStack() as held:
                for b in ends:  # no flush of their logs by the watchdog in between
                    held.enter_context(b.e.flush_lock)
                with self.store.raw_write() as conn:
                    operations = {t: transitions.lock_task(conn, t) for t in sorted(firsts)}
                    for b in ends:
                        b.text += b.e.log.drain()
                        # A task with one end here settles as it always did; with several,
                        # once after the last (before it, the others are still RUNNING).
                        alone = count[b.e.task_id] == 1
                        if not self._recorded(conn, b, settles=alone):
                            b.text += b.e.log.drain()
                        subtask_log.append_row(conn, b.e.subtask_id, b.text)
                    for task_id, first in firsts.items():
                        if count[task_id] > 1:
                            transitions.settle(conn, task_id, rolling_back=first.e.rolling_back)
                    launched: list[Execution] = []
                    if claim and not self._closed:
                        reserved = self.slots.reserve_after(set(firsts), len(ends))
                        left = reserved
                        for task_id, first in firsts.items():
                            if left <= 0:
                                break
                            payload, operation = first.e.ctx.payload, operations[task_id]
                            more, _ = self._claim_in(conn, task_id, left, payload, operation)
                            launched += more
                            left -= len(more)
            for b in ends:
                b.text = ""  # committed
            return launched, reserved
        except BaseException:  # the claim or the commit failed: give the reservation back
            if reserved > 0:
                self.slots.unreserve(reserved)
            raise

    def _recorded(self, conn: StatementConn, b: End, *, settles: bool) -> bool:
        """The run's end, written only while this executor holds the row; False if it was not
        RUNNING any more (whatever happened instead is logged)."""
        e, ok, interrupted = b.e, b.ok, b.interrupted
        common: dict[str, Any] = {
            "context": e.ctx.context,
            "rolling_back": e.rolling_back,
            "owner": self.executor,  # a run given to another executor records nothing
            "settles": settles,
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
