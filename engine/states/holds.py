"""Holds: a task's claim on something it changes (an OBProxy cluster), one task at a time.

A task that changes a resource holds it from its submit until it ends well: while the holder is
RUNNING, or FAILED and not rolled back, anything else that would change the resource is refused
with ``ResourceBusy`` naming the holder. A holder that ended SUCCESSFUL (done, or rolled back)
releases it by being so: there is nothing to clean up, and a crash cannot leave a hold behind.

The hold is taken in the submit's own transaction (``take``, from ``Engine.submit``'s ``also``):
of two submits racing for one resource, in one process or several, exactly one commits it. A
taker replaces a released hold only if it is still the one it read (compare-and-set), so two
takers of a released hold cannot both win either. Reads are never held up.

A batch of tasks made by one call (one "Install obproxy" per host) holds a resource together:
the first is the hold's ``task_id``, the others its ``batch``. The resource is busy while any
of them is not SUCCESSFUL, so the tasks of one call run side by side, no other operation starts
until every one of them ended well, and a failed one keeps the resource held.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.db.records import TASKS, timestamp
from engine.enums import TaskStatus
from engine.errors import ResourceBusy


class HoldRecord(SQLModel, table=True):
    __tablename__ = "task_hold"

    resource: str = Field(primary_key=True)  # e.g. "obproxy_cluster:3"
    task_id: int
    since: datetime = timestamp(nullable=False)
    # The other tasks of a batch holding it with task_id (NULL: task_id alone; an older
    # database gains the column empty).
    batch: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


HOLDS = HoldRecord.__table__  # type: ignore[attr-defined]
# Locked: a change made without a task (``check``) and a task taking the hold over are
# serialised on the hold's row, so both cannot commit.
_HOLDER = (
    select(HOLDS.c.task_id, HOLDS.c.batch)
    .where(HOLDS.c.resource == bindparam("resource"))
    .with_for_update()
)
# A statement of its own, after the lock: on PostgreSQL (READ COMMITTED) each statement sees
# what was committed when it began, so a holder that committed while we waited for the lock is
# seen with its task. Read in the locking statement, its task row would be missing, and a
# missing task reads as free.
_TASKS = select(TASKS.c.id, TASKS.c.name, TASKS.c.status).where(
    TASKS.c.id.in_(bindparam("ids", expanding=True))
)
_TAKE_OVER = (
    update(HOLDS)
    .where(HOLDS.c.resource == bindparam("b_resource"), HOLDS.c.task_id == bindparam("seen"))
    .values(task_id=bindparam("b_task_id"), since=bindparam("b_since"), batch=bindparam("b_batch"))
)


def take(
    conn: Connection, resource: str, task_id: int, what: str, *, batch: Sequence[int] = ()
) -> None:
    """``task_id`` (with the other tasks of its ``batch``) holds ``resource`` from now on;
    ResourceBusy if another task holds it. ``what`` names the resource in the refusal
    (``OBProxy cluster 3``)."""
    others = [i for i in batch if i != task_id] or None
    try:
        with conn.begin_nested():
            conn.execute(
                insert(HOLDS),
                {"resource": resource, "task_id": task_id, "since": utcnow(), "batch": others},
            )
        return
    except IntegrityError:
        pass  # held, or held once: is the holder done?
    seen = _busy_holder(conn, resource, what)
    params: dict[str, Any] = {
        "b_resource": resource,
        "seen": seen,
        "b_task_id": task_id,
        "b_since": utcnow(),
        "b_batch": others,
    }
    if conn.execute(_TAKE_OVER, params).rowcount != 1:
        _busy_holder(conn, resource, what)  # another taker won meanwhile: name it
        raise ResourceBusy(f"{what} was just taken by another task; try again")


def holders(conn: Connection, resources: Sequence[str]) -> dict[str, list[int]]:
    """The tasks holding each of ``resources`` now, by resource, in the order they were made
    (for reads: nothing is locked): those of the holding batch that did not end well. A
    resource whose holders all ended well, or that was never held, is absent."""
    if not resources:
        return {}
    rows = conn.execute(
        select(HOLDS.c.resource, HOLDS.c.task_id, HOLDS.c.batch).where(
            HOLDS.c.resource.in_(list(resources))
        )
    ).all()
    members = {resource: [task_id, *(batch or ())] for resource, task_id, batch in rows}
    unfinished = _unfinished(conn, [i for ids in members.values() for i in ids])
    found = {}
    for resource, ids in members.items():
        busy = [i for i in ids if i in unfinished]
        if busy:
            found[resource] = busy
    return found


def _unfinished(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(name, status) of each of these tasks that is not SUCCESSFUL (a task gone is absent)."""
    if not ids:
        return {}
    rows = conn.execute(_TASKS, {"ids": list(ids)})
    return {i: (name, status) for i, name, status in rows if status != TaskStatus.SUCCESSFUL.value}


def forget(conn: Connection, resource: str) -> None:
    """The resource is gone (a deleted cluster): its hold row goes with it, whoever holds it."""
    conn.execute(delete(HOLDS).where(HOLDS.c.resource == resource))


def check(conn: Connection, resource: str, what: str) -> None:
    """ResourceBusy if a task holds ``resource`` now (for changes made without a task)."""
    _busy_holder(conn, resource, what)


def _busy_holder(conn: Connection, resource: str, what: str) -> int | None:
    """The id of the resource's released holder (None: never held); ResourceBusy naming the
    first of its batch that still holds it."""
    row = conn.execute(_HOLDER, {"resource": resource}).first()
    if row is None:
        return None
    holder, batch = row
    ids = [holder, *(batch or ())]
    unfinished = _unfinished(conn, ids)
    busy = [i for i in ids if i in unfinished]
    if not busy:
        return holder  # its holders are done (or gone): free
    holder = busy[0]
    name, status = unfinished[holder]
    advice = (
        "wait for it to end"
        if status == TaskStatus.RUNNING.value
        else "retry it until it succeeds, or roll it back"
    )
    raise ResourceBusy(f"{what} is held by task {holder} ({name}), which is {status}: {advice}")
