"""Opening a database that daemons are using: it must take no lock on their tables.

Every process that opens a PostgreSQL database (a daemon starting, ``serve``, each CLI command)
brings its schema up to date. Creating a trigger locks its table, in an order opposite to a
daemon recording an end; a deadlock then failed one side, at times a node's end (found by
``bench/in_flight.py``).
"""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import text

from engine import Engine, Node, Template
from engine.db.locations import resolve_url

BACKENDS = ["postgres"]


def test_an_open_waits_on_no_lock_a_running_daemon_holds(engine: Engine, db_url: str) -> None:
    task = engine.submit(Template("one", [Node("bench.noop.Noop", "a")]))
    other = sqlalchemy.create_engine(resolve_url(db_url))
    try:
        with other.connect() as busy:
            # What a daemon's transaction holds while it records an end: row locks on both
            # tables (ROW EXCLUSIVE), which CREATE TRIGGER's lock conflicts with.
            busy.execute(text("UPDATE subtask_instance SET timeout = timeout WHERE task_id = :t"),
                         {"t": task.id})  # fmt: skip
            busy.execute(text("UPDATE task_instance SET name = name WHERE id = :t"), {"t": task.id})
            # An open that waited on a lock would fail at once rather than hang the test.
            impatient = f"{db_url}?options=-c%20lock_timeout%3D2000"
            with Engine(impatient, parallelism=1) as opened:
                assert opened.get(task.id).id == task.id
            busy.rollback()
    finally:
        other.dispose()
