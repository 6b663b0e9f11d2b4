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
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Engine as SqlEngine


class FastRead:
    """A compiled SELECT; ``first(**params)`` returns its first row (decoded, its columns also
    as attributes) or None."""

    def __init__(self, engine: SqlEngine, statement: Select[Any]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._sql = str(compiled)
        self._names = list(compiled.positiontup or ()) if compiled.positional else None
        # Literals in the statement (a coalesce's 0) are bound parameters too.
        self._literals = {k: b.value for k, b in compiled.binds.items() if not b.required}
        self._decoders: list[Callable[[Any], Any] | None] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None)
            for c in statement.selected_columns
        ]
        names = [c.key or f"_{i}" for i, c in enumerate(statement.selected_columns)]
        self._row = namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def first(self, **params: Any) -> Any:
        values = {**self._literals, **params}
        args: Any = values if self._names is None else tuple(values[n] for n in self._names)
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(self._sql, args)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool, which ends any transaction the read opened
        if row is None:
            return None
        pairs = zip(self._decoders, row, strict=True)
        return self._row(*(v if f is None or v is None else f(v) for f, v in pairs))
