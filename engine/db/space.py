"""A database's size, and giving back the space a purge freed (``engine.retention``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from .store import Store


def size(store: Store) -> int | None:
    """The database's size in bytes: a SQLite file's with its write-ahead log, or
    PostgreSQL's ``pg_database_size``."""
    if store.is_sqlite:
        path = Path(store.engine.url.database or "")
        files = (path, path.with_name(path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.is_file()) if path.is_file() else None
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def reclaim(store: Store) -> None:
    """Give the freed pages back (SQLite with incremental auto-vacuum: the file shrinks once its
    write-ahead log is checkpointed; without it, SQLite reuses them for new rows). PostgreSQL's
    autovacuum reuses the space of removed rows: nothing to do."""
    if not store.is_sqlite:
        return
    with store.begin_write() as conn:
        # Stepped to the end: pysqlite's execute steps once, and each step frees one page.
        conn.connection.driver_connection.execute("PRAGMA incremental_vacuum").fetchall()  # type: ignore[union-attr]
    with store.engine.connect() as conn:  # outside any transaction, or nothing is checkpointed
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
