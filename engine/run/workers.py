"""A thread pool that grows instead of queueing when a worker is stuck.

``ThreadPoolExecutor`` has a fixed size, so a step abandoned in a blocking call (see
interrupts.py) would silently shrink it. Here the runner's slot count enforces parallelism and the
pool simply starts another thread when none is idle; idle threads exit after a while.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_IDLE_EXIT_SECONDS = 30.0


class Workers:
    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._spawned = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                spawn = False
            else:
                self._spawned += 1
                spawn = True
            self._queue.put(job)
        if spawn:
            name = f"{self._name}-{self._spawned}"
            threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=_IDLE_EXIT_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._idle -= 1
                        return
                continue
            job()
            with self._lock:
                self._idle += 1
