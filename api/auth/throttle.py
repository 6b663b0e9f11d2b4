"""A budget of failed logins per client address: past it, 429 until the window moves on.

Every Basic password not verified lately costs the server an scrypt (tens of milliseconds of a
core); a client that keeps getting it wrong is told to slow down instead of keeping the server
busy (and guessing on). Logins verified within the last minute are never counted or slowed.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0
MAX_FAILURES = 30


class Throttled(Exception):
    """Too many failed logins from this client lately."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class FailedLogins:
    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        """Throttled if ``client`` used up its budget within the window."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(client)
            if seen is None:
                return
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if not seen:
                del self._seen[client]
            elif len(seen) >= self.limit:
                raise Throttled(max(1, int(seen[0] + self.window - now) + 1))

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._seen) > 100_000:  # a flood of addresses: forget, do not grow
                self._seen.clear()
            self._seen.setdefault(client, deque()).append(time.monotonic())
