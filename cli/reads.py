"""A SQLite database read without an Engine, for ``task list`` and ``task show``: started in a
fraction of the time an Engine takes to import (no SQLAlchemy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.reads.sqlite_reader import SqliteReader
    from engine.task import Task

    from .common import TaskListing


class Reads:
    """A SQLite database read without an Engine (``engine.reads.sqlite_reader``)."""

    def __init__(self, reader: SqliteReader, db: str | None) -> None:
        self.reader = reader
        self.where = f"--db {db}" if db else ""

    @classmethod
    def open(cls, db: str | None) -> Reads | None:
        """None when the reader cannot vouch for the database: then an Engine opens it."""
        from engine.reads.sqlite_reader import SqliteReader

        reader = SqliteReader.open(db)
        return None if reader is None else cls(reader, db)

    def close(self) -> None:
        self.reader.close()

    def get(self, task_id: int) -> Task:
        from engine.errors import TaskNotFound, found

        return found(self.reader.get(task_id), TaskNotFound, task_id)

    def tasks(self, wanted: TaskListing) -> list[dict[str, Any]]:
        from api.auth.user_ids import sqlite_user_ids

        found = self.reader.page(**wanted.page_arguments())
        return basic(found, sqlite_user_ids(self.reader.connection))

    def host_labels(self, task: Task) -> dict[int, str]:
        def label(host_id: str) -> str:
            host = self.reader.host(int(host_id)) if host_id.isdigit() else None
            return f"host {host_id}" if host is None else f"{host[0]} ({host[1]})"

        return task.host_labels(label)


def basic(tasks: list[Task], creator_ids: dict[str, int]) -> list[dict[str, Any]]:
    """OCP's BasicTaskInstance of each, as the API's list shows them."""
    from api.task_records import basic as record

    return [record(t, creator_ids.get(t.creator)) for t in tasks]
