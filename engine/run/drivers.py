"""Driver threads: how an embedded Engine runs a task it was told to start.

One thread per started task claims the task's READY subtasks into free slots and sleeps until a
slot frees (or, at most, ``POLL_SECONDS``: a cancel or READY subtask made by another process is
seen that way). It ends once nothing of the task can progress here: none of its subtasks runs in
this process and none is READY, RUNNING or CANCELING in the database. A daemon needs no drivers:
its dispatcher claims across tasks instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from sqlalchemy import bindparam, select

from engine.db.records import TASKS
from engine.db.store import Store
from engine.errors import RunnerError

from .slots import Slots

log = logging.getLogger("ocptask.runner")
POLL_SECONDS = 0.2
_PAYLOAD = select(TASKS.c.payload).where(TASKS.c.id == bindparam("task_id"))


class Claimer(Protocol):
    """What a driver needs of its runner."""

    store: Store
    slots: Slots

    @property
    def closed(self) -> bool: ...
    def claim(self, task_id: int, free: int, payload: dict[str, Any]) -> int: ...
    def task_active(self, task_id: int) -> bool: ...


class Drivers:
    def __init__(self, runner: Claimer) -> None:
        self.runner = runner
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}
        self._failures: dict[int, Exception] = {}
        self._again: set[int] = set()

    def start(self, task_id: int) -> None:
        with self._lock:
            driver = self._threads.get(task_id)
            if driver is not None and driver.is_alive():
                self._again.add(task_id)  # it may be deciding to stop: make it look again
                return
            driver = threading.Thread(
                target=self._drive, args=(task_id,), name=f"ocptask-task-{task_id}", daemon=True
            )
            self._threads[task_id] = driver
        driver.start()

    def join(self, task_id: int, timeout: float | None) -> bool:
        """Wait for the task's driver; True when it has stopped (or never ran).

        Raises RunnerError if the driver died of an unexpected error.
        """
        with self._lock:
            driver = self._threads.get(task_id)
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
        runner, slots = self.runner, self.runner.slots
        try:
            with runner.store.engine.connect() as conn:
                payload = conn.execute(_PAYLOAD, {"task_id": task_id}).scalar() or {}
            while not runner.closed:
                seen, free = slots.reserve_for(task_id)
                progressed = runner.claim(task_id, free, payload) if free > 0 else 0
                if progressed and progressed >= free:
                    continue  # slots were the limit: more may be READY already
                idle = not progressed and not slots.runs_task(task_id)
                if idle and not runner.task_active(task_id):
                    with self._lock:
                        if task_id in self._again:
                            self._again.discard(task_id)
                            continue
                        del self._threads[task_id]  # from here on, start() makes a new driver
                    return
                slots.wait(seen, POLL_SECONDS)
        except Exception as exc:  # a bug or a lost database: never a silent dead driver
            log.exception("driver of task %s stopped", task_id)
            self._failures[task_id] = exc
        finally:
            with self._lock:
                if self._threads.get(task_id) is threading.current_thread():
                    del self._threads[task_id]
            slots.done_waiting(task_id)
