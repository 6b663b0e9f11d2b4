"""Database tables for tasks, subtasks and subtask logs.

Portable SQL only (SQLite by default, PostgreSQL for several daemons): JSON columns for lists and
contexts, UTC timestamps, and ``sqlite_autoincrement`` so task and subtask ids are two separate,
never-reused, increasing sequences as in OCP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Integer, Table, Text, text
from sqlmodel import Field, SQLModel

from engine.clock import utcnow


def json_column(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def timestamp(nullable: bool = True) -> Any:
    """A UTC time column; the non-nullable kind defaults to now."""
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def revision() -> Any:
    """Bumped on every UPDATE of the row by a trigger, or by the statement itself in the same way
    (``revisions``); never set to a value of a writer's own.
    Nullable only so that an older database gains the column (its rows read as revision 0)."""
    return Field(default=0, sa_column=Column(Integer, nullable=True, server_default=text("0")))


class TaskRecord(SQLModel, table=True):
    __tablename__ = "task_instance"
    # Lists walk these in id order (``engine.reads.task_lists``).
    __table_args__ = (
        Index("ix_task_instance_status", "status", "id"),
        Index("ix_task_instance_name", "name", "id"),
        Index("ix_task_instance_type", "type", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str
    type: str
    status: str
    operation: str
    creator: str
    executor: str | None = None
    task_definition_id: int = -1
    context: dict[str, Any] = json_column(dict)
    # The request the task was created from, for its steps to read. Never part of to_ocp().
    payload: dict[str, Any] = json_column(dict)
    create_time: datetime = timestamp(nullable=False)
    start_time: datetime | None = timestamp()
    finish_time: datetime | None = timestamp()
    revision: int | None = revision()


class SubtaskRecord(SQLModel, table=True):
    __tablename__ = "subtask_instance"
    __table_args__ = (
        Index("ix_subtask_instance_task_status", "task_id", "status"),
        Index("ix_subtask_instance_status", "status"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task_instance.id")
    series_id: int
    name: str
    description: str
    class_name: str
    node_type: str
    timeout: int
    status: str
    operation: str
    executor: str | None = None
    # The executor's lease on a RUNNING subtask: renewed while it runs; once it lapses (or if it
    # was never set) the executor counts as lost. NULL whenever the subtask is not running.
    acquired_until: datetime | None = timestamp()
    # The executor lost while running this subtask: its next run (re-run, retry, rollback) calls
    # the step's clean() first. Cleared when that run is claimed.
    lost_executor: str | None = None
    run_time: int = 1
    parallel_idx: int = -1
    prohibit_rollback: bool = False
    context: dict[str, Any] = json_column(dict)
    upstreams: list[int] = json_column(list)
    downstreams: list[int] = json_column(list)
    # Upstreams not yet SUCCESSFUL, counted down in the transaction where each succeeds: a join
    # is looked at whole once, when it reaches 0, not once per finishing upstream. NULL in rows
    # made before the column existed (those are looked at whole every time).
    waiting: int | None = None
    create_time: datetime = timestamp(nullable=False)
    start_time: datetime | None = timestamp()
    finish_time: datetime | None = timestamp()
    revision: int | None = revision()


class SubtaskLogRecord(SQLModel, table=True):
    """Append-only log chunks; a subtask's log is its chunks in id order."""

    __tablename__ = "subtask_log"
    __table_args__ = (Index("ix_subtask_log_subtask", "subtask_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    subtask_id: int = Field(foreign_key="subtask_instance.id")
    text: str = Field(sa_column=Column(Text, nullable=False))


# The tables as SQL expressions, for the statements on the runner's hot path (no ORM there).
TASKS: Table = TaskRecord.__table__  # type: ignore[attr-defined]
SUBTASKS: Table = SubtaskRecord.__table__  # type: ignore[attr-defined]
LOGS: Table = SubtaskLogRecord.__table__  # type: ignore[attr-defined]
