"""The scheduler daemon: runs tasks submitted by anyone to a shared database.

Several daemons may share one PostgreSQL database. Each is an Engine whose APScheduler (3.x) jobs
find work: the dispatcher claims READY subtasks of any task into the daemon's free slots (each
task's claims are made under its row lock, taken with SKIP LOCKED so daemons never wait on each
other, and a subtask is marked RUNNING only if it still is READY: never twice); the sweeper finds
subtasks whose executor's lease lapsed and re-runs (idempotent steps) or fails them; a third
renews the leases of the steps this daemon runs (every quarter of ``--lease``); a fourth creates
the SCHEDULED tasks of due task definitions (``engine.definitions``); with ``purge_after``, a
fifth purges the tasks finished longer ago than that (``engine.retention``: one purge at a time
across the daemons of a database, the others skip their turn). A worker that finishes a
step claims that task's next READY subtask itself; when it frees a slot instead, it wakes the
dispatcher at once, and so does a PostgreSQL NOTIFY from a submit or an operator action anywhere.

On SIGTERM or SIGINT a daemon stops claiming, lets running steps finish for ``grace`` seconds,
interrupts the rest (their remote commands are killed) and hands them back as a lost executor's
would be: idempotent steps READY again for another daemon (RETRY), others FAILED with "executor
<id> stopped before the step finished". Nothing stays RUNNING without a live lease; exit 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import make_url

from engine.clock import utcnow
from engine.db.store import WORK_CHANNEL
from engine.errors import ResourceBusy
from engine.states import leases

from .engine import Engine

log = logging.getLogger("ocptask.daemon")


class _DropSkippedDispatch(logging.Filter):
    """A wake-up that lands while a job runs is not lost work: the dispatcher goes round again
    (or, in a narrow window, the next poll 0.2 s later picks it up). APScheduler's "maximum
    number of running instances reached" about it would fill the log for nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_DropSkippedDispatch())


