"""Checking a password (HTTP Basic, the console's login form): one path for both.

A password verified within the last minute is known without scrypt (``Users.verified``, on the
event loop). Any other goes through the throttle's budgets before it is checked (``throttle``:
reserved, then settled), and its scrypt runs in a pool of its own, of one or two threads: a
flood of wrong passwords waits there, without holding the threads that answer every other
request (an AK/SK call, a console page, a correct Basic password verified lately). The same
name and password sent many times at once are checked once, and all of them get that answer:
a client's burst of calls with its correct password is not a burst of guesses.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import anyio
import anyio.to_thread

from .throttle import FailedLogins
from .users import User, Users

# Half the cores, at most 2 (``users``' own bound on scrypts at once, 16 MiB each): the rest
# of the machine stays with the event loop and the threads of every other request.
THREADS = max(1, min(2, (os.cpu_count() or 2) // 2))
_AGAIN = object()  # the check this one waited for ended without an answer: check again


class PasswordChecks:
    """``app.state.passwords`` in the API: its users, its failed logins, its pool."""

    def __init__(self, users: Users, failures: FailedLogins, threads: int = THREADS) -> None:
        self.users, self.failures, self.threads = users, failures, threads
        self._limiter: anyio.CapacityLimiter | None = None
        self._running: dict[tuple[str, bytes], asyncio.Future[object]] = {}

    async def check(self, client: str, name: str, password: str) -> User | None:
        """The user whose password this is; None for a wrong one or an unknown name.
        Throttled (``throttle``) when a budget refuses the attempt before any check."""
        user = self.users.verified(name, password)
        if user is not None:
            return user
        key = (name, hashlib.sha256(password.encode()).digest())
        while (running := self._running.get(key)) is not None:
            answer = await asyncio.shield(running)
            if answer is not _AGAIN:
                return answer  # type: ignore[return-value]
        attempt = self.failures.reserve(client, name)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        answer: object = _AGAIN
        try:
            if self._limiter is None:  # made on the event loop that uses it
                self._limiter = anyio.CapacityLimiter(self.threads)
            answer = await anyio.to_thread.run_sync(
                self.users.authenticate, name, password, limiter=self._limiter
            )
            return answer  # type: ignore[return-value]
        finally:
            # Not known (an error, a cancelled wait) counts as failed: never a free guess.
            self.failures.settle(attempt, answer is not None and answer is not _AGAIN)
            del self._running[key]
            future.set_result(answer)
