"""Row revisions: every UPDATE of a task or subtask row bumps that row's ``revision``.

A database trigger does it, so no writer (the runner's SQL, an operator action through the ORM,
a future module, a hand-run UPDATE) can forget. Readers then learn that a task is unchanged from
one small read, its revision with the count and sum of its subtasks' revisions, instead of
fetching and comparing every row (see ``snapshots``). The trigger touches only the row being
updated: nothing else is locked, so concurrent writers on PostgreSQL cannot deadlock over it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func

TABLES = ("task_instance", "subtask_instance")

_SQLITE = """
CREATE TRIGGER IF NOT EXISTS {table}_revision AFTER UPDATE ON {table}
FOR EACH ROW WHEN NEW.revision IS OLD.revision
BEGIN
    UPDATE {table} SET revision = coalesce(OLD.revision, 0) + 1 WHERE id = NEW.id;
END
"""
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ocptask_bump_revision() RETURNS trigger AS $$
BEGIN
    NEW.revision := coalesce(OLD.revision, 0) + 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE OR REPLACE TRIGGER {table}_revision BEFORE UPDATE ON {table}
FOR EACH ROW EXECUTE FUNCTION ocptask_bump_revision()
"""

_PG_EXISTING = f"""
SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relname IN ({", ".join(f"'{table}'" for table in TABLES)}) AND pg_table_is_visible(c.oid)
AND NOT t.tgisinternal
"""


def bumped(table: Table) -> dict[str, Any]:
    """The bump as a SET clause, for the runner's per-node UPDATEs: the trigger then sees the
    revision moved and does nothing, which spares SQLite its second UPDATE of the row. The value
    is the trigger's own (PostgreSQL's trigger sets it again, to the same)."""
    return {"revision": func.coalesce(table.c.revision, 0) + 1}


def install(conn: Connection) -> None:
    """Create the triggers if missing; runs inside the schema's serialised transaction."""
    if conn.dialect.name == "postgresql":
        # Only what is missing: CREATE TRIGGER locks its table, and an open of a database that
        # daemons are using (a daemon starting, ``serve``, a CLI command) would then take both
        # tables' locks in the opposite order to a daemon recording an end: a deadlock, which
        # PostgreSQL breaks by failing one of them, at times the daemon's end.
        have = set(conn.exec_driver_sql(_PG_EXISTING).scalars())
        missing = [table for table in TABLES if f"{table}_revision" not in have]
        if missing:
            conn.exec_driver_sql(_PG_FUNCTION)
        for table in missing:
            conn.exec_driver_sql(_PG_TRIGGER.format(table=table))
    else:
        for table in TABLES:
            conn.exec_driver_sql(_SQLITE.format(table=table))
