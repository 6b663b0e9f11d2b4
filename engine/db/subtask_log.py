"""Subtask logs as OCP shows them: a header per execution, then timestamped lines.

Steps log through a ``SubtaskLogger``: lines are buffered and written in batches (at the end of the
execution and periodically by the runner) so logging never costs a transaction per line, and every
registered secret is masked before a line is stored.

An execution's log is bounded: its first ``keep`` bytes (its header first) and its last ``keep``
bytes are stored, with one line between saying how much was left out
(``... 12.3 MiB left out ...``). The bound is per execution, so every execution (a retry, a
rollback) shows its header and its end; a subtask run n times stores at most n times the bound.
While the head is being written, batches are stored as they come; past it, the tail is kept in a
ring of at most ``keep`` bytes and stored when the execution ends (``end``): a step writing
gigabytes holds no more than twice ``keep`` in memory, and a follower sees the head, then the
marker and the tail at the end. ``keep`` is ``Engine(log_keep_kib=...)`` or
``$OCPTASK_LOG_KEEP_KIB`` (default 64 KiB each end).
"""

from __future__ import annotations

import os
import threading
import traceback
from collections import deque
from datetime import datetime

from sqlalchemy import bindparam, insert
from sqlmodel import Session

from engine.clock import ocp_time, utcnow
from engine.text import byte_size

from .compiled import CompiledStatement, StatementConn
from .records import LOGS

MASK = "******"
KEEP_VARIABLE = "OCPTASK_LOG_KEEP_KIB"
DEFAULT_KEEP_KIB = 64


def keep_bytes(kib: int | None = None) -> int:
    """Bytes kept at each end of an execution's log: ``kib`` KiB, else ``$OCPTASK_LOG_KEEP_KIB``,
    else 64 KiB. ValueError naming the setting for anything but a whole number >= 1."""
    where, given = "log_keep_kib", kib
    if kib is None:
        given = os.environ.get(KEEP_VARIABLE, "").strip()
        if not given:
            return DEFAULT_KEEP_KIB * 1024
        where = f"${KEEP_VARIABLE}"
        kib = int(given) if given.isascii() and given.isdigit() and len(given) < 10 else 0
    if isinstance(kib, bool) or not isinstance(kib, int) or not 1 <= kib < 2**31:
        raise ValueError(f"{where} must be a whole number of KiB >= 1, not {given!r}")
    return kib * 1024


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _head_of(text: str, room: int, whole: bool) -> str:
    """At most ``room`` bytes from the start of ``text``, up to its last whole line; with
    ``whole`` (the head holds lines already), nothing rather than part of a line."""
    cut = text.encode()[:room]
    end = cut.rfind(b"\n")
    if end < 0 and whole:
        return ""
    return (cut[: end + 1] if end >= 0 else cut).decode(errors="ignore")


def _tail_of(text: str, room: int, whole: bool) -> str:
    """At most ``room`` bytes from the end of ``text``, from its first whole line if any; with
    ``whole`` (other lines follow), nothing rather than the end of a line."""
    data = text.encode()
    if len(data) <= room:
        return text
    cut = data[len(data) - room :]
    start = cut.find(b"\n")
    if 0 <= start < len(cut) - 1:
        cut = cut[start + 1 :]
    elif whole:
        return ""
    return cut.decode(errors="ignore")


def header(operation: str, when: datetime | None = None) -> str:
    return f"############{{{operation}}}{{{ocp_time(when or utcnow())}}}############\n"


def line(level: str, message: str) -> str:
    return f"{ocp_time(utcnow())} {level:<5} {message}\n"


def append(session: Session, subtask_id: int, text: str) -> None:
    append_row(session.connection(), subtask_id, text)


_INSERT = CompiledStatement(
    insert(LOGS).values(subtask_id=bindparam("subtask_id"), text=bindparam("text"))
)


def append_row(conn: StatementConn, subtask_id: int, text: str) -> None:
    if text:
        _INSERT.run(conn, {"subtask_id": subtask_id, "text": text})


class SubtaskLogger:
    """What a step writes to. Thread-safe; flushed by the runner, never by the step. Bounded to
    ``keep`` bytes at each end (see the module)."""

    def __init__(
        self, subtask_id: int, secrets: set[str] | None = None, *, keep: int | None = None
    ) -> None:
        self.subtask_id = subtask_id
        self._secrets: set[str] = set(secrets or ())
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.keep = keep_bytes() if keep is None else keep
        self._head_room = self.keep  # bytes the head may still take
        self._tail: deque[str] = deque()  # past the head: the newest text, at most keep bytes
        self._tail_size = 0
        self._left_out = 0  # bytes dropped between the head and the tail
        self._ended = False
        self._cut_mid_line = False

    def add_secret(self, secret: str) -> None:
        """Mask this value (e.g. a password) wherever it appears in later lines."""
        if secret:
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def write(self, text: str) -> None:
        with self._lock:
            text = self.redact(text)
            size = _size(text)
            if size <= self._head_room:
                self._lines.append(text)
                self._head_room -= size
                return
            if self._head_room > 0:  # the head's last part: up to a whole line if it can
                head = _head_of(text, self._head_room, self._head_room < self.keep)
                if head:
                    self._lines.append(head)
                    self._cut_mid_line = not head.endswith("\n")
                self._head_room = 0
                text = text[len(head) :]
                size = _size(text)
            self._to_tail(text, size)

    def _to_tail(self, text: str, size: int) -> None:
        """Keep the newest ``keep`` bytes past the head; count what falls out between."""
        if size >= self.keep:
            self._left_out += self._tail_size + size
            self._tail.clear()
            text = _tail_of(text, self.keep, whole=False)
            size = _size(text)
            self._left_out -= size
            self._tail_size = 0
        self._tail.append(text)
        self._tail_size += size
        while self._tail_size > self.keep:
            first = self._tail.popleft()
            first_size = _size(first)
            over = self._tail_size - self.keep
            if first_size <= over:
                self._tail_size -= first_size
                self._left_out += first_size
                continue
            rest = _tail_of(first, first_size - over, whole=True)
            rest_size = _size(rest)
            self._left_out += first_size - rest_size
            self._tail_size -= first_size - rest_size
            if rest:
                self._tail.appendleft(rest)
            break

    def end(self) -> None:
        """The execution is over (its outcome is being recorded): the next ``drain`` gives the
        marker of what was left out and the tail too."""
        with self._lock:
            self._ended = True

    def info(self, message: str) -> None:
        self.write(line("INFO", message))

    def warning(self, message: str) -> None:
        self.write(line("WARN", message))

    def error(self, message: str) -> None:
        self.write(line("ERROR", message))

    def exception(self, exc: BaseException) -> None:
        """Log a failure with its traceback: the log is for operators debugging a step."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.write(line("ERROR", f"{type(exc).__name__}: {exc}") + text)

    @property
    def held(self) -> int:
        """Bytes buffered now (the head not yet stored, and the tail): at most about twice
        ``keep``, whatever the step writes."""
        with self._lock:
            return sum(map(_size, self._lines)) + self._tail_size

    @property
    def pending(self) -> bool:
        return bool(self._lines) or (self._ended and bool(self._tail))

    def drain(self) -> str:
        with self._lock:
            if self._ended and (self._tail or self._left_out):
                if self._left_out:
                    lead = "\n" if self._cut_mid_line else ""
                    self._lines.append(f"{lead}... {byte_size(self._left_out)} left out ...\n")
                self._lines.extend(self._tail)
                self._tail.clear()
                self._tail_size = self._left_out = 0
                self._cut_mid_line = False
            text, self._lines = "".join(self._lines), []
        return text
