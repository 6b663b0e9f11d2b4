"""Group commit: the ends of runs wait here to be recorded, several in one transaction.

A worker whose step finished offers the run's end. If no other worker is recording, it becomes
the recorder: it takes every end waiting (its own and whatever others offered meanwhile) and
records them in one transaction, then looks again until none is left. A worker that finds a
recorder at work leaves its end to it and is free at once. So while one transaction commits, the
ends that arrive queue up for the next: a commit (and the task's lock, its settling, its claim
of what became READY) is paid once per batch instead of once per node, and no worker waits on
the write lock only to commit alone.

An end is taken once and never dropped: the recorder records each end it took (as FAILED if
recording failed, see the runner), and gives the role up only under the lock that ends add to,
once none is waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .execution import Execution


@dataclass(eq=False)
class End:
    """A run's outcome, waiting to be recorded."""

    e: Execution
    ok: bool
    interrupted: bool
    text: str = ""  # log text drained for a transaction that did not commit: written by the next


class Ends:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[End] = []
        self._recording = False

    def __len__(self) -> int:
        """How many ends wait for the recorder's next batch."""
        with self._lock:
            return len(self._waiting)

    def offer(self, end: End) -> bool:
        """Queue the end; True if the caller is now the recorder (it then calls ``take`` until
        that returns nothing), False if the recorder at work will record it."""
        with self._lock:
            self._waiting.append(end)
            if self._recording:
                return False
            self._recording = True
            return True

    def take(self) -> list[End]:
        """The recorder's next batch: every end waiting. Empty: none is left, and the caller is
        not the recorder any more."""
        with self._lock:
            batch, self._waiting = self._waiting, []
            if not batch:
                self._recording = False
            return batch

    def adopt(self) -> bool:
        """Become the recorder of ends left waiting by one that resigned; False if there are
        none or another recorder has them."""
        with self._lock:
            if not self._waiting or self._recording:
                return False
            self._recording = True
            return True

    def resign(self) -> None:
        """The recorder stops on an unexpected error; the runner has the ends still waiting
        adopted by a thread of their own (``adopt``), else the next end offered takes them."""
        with self._lock:
            self._recording = False
