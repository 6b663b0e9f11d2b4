"""SQL statements compiled once per dialect and run on a DBAPI connection: the runner's per-node
statements (inside the caller's transaction) and the API's one-row reads (outside any).

Through SQLAlchemy's ``Connection.execute`` each of them cost some 0.1 ms of Python (the
execution context, events, parameter processing, the result object), against some 10 µs in
the database: ten of them per node were most of the engine's per-node overhead. Here a
statement is compiled once per dialect; its parameters go through their types' own bind
processors and its columns through their result processors, as SQLAlchemy would do, so the
values written and read are the same.

``RowRead`` runs one for a one-statement read on a pooled connection. SQLAlchemy's Connection
costs more than such a read (a checkout, the ``begin`` event, the execution context and a
ROLLBACK on return: about 0.15 ms, against some 15 µs for the SELECT of one row by key); a
single statement is consistent on its own (SQLite in autocommit, one PostgreSQL snapshot), so
it skips all of that.

Statements with ``expanding`` parameters (``IN :list``) are refused: their SQL depends on the
values. Build one per list length instead (``in_list``).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.engine import Engine as SqlEngine

Processor = Callable[[Any], Any] | None


class StatementConn(Protocol):
    """A SQLAlchemy Connection, or the store's ``RawTransaction`` (``Store.raw_write``)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def connection(self) -> Any: ...


class RawTransaction:
    """A ``StatementConn`` over a pooled DBAPI connection (``.connection.dbapi_connection``, as
    on a SQLAlchemy Connection): ``Store.raw_write``'s transactions and ``RowRead``'s reads."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect


class _Compiled:
    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        for bind in compiled.binds.values():
            if bind.expanding:
                raise ValueError(f"{bind.key}: an expanding parameter cannot be compiled once")
        self.sql = str(compiled)
        self.names = list(compiled.positiontup or ()) if compiled.positional else None
        # Literals in the statement (a "waiting - 1", a coalesce's default) are binds as well.
        self.literals = {k: b.value for k, b in compiled.binds.items() if not b.required}
        self.encoders: dict[str, Processor] = {
            k: b.type.dialect_impl(dialect).bind_processor(dialect)
            for k, b in compiled.binds.items()
        }
        self.encoders = {k: f for k, f in self.encoders.items() if f is not None}
        columns = list(getattr(statement, "exported_columns", ()))
        self.keys = [c.key or f"_{i}" for i, c in enumerate(columns)]  # unnamed: by place
        if len(set(self.keys)) != len(self.keys):  # rows are dicts: a name may come only once
            raise ValueError(f"columns {self.keys}: label the ones that share a name")
        self.decoders: list[Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self.pairs = list(zip(self.keys, self.decoders, strict=True))
        # Positional (SQLite): each place's name, literal (if any) and encoder, in order.
        self.places = [
            (n, n in self.literals, self.literals.get(n), self.encoders.get(n))
            for n in self.names or ()
        ]

    def arguments(self, params: dict[str, Any]) -> Any:
        if self.names is None:
            values = {**self.literals, **params}
            for key, encode in self.encoders.items():
                if key in values and values[key] is not None:
                    values[key] = encode(values[key])  # type: ignore[misc]
            return values
        out = []
        for name, has_literal, literal, encode in self.places:
            value = params[name] if not has_literal or name in params else literal
            out.append(value if encode is None or value is None else encode(value))
        return tuple(out)


class Result:
    """What the runner reads of a statement's outcome: rows as dicts, a scalar, a rowcount."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return next(iter(self.rows[0].values())) if self.rows else None


class CompiledStatement:
    """A Core statement run as ``statement.run(conn, params)`` in place of ``conn.execute``."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    def run(self, conn: StatementConn, params: dict[str, Any]) -> Result:
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.arguments(params))
            rows: list[dict[str, Any]] = []
            if compiled.keys:
                pairs = compiled.pairs
                for row in cursor.fetchall():
                    rows.append(
                        {
                            k: v if f is None or v is None else f(v)
                            for (k, f), v in zip(pairs, row, strict=True)
                        }
                    )
            return Result(rows, cursor.rowcount)
        finally:
            cursor.close()


def in_list(column: ColumnElement[Any], name: str, count: int) -> ColumnElement[bool]:
    """``column IN (:name0, ..., :name<count-1>)``: an IN of fixed length, compiled once."""
    binds: list[BindParameter[Any]] = [bindparam(f"{name}{i}") for i in range(count)]
    return column.in_(binds)


def list_params(name: str, values: list[Any]) -> dict[str, Any]:
    return {f"{name}{i}": v for i, v in enumerate(values)}


class RowRead:
    """A compiled SELECT; ``first(**params)`` returns its first row (decoded, its columns also
    as attributes) or None."""

    def __init__(self, engine: SqlEngine, statement: Select[Any]) -> None:
        self._engine = engine
        self._statement = CompiledStatement(statement)
        names = [c.key or f"_{i}" for i, c in enumerate(statement.selected_columns)]
        self._row = namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def first(self, **params: Any) -> Any:
        conn = self._engine.raw_connection()
        try:
            row = self._statement.run(RawTransaction(conn, self._engine.dialect), params).first()
        finally:
            conn.close()  # back to the pool, which ends any transaction the read opened
        return None if row is None else self._row(*row.values())
