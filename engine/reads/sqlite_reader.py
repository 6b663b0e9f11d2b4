"""Task reads of a SQLite database with the standard library alone, for a command that reads a
page and exits (``ocptask task list``, ``task show``).

Importing SQLAlchemy costs more than such a command's whole start-up budget (issue 11: 0.4 s),
so these reads skip it. The rows become the very snapshots an Engine builds
(``Task.from_records``), lists are the same SQL on the same columns (``task_lists``), and a test
holds this reader's answers equal to the Engine's on every status. A database this reader cannot
vouch for (no file yet, tables or columns it does not know) gives None from ``open``, and the
caller opens an Engine, which creates or completes the schema.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from engine.clock import as_utc
from engine.db.locations import sqlite_file
from engine.db.row_ids import is_row_id
from engine.task import Task

from .list_sql import all_ids, list_page
from .task_lists import SUBTASK_COLUMNS, TASK_COLUMNS, in_chunks, matching, task_query

_JSON = {"context", "payload", "upstreams", "downstreams"}
_TIMES = {"create_time", "start_time", "finish_time"}
_QUERIES = {
    "tasks": f"SELECT {', '.join(TASK_COLUMNS)} FROM task_instance",
    "subtasks": f"SELECT {', '.join(SUBTASK_COLUMNS)} FROM subtask_instance",
    "hosts": "SELECT name, inner_ip_address FROM host",
    "subjects": "SELECT task_id, kind, key, name FROM task_subject",
}
# The indexes its lists walk (``task_lists``); a database without them (older than they are)
# is opened by an Engine, which adds them.
_INDEXES = {"ix_task_instance_name", "ix_task_instance_type", "ix_task_subject_key"}


class SqliteReader:
    """Reads on one connection; it makes no schema and writes no row."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, db_url: str | None) -> SqliteReader | None:
        """A reader of the SQLite file the Engine would open, or None (see the module)."""
        path = sqlite_file(db_url)
        try:
            if path is None or not path.is_file():
                return None
            # Autocommit, so that each read below is one explicit transaction: a task and its
            # subtasks come from one snapshot of the database, as the Engine reads them.
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error):  # unreadable: the Engine says why
            return None
        try:
            for query in _QUERIES.values():  # every table and column it reads is there
                conn.execute(query + " LIMIT 0")
            indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not _INDEXES <= {row[0] for row in indexes}:
                conn.close()
                return None
        except sqlite3.Error:
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def page(
        self, *, match: Callable[[Task], bool] | None = None, limit: int = 10, **filters: Any
    ) -> list[Task]:
        """Newest first, as ``Engine.page`` with its default order; ``filters`` are
        ``task_query``'s (``statuses``, ``name``, ``task_type``, ``host_id``, ``after``...)."""
        query = task_query(**filters)
        run = self._run
        if match is None:
            return self._load(list_page(run, query, limit=limit, count=False)[0])
        chunks = in_chunks(all_ids(run, query))
        return matching(chunks, self._load, match, limit=limit, count=False)[0]

    def _run(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    def get(self, task_id: int) -> Task | None:
        found = self._load([task_id]) if is_row_id(task_id) else []
        return found[0] if found else None

    @property
    def connection(self) -> sqlite3.Connection:
        """For reads of tables the engine does not know (a surface's own)."""
        return self._conn

    def host(self, host_id: int) -> tuple[str, str] | None:
        if not is_row_id(host_id):
            return None
        row = self._conn.execute(_QUERIES["hosts"] + " WHERE id = ?", (host_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _load(self, ids: list[int]) -> list[Task]:
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        query = _QUERIES["subtasks"] + f" WHERE task_id IN ({marks}) ORDER BY id"
        self._conn.execute("BEGIN")
        try:
            tasks = self._conn.execute(_QUERIES["tasks"] + f" WHERE id IN ({marks})", ids)
            task_rows, sub_rows = tasks.fetchall(), self._conn.execute(query, ids).fetchall()
        finally:
            self._conn.execute("COMMIT")
        subs: dict[int, list[SimpleNamespace]] = {i: [] for i in ids}
        for row in sub_rows:
            sub = _decoded(SUBTASK_COLUMNS, row)
            sub.prohibit_rollback = bool(sub.prohibit_rollback)
            subs[sub.task_id].append(sub)
        by_id = {r[0]: Task.from_records(_decoded(TASK_COLUMNS, r), subs[r[0]]) for r in task_rows}
        return [by_id[i] for i in ids if i in by_id]


def _decoded(columns: list[str], row: Sequence[Any]) -> SimpleNamespace:
    """As SQLAlchemy's JSON and DateTime types read them back from SQLite."""
    values = {}
    for column, value in zip(columns, row, strict=True):
        if value is not None and column in _JSON:
            value = json.loads(value)
        elif value is not None and column in _TIMES:
            value = as_utc(datetime.fromisoformat(value))
        values[column] = value
    return SimpleNamespace(**values)
