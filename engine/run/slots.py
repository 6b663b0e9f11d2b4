"""The cap on how many subtasks one executor runs at once, and the runs that fill it.

A claim reserves the free slots before its transaction (nobody else can promise them) and gives
back what it did not use when it launches. A task whose driver found no free slot is *starved*:
a worker that finishes leaves its slot to that task rather than claiming its own task's next
subtask, so one long chain cannot keep other tasks waiting. ``generation`` counts changes that
may let a waiting driver progress; drivers sleep until it moves.
"""

from __future__ import annotations

import threading
import time

from .execution import Execution


class Slots:
    def __init__(self, parallelism: int) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.parallelism = parallelism
        self.cv = threading.Condition()
        self.generation = 0
        self.active: dict[int, Execution] = {}  # by subtask id
        self._reserved = 0  # slots promised to claims in progress
        self._starved: set[int] = set()  # tasks whose drivers wait for a free slot

    def _free(self) -> int:
        return self.parallelism - len(self.active) - self._reserved

    def _take(self, extra: int = 0) -> int:
        """Reserve every free slot (and ``extra`` given up by the caller); how many (caller
        holds ``cv``)."""
        free = max(self._free() + extra, 0)
        self._reserved += free
        return free

    def reserve(self) -> int:
        """Reserve every free slot; how many (0: none free)."""
        with self.cv:
            return self._take()

    def reserve_for(self, task_id: int) -> tuple[int, int]:
        """A driver's turn: (generation seen, slots reserved); with none free the task is
        marked starved."""
        with self.cv:
            free = self._take()
            if free:
                self._starved.discard(task_id)
            else:
                self._starved.add(task_id)
            return self.generation, free

    def reserve_after(self, task_ids: set[int], finished: int) -> int:
        """Workers recording ``finished`` runs of these tasks: their slots and the free ones,
        reserved for those tasks' next subtasks; 0 if another task is starved (its driver gets
        the slots)."""
        with self.cv:
            if self._starved - task_ids:
                return 0
            return self._take(extra=finished)  # + the slots the finished runs give up

    def unreserve(self, n: int) -> None:
        with self.cv:
            self._reserved -= n

    def launch(self, launched: list[Execution], finished: list[Execution], reserved: int) -> None:
        """Turn a reservation into runs; finishing runs give up their slots in the same step."""
        with self.cv:
            self._reserved -= reserved
            for e in finished:
                self.active.pop(e.subtask_id, None)
            for e in launched:
                self.active[e.subtask_id] = e
            going_on = {e.task_id for e in launched}
            if (
                (not finished and launched)
                or len(finished) > len(launched)
                or any(e.task_id not in going_on for e in finished)
            ):
                # A slot came free, or a task with nothing launched may be done (a batch of
                # ends refilled its slots from another task): drivers should look. Workers
                # that refilled their own slots from their own tasks leave them asleep, else
                # they would contend for the write lock on every node for nothing.
                self.changed()

    def changed(self) -> None:
        """Wake the drivers (caller holds ``cv``)."""
        self.generation += 1
        self.cv.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Sleep until something changed since ``seen`` (or ``timeout``)."""
        with self.cv:
            if self.generation == seen:
                self.cv.wait(timeout=timeout)

    def done_waiting(self, task_id: int) -> None:
        """A driver stops: it no longer waits for a slot."""
        with self.cv:
            self._starved.discard(task_id)
            self.changed()

    def running(self) -> list[Execution]:
        with self.cv:
            return list(self.active.values())

    def runs_task(self, task_id: int) -> bool:
        with self.cv:
            return any(e.task_id == task_id for e in self.active.values())

    def get(self, subtask_id: int) -> Execution | None:
        with self.cv:
            return self.active.get(subtask_id)

    def drain(self, grace: float) -> list[Execution]:
        """Wait up to ``grace`` seconds for the runs to end; return those still running."""
        deadline = time.monotonic() + grace
        with self.cv:
            while self.active and time.monotonic() < deadline:
                self.cv.wait(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            return list(self.active.values())
