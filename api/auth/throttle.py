"""Budgets of failed logins, per user name and per client address: past one, 429 until the
window moves on.

Every password not verified lately costs the server an scrypt (tens of milliseconds of a core)
and gives its sender a guess. The rules, within any 60 seconds:

- **A name** (known or not, from any address) may fail ``NAME_FAILURES`` (10) times; then
  every attempt at that name is refused without a check. A flood against one name locks only
  that name (a password verified for it within the last minute still passes: it needs no check).
- **An address** may fail ``ADDRESS_FAILURES`` (30) times; past that, it is refused only the
  names that have failed from it within the window. A name new to it is still checked once:
  its failures are its own, so a correct password of another user behind the same NAT or proxy
  is never refused for what others got wrong there. A sprayer past its budget gets one guess a
  name a minute (and unknown names behave as known ones: no name is probed by a 429).

A failed attempt is counted before its password is checked: ``reserve`` takes the slot (or
raises ``Throttled``) under a lock, ``settle`` gives it back on success. A concurrent burst
therefore gets no more checks than the budget, however many arrive at once. The budgets are
this process's (``serve --workers N``: each worker keeps its own).
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0
NAME_FAILURES = 10
ADDRESS_FAILURES = 30
_MAX_KEYS = 100_000  # past this many tracked names and addresses, forget the expired ones


class Throttled(Exception):
    """Too many failed logins for this name, or from this client, lately."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Attempt:
    """One login being checked (``pending``) or one that failed (when it failed, ``at``)."""

    __slots__ = ("at", "keys", "pending")

    def __init__(self, at: float, keys: tuple[tuple[str, ...], ...]) -> None:
        self.at, self.keys, self.pending = at, keys, True


class FailedLogins:
    def __init__(
        self,
        per_name: int = NAME_FAILURES,
        per_address: int = ADDRESS_FAILURES,
        window: float = WINDOW_SECONDS,
    ) -> None:
        self.per_name, self.per_address, self.window = per_name, per_address, window
        # ("name", n), ("address", a) and ("pair", a, n): attempts oldest first.
        self._seen: dict[tuple[str, ...], deque[Attempt]] = {}
        self._lock = threading.Lock()

    def reserve(self, client: str, name: str) -> Attempt:
        """Count an attempt at ``name`` from ``client`` as failed until ``settle`` says how
        it went; Throttled (nothing counted) when a budget above refuses it."""
        now = time.monotonic()
        keys = (("name", name), ("address", client), ("pair", client, name))
        with self._lock:
            by_name, by_address, pair = (self._live(k, now) for k in keys)
            if len(by_name) >= self.per_name:
                raise Throttled(self._until(by_name, self.per_name, now))
            if len(by_address) >= self.per_address and pair:
                # The address is past its budget, and this name failed from it lately.
                until = min(
                    self._until(by_address, self.per_address, now),
                    self._until(pair, 1, now),
                )
                raise Throttled(until)
            if len(self._seen) > _MAX_KEYS:
                self._forget(now)
            attempt = Attempt(now, keys)
            for key in keys:
                self._seen.setdefault(key, deque()).append(attempt)
            return attempt

    def settle(self, attempt: Attempt, succeeded: bool) -> None:
        """A success gives the slot back; a failure counts from now for the window."""
        with self._lock:
            if not attempt.pending:
                return
            attempt.pending = False
            for key in attempt.keys:
                seen = self._seen.get(key)
                if seen is not None and attempt in seen:
                    seen.remove(attempt)
            if succeeded:
                for key in attempt.keys:
                    if not self._seen.get(key, True):
                        del self._seen[key]
                return
            attempt.at = time.monotonic()
            for key in attempt.keys:
                self._seen.setdefault(key, deque()).append(attempt)

    def _live(self, key: tuple[str, ...], now: float) -> deque[Attempt]:
        """The key's attempts within the window (pending ones always: not yet known)."""
        seen = self._seen.get(key)
        if seen is None:
            return deque()
        while seen and not seen[0].pending and seen[0].at <= now - self.window:
            seen.popleft()
        if not seen:
            del self._seen[key]
        return seen

    def _until(self, seen: deque[Attempt], budget: int, now: float) -> int:
        """Seconds until ``seen`` holds fewer than ``budget`` attempts (its oldest leave)."""
        leaving = seen[len(seen) - budget]
        return max(1, int(leaving.at + self.window - now) + 1)

    def _forget(self, now: float) -> None:
        for key in list(self._seen):
            self._live(key, now)
