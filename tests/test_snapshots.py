"""Cached task snapshots: reused while a task is unchanged, never stale after any write.

Writes are made with SQL on a connection of its own, as another process (a daemon, an operator's
hand-run UPDATE) would: the snapshot must not depend on the writer going through the Engine.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy
from sqlalchemy import text

from engine import Engine, SubtaskStatus
from engine.clock import utcnow
from engine.db.locations import resolve_url
from tests.helpers import chain

BACKENDS = ["sqlite", "postgres"]


def write(other: sqlalchemy.Engine, sql: str, **params: object) -> None:
    with other.begin() as conn:
        conn.execute(text(sql), params)


def revision_of(other: sqlalchemy.Engine, subtask_id: int) -> int:
    with other.connect() as conn:
        query = text("SELECT revision FROM subtask_instance WHERE id = :id")
        return int(conn.execute(query, {"id": subtask_id}).scalar_one())


def test_unchanged_task_reuses_its_snapshot(engine: Engine) -> None:
    task = engine.submit(chain("A", "B"))
    first = engine.get(task.id)
    assert engine.get(task.id) is first
    assert engine.list()[0] is first  # a page checks the same revisions


def test_any_subtask_write_is_seen(engine: Engine, other: sqlalchemy.Engine) -> None:
    task = engine.submit(chain("A", "B", "C"))
    before = engine.get(task.id)
    last = task.subtasks[-1].id
    write(other, "UPDATE subtask_instance SET status = 'FAILED' WHERE id = :id", id=last)
    after = engine.get(task.id)
    assert after is not before
    assert after.subtasks[-1].status is SubtaskStatus.FAILED
    write(other, "UPDATE subtask_instance SET description = 'changed' WHERE id = :id", id=last)
    assert engine.get(task.id).subtasks[-1].description == "changed"


def test_task_row_write_is_seen(engine: Engine, other: sqlalchemy.Engine) -> None:
    task = engine.submit(chain("A"))
    engine.get(task.id)
    write(other, "UPDATE task_instance SET name = 'renamed' WHERE id = :id", id=task.id)
    assert engine.get(task.id).name == "renamed"


def test_lease_renewal_keeps_the_snapshot(engine: Engine, other: sqlalchemy.Engine) -> None:
    """A running subtask's lease changes every few seconds and is not shown: the revision moves,
    the rows compare equal, and the same snapshot is handed out."""
    task = engine.submit(chain("A", "B"))
    before = engine.get(task.id)
    sub = task.subtasks[0].id
    was = revision_of(other, sub)
    write(
        other,
        "UPDATE subtask_instance SET acquired_until = :t WHERE id = :id",
        t=utcnow() + timedelta(seconds=30),
        id=sub,
    )
    assert revision_of(other, sub) == was + 1
    assert engine.get(task.id) is before


def test_page_sees_the_one_changed_task(engine: Engine, other: sqlalchemy.Engine) -> None:
    tasks = [engine.submit(chain("A", "B")) for _ in range(3)]
    before = {t.id: t for t in engine.list()}
    changed = tasks[1]
    write(
        other,
        "UPDATE subtask_instance SET status = 'FAILED' WHERE id = :id",
        id=changed.subtasks[0].id,
    )
    after = {t.id: t for t in engine.list()}
    assert after[changed.id].subtasks[0].status is SubtaskStatus.FAILED
    for t in tasks:
        if t.id != changed.id:
            assert after[t.id] is before[t.id]


def test_database_without_revisions_gains_them(db_path) -> None:  # type: ignore[no-untyped-def]
    """A database made before revisions existed: the columns are added (its rows read as
    revision 0), the triggers installed, and writes are seen from then on."""
    with Engine(str(db_path)) as eng:
        task = eng.submit(chain("A", "B"))
    raw = sqlalchemy.create_engine(resolve_url(str(db_path)))
    with raw.begin() as conn:
        for table in ("task_instance", "subtask_instance"):
            conn.execute(text(f"DROP TRIGGER {table}_revision"))
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN revision"))
    with Engine(str(db_path)) as eng:
        with raw.connect() as conn:
            assert conn.execute(text("SELECT revision FROM subtask_instance")).all() == [
                (None,),
                (None,),
            ]
        before = eng.get(task.id)
        assert eng.get(task.id) is before
        write(
            raw,
            "UPDATE subtask_instance SET status = 'FAILED' WHERE id = :id",
            id=task.subtasks[1].id,
        )
        assert eng.get(task.id).subtasks[1].status is SubtaskStatus.FAILED
    raw.dispose()
