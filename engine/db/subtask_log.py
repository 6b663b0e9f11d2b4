"""Subtask logs as OCP shows them: a header per execution, then timestamped lines.

Steps log through a ``SubtaskLogger``: lines are buffered and written in batches (at the end of the
execution and periodically by the runner) so logging never costs a transaction per line, and every
registered secret is masked before a line is stored.
"""

from __future__ import annotations

import threading
import traceback
from datetime import datetime

from sqlalchemy import bindparam, insert
from sqlmodel import Session

from engine.clock import ocp_time, utcnow

from .compiled import CompiledStatement, StatementConn
from .records import LOGS

MASK = "******"


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
    """What a step writes to. Thread-safe; flushed by the runner, never by the step."""

    def __init__(self, subtask_id: int, secrets: set[str] | None = None) -> None:
        self.subtask_id = subtask_id
        self._secrets: set[str] = set(secrets or ())
        self._lines: list[str] = []
        self._lock = threading.Lock()

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
            self._lines.append(self.redact(text))

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
    def pending(self) -> bool:
        return bool(self._lines)

    def drain(self) -> str:
        with self._lock:
            text, self._lines = "".join(self._lines), []
        return text
