"""The watchdog: one thread per Runner that keeps running steps within their bounds.

Every ``WATCH_INTERVAL`` it interrupts steps past their deadline, abandons those that ignored an
interrupt for ``GRACE_SECONDS``, and fences: a step whose lease went unrenewed for most of its
length is stopped by its own executor before anyone else may judge it lost. It also schedules
the periodic database work (cancel polls, lease renewals, log flushes) onto worker threads: the
watchdog itself never waits on the database, so a hung connection cannot keep it from timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import bindparam, select

from engine.db import subtask_log
from engine.db.records import SUBTASKS
from engine.db.store import Store
from engine.enums import SubtaskStatus
from engine.errors import Cancelled, OcpTaskError, TimeLimitExceeded
from engine.states import leases

from . import execution
from .execution import Execution, Phase

log = logging.getLogger("ocptask.runner")

GRACE_SECONDS = 1.0
WATCH_INTERVAL = 0.05
CANCEL_POLL_INTERVAL = 0.2
LOG_FLUSH_INTERVAL = 0.5
# A step whose lease went unrenewed until this long before it lapses is stopped by its own
# executor: enough for the interrupt grace and a remote kill to finish before anyone else may
# judge the run lost.
FENCE_MARGIN_SECONDS = 3.0

_CANCELING = select(SUBTASKS.c.id).where(
    SUBTASKS.c.id.in_(bindparam("ids", expanding=True)),
    SUBTASKS.c.status == SubtaskStatus.CANCELING.value,
)


class Watched(Protocol):
    """What the watchdog needs of its runner."""

    store: Store
    executor: str
    lease_seconds: float

    def running(self) -> list[Execution]: ...
    def in_background(self, work: Callable[[], None]) -> None: ...
    def record_abandoned(self, e: Execution) -> None: ...


class Watchdog:
    def __init__(self, runner: Watched) -> None:
        self.runner = runner
        # Renewals every quarter of the lease, unless someone else schedules ``renew`` (the
        # daemon: an APScheduler job).
        self.renews_leases = True
        self._closed = False
        self._polling = False
        self._flushing = False
        self._thread = threading.Thread(target=self._watch, name="ocptask-watchdog", daemon=True)
        self._thread.start()

    @property
    def fence_seconds(self) -> float:
        """Unrenewed this long, a step is stopped by this executor (see FENCE_MARGIN_SECONDS)."""
        lease = self.runner.lease_seconds
        return max(lease - FENCE_MARGIN_SECONDS, lease / 2)

    def close(self) -> None:
        self._closed = True

    def _watch(self) -> None:
        last_cancel_poll = last_flush = 0.0
        last_renew = time.monotonic()
        while not self._closed:
            time.sleep(WATCH_INTERVAL)
            running = self.runner.running()
            if not running:
                continue
            now = time.monotonic()
            try:
                for e in running:
                    if e.interrupt is None and e.deadline is not None and now >= e.deadline:
                        execution.interrupt(e, TimeLimitExceeded)
                    elif e.interrupt is not None and now >= e.interrupted_at + GRACE_SECONDS:
                        if execution.abandon(e, GRACE_SECONDS):  # recorded on a worker
                            self.runner.in_background(lambda e=e: self.runner.record_abandoned(e))
                    # Fence: stopped here before anyone else may judge its lease lapsed.
                    if now - e.renewed_at > self.fence_seconds:
                        revoke(e, "its lease could not be renewed in time")
                if now - last_cancel_poll >= CANCEL_POLL_INTERVAL and not self._polling:
                    last_cancel_poll = now
                    self._polling = True
                    self.runner.in_background(lambda r=running: self._poll_cancels(r))
                if self.renews_leases and now - last_renew >= self.runner.lease_seconds / 4:
                    last_renew = now
                    self.runner.in_background(lambda r=running: self.renew(r))
                if now - last_flush >= LOG_FLUSH_INTERVAL and not self._flushing:
                    last_flush = now
                    self._flushing = True  # one flush at a time, on a worker thread
                    self.runner.in_background(lambda r=running: self._flush_logs(r))
            except (OcpTaskError, OSError, RuntimeError) as exc:  # database hiccup: next round
                log.warning("watchdog round failed: %s", exc)
            except Exception:  # never let the watchdog die; it is what stops runaway steps
                log.exception("watchdog round failed")

    def _poll_cancels(self, running: list[Execution]) -> None:
        """A cancel from any process: the subtask turned CANCELING in the database."""
        try:
            ids = [e.subtask_id for e in running if e.interrupt is None]
            if not ids:
                return
            with self.runner.store.engine.connect() as conn:
                cancelled = set(conn.execute(_CANCELING, {"ids": ids}).scalars())
            for e in running:
                if e.subtask_id in cancelled:
                    execution.interrupt(e, Cancelled)
        except Exception as exc:  # the next poll tries again
            log.warning("cancel poll failed: %s", exc)
        finally:
            self._polling = False

    def renew(self, running: list[Execution]) -> None:
        """Renew the leases of running steps; a step whose row this executor no longer holds
        (judged lost, handed to another) is stopped at once and records nothing."""
        started = time.monotonic()
        ids = [e.subtask_id for e in running]
        try:
            with self.runner.store.begin_write() as conn:
                renewed = leases.renew(conn, ids, self.runner.executor, self.runner.lease_seconds)
        except Exception as exc:  # the next round tries again; the fence acts if it lasts
            log.warning("lease renewal failed: %s", exc)
            return
        for e in running:
            if e.subtask_id in renewed:
                e.renewed_at = started
            elif e.phase in (Phase.QUEUED, Phase.IN_STEP):
                revoke(e, "its row was taken from this executor (judged lost)")

    def _flush_logs(self, running: list[Execution]) -> None:
        try:
            for e in running:
                if not e.log.pending:
                    continue
                with e.flush_lock, self.runner.store.raw_write() as conn:
                    subtask_log.append_row(conn, e.subtask_id, e.log.drain())
        except Exception as exc:  # lines stay buffered: the final record writes them
            log.warning("log flush failed: %s", exc)
        finally:
            self._flushing = False


def revoke(e: Execution, why: str) -> None:
    """Stop a run this executor may no longer hold. Its end is recorded (FAILED/CANCEL) only
    if the row is still this executor's: every finish is guarded by the owner."""
    if e.revoked:
        return
    e.revoked = True
    e.log.error(f"stopping the step: {why}")
    execution.interrupt(e, Cancelled)