class Daemon:
    def __init__(
        self,
        engine: Engine,
        *,
        poll_seconds: float = 0.2,
        sweep_seconds: float = 5.0,
        grace_seconds: float = 30.0,
        purge_after: timedelta | None = None,
        purge_seconds: float = 3600.0,
    ) -> None:
        """Serve ``engine``'s database with its parallelism, executor name and lease; the
        daemon owns the engine from here on (``shutdown`` closes it). With ``purge_after``,
        every ``purge_seconds`` (and at start) it purges the tasks finished before that long
        ago."""
        self.engine = engine
        self.purge_after = purge_after
        self.runner = engine.runner
        self.grace_seconds = grace_seconds
        self._stop = threading.Event()
        self._flags = threading.Lock()  # guards the two flags below
        self._dispatching = False
        self._again = False  # a wake-up came while the dispatcher ran: it goes round again
        self.runner.on_free_slot = self._wake
        self.scheduler = BackgroundScheduler(timezone=UTC)
        options: dict[str, Any] = {"max_instances": 1, "coalesce": True}
        self._dispatcher = self.scheduler.add_job(
            self.dispatch, "interval", seconds=poll_seconds, **options
        )
        self.scheduler.add_job(self.sweep, "interval", seconds=sweep_seconds, **options)
        self.runner.watchdog.renews_leases = False  # this job does it instead of the watchdog
        renew = self.runner.renew_leases
        every = self.runner.lease_seconds / 4
        self.scheduler.add_job(renew, "interval", seconds=every, **options)
        self.scheduler.add_job(self.fire_definitions, "interval", seconds=1.0, **options)
        if purge_after is not None:
            self.scheduler.add_job(
                self.purge,
                "interval",
                seconds=purge_seconds,
                next_run_time=datetime.now(UTC),
                **options,
            )

    @property
    def name(self) -> str:
        return self.engine.executor

    def dispatch(self) -> None:
        """Fill free slots with READY subtasks of any task, until none is left to claim."""
        with self._flags:
            self._dispatching = True
        try:
            while not self._stop.is_set():
                with self._flags:
                    self._again = False
                started = self.runner.dispatch()
                with self._flags:
                    if not started and not self._again:
                        self._dispatching = False
                        break
        finally:
            with self._flags:
                self._dispatching = False

    def _wake(self) -> None:
        """A slot came free or work arrived: run the dispatcher now, not at its next poll."""
        if self._stop.is_set():
            return
        with self._flags:
            if self._dispatching:
                self._again = True  # it goes round once more before it stops
                return
        try:
            self._dispatcher.modify(next_run_time=datetime.now(UTC))
        except Exception:  # the scheduler is stopping; the poll (or nothing) takes over
            pass

    def fire_definitions(self) -> None:
        """Create the SCHEDULED tasks of due definitions (every daemon may; each fire is one
        task) and start them here at once."""
        if self._stop.is_set():
            return
        if self.engine.fire_due():
            self._wake()

    def purge(self) -> None:
        """Purge what finished longer ago than ``purge_after`` (another daemon purging this
        database meanwhile: its turn is skipped)."""
        if self._stop.is_set() or self.purge_after is None:
            return
        try:
            report = self.engine.purge(utcnow() - self.purge_after, scheduled=True)
        except ResourceBusy:
            return
        except Exception as exc:  # the next turn tries again
            log.warning("scheduled purge failed: %s", exc)
            return
        if report.tasks:
            log.info(
                "purged %d tasks finished before %s (%d subtasks, %d log rows); kept %s",
                report.tasks,
                report.finished_before.isoformat(),
                report.subtasks,
                report.log_rows,
                report.kept or "none",
            )

    def sweep(self) -> None:
        """Re-run or fail subtasks whose executor's lease lapsed."""
        with self.engine.store.engine.connect() as conn:
            task_ids = leases.lapsed_tasks(conn)
        for task_id in task_ids:
            try:  # a task another executor is busy with is left for the next sweep
                self.engine.recover_lost(task_id, wait=False)
            except Exception as exc:  # one task's trouble must not stop the sweep
                log.warning("sweep of task %s failed: %s", task_id, exc)

    def _listen(self) -> None:
        """PostgreSQL: wake the dispatcher on every NOTIFY of new work (a submit or an operator
        action elsewhere), so it starts in milliseconds instead of at the next poll."""
        import psycopg  # only for PostgreSQL daemons

        url = make_url(self.engine.store.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {WORK_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except psycopg.Error as exc:  # the poll still finds work; try again shortly
                log.warning("LISTEN %s failed (%s); polling only for now", WORK_CHANNEL, exc)
                self._stop.wait(2.0)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or ``request_stop``); returns the exit code."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        # Timed: the kernel may deliver SIGTERM to any thread, and then the main thread's Python
        # handler runs only when it next runs bytecode; an untimed wait never would.
        while not self._stop.wait(0.5):
            pass
        return self.shutdown()

    def start(self) -> None:
        """Start the jobs in the background (``ocptask serve`` runs its HTTP server beside
        them); a submit through this daemon's engine wakes the dispatcher at once."""
        self.engine.on_work = self._wake
        self.scheduler.start()
        if not self.engine.store.is_sqlite:
            threading.Thread(target=self._listen, name="ocptask-listen", daemon=True).start()
        where = make_url(self.engine.store.url).render_as_string(hide_password=True)
        log.info("daemon %s serving %s", self.name, where)

    def shutdown(self) -> int:
        self._stop.set()
        runner = self.runner
        runner.draining = True  # no claim from here on, not even by a finishing worker
        runner.watchdog.renews_leases = True  # the renewal job goes with the scheduler
        self.scheduler.shutdown(wait=True)
        left = runner.drain(self.grace_seconds)
        for execution in left:  # past the grace period: stop them and hand them back
            execution.log.error("daemon stopping: the step did not finish within the grace period")
        runner.release(left)
        if left:
            runner.settle_released()
        self.engine.close()
        log.info("daemon %s stopped", self.name)
        return 0
