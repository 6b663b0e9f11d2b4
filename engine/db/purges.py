"""A row per purge that removed tasks, written in the transaction that removes them.

Counts of task lists are kept between reads (``engine.reads.list_sql.Counts``): a list whose
matches cannot change once written (no status filter) is recounted only over the tasks added
since. Tasks leave only by a purge, and a new row here tells a kept count that it no longer holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Connection, Integer, insert
from sqlmodel import Field, SQLModel

from engine.clock import utcnow

from .records import timestamp


class TaskPurgeRecord(SQLModel, table=True):
    __tablename__ = "task_purge"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = timestamp(nullable=False)
    tasks: int = Field(sa_column=Column(Integer, nullable=False))


PURGES = TaskPurgeRecord.__table__  # type: ignore[attr-defined]


def mark(conn: Connection, tasks: int) -> None:
    """Say, in the removing transaction, that ``tasks`` tasks went."""
    conn.execute(insert(PURGES), {"at": utcnow(), "tasks": tasks})
