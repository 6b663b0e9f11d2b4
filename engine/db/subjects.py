"""What each task is about: the hosts it works on and the clusters it concerns, one row each.

Task lists filtered by host or cluster, a host's "is a task running on it", and retention all ask
"which tasks concern X". Answered from the tasks' JSON they scan every task ever run; answered
here they are an index range. Rows are written in the submit's own transaction (``write``), so a
task is never visible without them, and a database made before this table existed gains them the
first time it is opened (``backfill``).

The rule of what a task is about is ``engine.concerns``'s, shared with the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, Table, Text, insert, select
from sqlmodel import Field, SQLModel

from engine.concerns import subjects

from .records import TASKS

BACKFILL_CHUNK = 500
"""Tasks read at a time when an older database gains its rows: bounded memory."""


class TaskSubjectRecord(SQLModel, table=True):
    __tablename__ = "task_subject"
    __table_args__ = (
        Index("ix_task_subject_key", "kind", "key", "task_id"),
        Index("ix_task_subject_name", "kind", "name", "task_id"),
        Index("ix_task_subject_task", "task_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(sa_column=Column(Integer, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))  # one of engine.concerns' kinds
    # The host's or cluster's id; NULL for an obLink that names a cluster without its id.
    key: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # A cluster's name as its request spelt it, for fuzzy lookups by name; NULL for hosts.
    name: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


SUBJECTS: Table = TaskSubjectRecord.__table__  # type: ignore[attr-defined]


def _rows(
    tasks: Iterable[tuple[int, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> Iterator[dict[str, Any]]:
    for task_id, context, payload in tasks:
        for kind, key, name in subjects(context, payload):
            yield {"task_id": task_id, "kind": kind, "key": key, "name": name}


def write(
    conn: Connection,
    tasks: Iterable[tuple[int, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> None:
    """Record what each (task id, context JSON, payload) is about, in the caller's transaction."""
    rows = list(_rows(tasks))
    if rows:
        conn.execute(insert(SUBJECTS), rows)


def backfill(conn: Connection) -> int:
    """Give every task of an older database its rows (run once, when the table is created, in
    the schema's transaction); answers how many tasks were read."""
    last, seen = 0, 0
    while True:
        query = (
            select(TASKS.c.id, TASKS.c.context, TASKS.c.payload)
            .where(TASKS.c.id > last)
            .order_by(TASKS.c.id)
            .limit(BACKFILL_CHUNK)
        )
        chunk = conn.execute(query).all()
        if not chunk:
            return seen
        write(conn, ((row.id, row.context, row.payload) for row in chunk))
        last, seen = chunk[-1].id, seen + len(chunk)
