"""The scheduler daemon: runs tasks submitted by anyone to a shared database.

Several daemons may share one PostgreSQL database. Each is an Engine whose APScheduler (3.x) jobs
find work: the dispatcher starts a driver for every task with READY subtasks (drivers claim under
the task's row lock, taken with SKIP LOCKED so daemons never wait on each other, and a subtask is
marked RUNNING only if it still is READY: never twice); the sweeper fails subtasks whose
executor's lease lapsed. Leases are renewed by each daemon's runner while its steps run.

On SIGTERM or SIGINT a daemon stops claiming, lets running steps finish for ``grace`` seconds,
interrupts and records the rest as cancelled (so nothing stays RUNNING without a live lease), and
exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from . import transitions
from .engine import Engine
from .enums import SubtaskStatus, TaskStatus
from .errors import Cancelled

log = logging.getLogger("ocptask.daemon")
SUBTASKS = transitions.SUBTASKS
TASKS = transitions.TASKS

_READY_TASKS = (
    select(SUBTASKS.c.task_id)
    .join(TASKS, TASKS.c.id == SUBTASKS.c.task_id)
    .where(
        SUBTASKS.c.status == SubtaskStatus.READY.value,
        TASKS.c.status == TaskStatus.RUNNING.value,
    )
    .distinct()
    .limit(500)
)
_RUNNING_TASKS = (
    select(SUBTASKS.c.task_id)
    .where(SUBTASKS.c.status.in_([SubtaskStatus.RUNNING.value, SubtaskStatus.CANCELING.value]))
    .distinct()
    .limit(500)
)


class Daemon:
    def __init__(
        self,
        db_url: str | None = None,
        *,
        parallelism: int = 10,
        name: str | None = None,
        poll_seconds: float = 0.2,
        sweep_seconds: float = 5.0,
        grace_seconds: float = 30.0,
    ) -> None:
        self.engine = Engine(db_url, parallelism, executor=name)
        self.grace_seconds = grace_seconds
        self._stop = threading.Event()
        self.scheduler = BackgroundScheduler(timezone=UTC)
        options: dict[str, Any] = {"max_instances": 1, "coalesce": True}
        self.scheduler.add_job(self.dispatch, "interval", seconds=poll_seconds, **options)
        self.scheduler.add_job(self.sweep, "interval", seconds=sweep_seconds, **options)

    @property
    def name(self) -> str:
        return self.engine.executor

    def dispatch(self) -> None:
        """Start a driver for each task that has READY subtasks (a no-op for those driven)."""
        if self._stop.is_set():
            return
        with self.engine.store.engine.connect() as conn:
            task_ids = list(conn.execute(_READY_TASKS).scalars())
        for task_id in task_ids:
            self.engine._runner.start(task_id)

    def sweep(self) -> None:
        """Fail subtasks whose executor's lease lapsed (or whose process is gone)."""
        with self.engine.store.engine.connect() as conn:
            task_ids = list(conn.execute(_RUNNING_TASKS).scalars())
        for task_id in task_ids:
            try:
                self.engine._recover_lost(task_id)
            except Exception as exc:  # one task's trouble must not stop the sweep
                log.warning("sweep of task %s failed: %s", task_id, exc)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or ``request_stop``); returns the exit code."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.scheduler.start()
        log.info("daemon %s serving %s", self.name, self.engine.store.url)
        self._stop.wait()
        return self.shutdown()

    def shutdown(self) -> int:
        self._stop.set()
        self.scheduler.shutdown(wait=True)
        runner = self.engine._runner
        left = runner.drain(self.grace_seconds)
        for execution in left:  # past the grace period: stop them and say so
            execution.log.error("daemon stopping: the step did not finish within the grace period")
            runner._interrupt(execution, Cancelled)
        if left:
            runner.drain(2 * 1.0 + 1.0)  # interrupt grace, then abandon and record
        self.engine.close()
        log.info("daemon %s stopped", self.name)
        return 0
