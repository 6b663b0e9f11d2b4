"""One-statement reads for the API's hottest paths, on a pooled DBAPI connection.

SQLAlchemy's Connection costs more than the reads it carries here: a checkout, the ``begin``
event (SQLite's explicit BEGIN), the execution context, and a ROLLBACK on return come to about
0.15 ms, against some 15 µs for the SELECT of one row by key. A single statement is consistent on
its own (SQLite in autocommit, one PostgreSQL snapshot), so these reads skip all of that: the
statement is compiled once for the dialect and run on a raw connection from the same pool,
and its columns are decoded by their types' own result processors, as a typed select would.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Engine as SqlEngine

from .hot_sql import HotStatement, RawTransaction


class FastRead:
    """A compiled SELECT; ``first(**params)`` returns its first row (decoded, its columns also
    as attributes) or None."""

    def __init__(self, engine: SqlEngine, statement: Select[Any]) -> None:
        self._engine = engine
        self._statement = HotStatement(statement)
        names = [c.key or f"_{i}" for i, c in enumerate(statement.selected_columns)]
        self._row = namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def first(self, **params: Any) -> Any:
        conn = self._engine.raw_connection()
        try:
            row = self._statement.run(RawTransaction(conn, self._engine.dialect), params).first()
        finally:
            conn.close()  # back to the pool, which ends any transaction the read opened
        return None if row is None else self._row(*row.values())
