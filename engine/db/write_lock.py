"""The writers of one SQLite database take turns on a lock: across threads and processes.

SQLite lets one writer in at a time and keeps the others in its busy handler, which sleeps in
growing steps (up to 100 ms) and lets a newcomer overtake a waiter: with two processes writing
(``ocptask serve --workers 2``, a daemon beside the CLI) some writes waited seconds. Here a
thread lock queues one process's threads, and an ``flock`` on a file beside the database queues
the processes; the kernel hands the lock on as soon as it is released.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType


class WriteLock:
    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".write-lock")
        self._thread = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self.users = 0  # Stores of this process sharing it; the last to close closes the file

    def close(self) -> None:
        with self._thread:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _file(self) -> int:
        # A forked child would share the parent's open file and so its flock: reopen there.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._thread.acquire()
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._thread.release()
