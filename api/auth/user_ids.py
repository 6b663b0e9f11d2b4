"""Users' ids by name, in plain SQL: OCP shows a creator's id beside its name, task records keep
the name only. Standard library only, so the CLI's quick reads of a SQLite file (``cli.reads``,
over ``engine.reads.sqlite_reader``) can show ids without importing SQLAlchemy; ``Users.ids``
runs the same statement.
"""

from __future__ import annotations

import sqlite3

USER_IDS = "SELECT name, id FROM api_user"


def sqlite_user_ids(conn: sqlite3.Connection) -> dict[str, int]:
    """Every user's id by name; none in a database that has no users table yet."""
    try:
        return dict(conn.execute(USER_IDS).fetchall())
    except sqlite3.OperationalError:
        return {}
