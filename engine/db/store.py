"""Where records live: one SQLAlchemy engine, and read/write transactions over it.

SQLite is the embedded default. Every write transaction starts with ``BEGIN IMMEDIATE`` so that two
writers never deadlock upgrading read locks, and writers queue on a lock (``write_lock``: threads
and processes) instead of in SQLite's busy handler, which sleeps in steps of up to 100 ms and would
dominate per-node latency.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, SQLModel, create_engine

from . import purges as _purges  # noqa: F401 - registers its table
from . import records as _records  # noqa: F401 - registers the engine's tables
from . import revisions, subjects
from .compiled import RawTransaction
from .locations import resolve_url
from .secrets import SecretBox
from .write_lock import WriteLock

_PG_CONNECT_ARGS = {  # libpq: connect within 10 s; a silent peer is dropped within ~15 s
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}
WORK_CHANNEL = "ocptask_work"
_NOTIFY_WORK = text(f"NOTIFY {WORK_CHANNEL}")
_process_locks: dict[str, WriteLock] = {}
_process_locks_guard = threading.Lock()


class Store:
    def __init__(self, db_url: str | None = None, *, pool_size: int = 10) -> None:
        self.url = resolve_url(db_url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:  # a dead server or network must fail a query in seconds, not hang it for minutes
            kwargs["connect_args"] = dict(_PG_CONNECT_ARGS)
            kwargs["pool_timeout"] = 10
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size * 2
        self.engine: SqlEngine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _sqlite_setup(self.engine)
            with _process_locks_guard:
                database = Path(self.engine.url.database or "")
                self._write_lock: WriteLock | None = _process_locks.setdefault(
                    self.url, WriteLock(database)
                )
                self._write_lock.users += 1
        else:
            self._write_lock = None
        self._holds_lock = self._write_lock is not None
        self._kept: Any = None  # see _raw_writer
        self._kept_pid = 0
        self._closing = False
        self._writer = self.engine.execution_options(ocptask_write=True)
        self._known_tables = 0
        self._secrets: SecretBox | None = None
        try:
            self.ensure_schema()
        except BaseException:
            self.close()  # lets go of the lock file and the pool it took
            raise

    def notify_work(self, conn: Connection | Session) -> None:
        """Tell listening daemons, when the caller's transaction commits, that subtasks may have
        turned READY (PostgreSQL NOTIFY; on SQLite daemons find work by polling)."""
        if not self.is_sqlite:
            conn.execute(_NOTIFY_WORK)

    @property
    def secrets(self) -> SecretBox:
        """Encrypts credentials; its key sits beside a SQLite database, never inside it."""
        if self._secrets is None:
            if self.is_sqlite and self.engine.url.database:
                key_file = Path(self.engine.url.database).parent / "secret.key"
            else:
                key_file = Path("~/.ocptask/secret.key").expanduser()
            self._secrets = SecretBox(key_file)
        return self._secrets

    def ensure_schema(self) -> None:
        """Create any table registered since the last call (task packages add their own)."""
        count = len(SQLModel.metadata.tables)
        if count != self._known_tables:
            # Several processes may start at once (daemons): create tables in one serialised
            # transaction (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL).
            with self.begin_write() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7212001)")
                had = set(inspect(conn).get_table_names())
                SQLModel.metadata.create_all(conn)
                if subjects.SUBJECTS.name not in had:  # an older database: its tasks' rows
                    subjects.backfill(conn)
                _add_missing_columns(conn)
                _add_missing_indexes(conn)
                revisions.install(conn)
            self._known_tables = count

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            yield

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back (nothing written) on error."""
        with self._locked(), Session(self._writer, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def begin_write(self) -> Iterator[Connection]:
        """A write transaction at the SQL-expression level, for the runner's hot path."""
        with self._locked(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def raw_write(self) -> Iterator[RawTransaction]:
        """A write transaction for ``compiled`` statements only (the runner's per-node path), on
        a pooled DBAPI connection: SQLAlchemy's Connection, its events and its transaction
        object cost as much as the statements they would carry. Committed on success, rolled
        back on error, as ``begin_write``."""
        with self._locked():
            fairy = self._raw_writer()
            dbapi = fairy.dbapi_connection
            try:
                if self.is_sqlite:  # pysqlite is left in autocommit: begin as begin_write does
                    dbapi.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                yield RawTransaction(fairy, self.engine.dialect)
                dbapi.commit()  # type: ignore[union-attr]
            except BaseException:
                try:
                    dbapi.rollback()  # type: ignore[union-attr]
                except Exception:  # the error that brought us here is the one to tell
                    self._drop_raw_writer(fairy)
                raise
            finally:
                if fairy is not self._kept:
                    fairy.close()  # back to the pool

    def _raw_writer(self) -> Any:
        """SQLite: one connection kept for ``raw_write`` (only the holder of the write lock uses
        it), which spares every transaction the pool's checkout and reset; PostgreSQL, whose
        writers run side by side: one from the pool."""
        if not self.is_sqlite or self._closing:
            return self._writer.raw_connection()
        if self._kept is None or self._kept_pid != os.getpid():  # a forked child: its own
            self._kept = self._writer.raw_connection()
            self._kept_pid = os.getpid()
        return self._kept

    def _drop_raw_writer(self, fairy: Any) -> None:
        """A connection that cannot even roll back is not used again."""
        with suppress(Exception):
            fairy.invalidate()
        if fairy is self._kept:
            self._kept = None

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def close(self) -> None:
        self._closing = True
        kept, self._kept = self._kept, None
        if kept is not None and self._kept_pid == os.getpid():
            with suppress(Exception), self._locked():
                kept.close()  # back to the pool, which disposes of it
        self.engine.dispose()
        lock = self._write_lock
        if lock is not None and self._holds_lock:
            self._holds_lock = False
            with _process_locks_guard:  # the last Store of this database lets go of its lock file
                lock.users -= 1
                if lock.users == 0:
                    _process_locks.pop(self.url, None)
                    lock.close()


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _sqlite_setup(engine: SqlEngine) -> None:
    database = Path(engine.url.database) if engine.url.database else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite would
        # otherwise BEGIN DEFERRED on its own).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if database is not None and _empty(database):
            # A new database (an empty file): freed pages can be given back
            # (``engine.retention``). It only takes before anything is written, WAL mode's
            # header included. An older database keeps auto_vacuum=NONE (switching needs a full
            # VACUUM, never run here): SQLite reuses its freed pages, so it stops growing.
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint every ~40 MB of WAL, not SQLite's 4 MB: a checkpoint syncs the files and
        # copies each page once, and the runner's commits rewrite the same few pages (the
        # subtasks' rows and status indexes) again and again. At 4 MB the checkpoints were some
        # 60% of the commit time of a 1,000-node chain (bench/engine_overhead.py).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the DBAPI connection itself: through exec_driver_sql the BEGIN cost as much
        # Python as a whole statement of the runner's path (see compiled).
        immediate = conn.get_execution_options().get("ocptask_write")
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _add_missing_indexes(conn: Connection) -> None:
    """An older database gains the indexes of tables it already has (``create_all`` makes the
    indexes of the tables it creates, and no other), and one it has by a name whose columns
    have changed is made again (once: an index is only touched when it differs, since making
    one locks its table)."""
    existing = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        have = {ix["name"]: ix.get("column_names") for ix in existing.get_indexes(table.name)}
        for index in table.indexes:
            columns = [column.name for column in index.columns]
            if have.get(index.name) == columns:
                continue
            if index.name in have:
                index.drop(conn)
            index.create(conn)


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an older ocptask up to date: new columns are always nullable,
    so adding them keeps every existing row valid (a new NOT NULL column would need a real
    migration and is refused here with the table and column named)."""
    existing = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"database schema is older than this ocptask: {table.name}.{column.name} "
                    "is missing and cannot be added to existing rows"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
