"""Holds: a task's claim on something it changes (an OBProxy cluster), one task at a time.

A task that changes a resource holds it from its submit until it ends well: while the holder is
RUNNING, or FAILED and not rolled back, anything else that would change the resource is refused
with ``ResourceBusy`` naming the holder. A holder that ended SUCCESSFUL (done, or rolled back)
releases it by being so: there is nothing to clean up, and a crash cannot leave a hold behind.

The hold is taken in the submit's own transaction (``take``, from ``Engine.submit``'s ``also``):
of two submits racing for one resource, in one process or several, exactly one commits it. A
taker replaces a released hold only if it is still the one it read (compare-and-set), so two
takers of a released hold cannot both win either. Reads are never held up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update
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


HOLDS = HoldRecord.__table__  # type: ignore[attr-defined]
# Locked: a change made without a task (``check``) and a task taking the hold over are
# serialised on the hold's row, so both cannot commit.
_HOLDER = select(HOLDS.c.task_id).where(HOLDS.c.resource == bindparam("resource")).with_for_update()
# A statement of its own, after the lock: on PostgreSQL (READ COMMITTED) each statement sees
# what was committed when it began, so a holder that committed while we waited for the lock is
# seen with its task. Read in the locking statement, its task row would be missing, and a
# missing task reads as free.
_TASK = select(TASKS.c.name, TASKS.c.status).where(TASKS.c.id == bindparam("task_id"))
_TAKE_OVER = (
    update(HOLDS)
    .where(HOLDS.c.resource == bindparam("b_resource"), HOLDS.c.task_id == bindparam("seen"))
    .values(task_id=bindparam("b_task_id"), since=bindparam("b_since"))
)


def take(conn: Connection, resource: str, task_id: int, what: str) -> None:
    """``task_id`` holds ``resource`` from now on; ResourceBusy if another task holds it.
    ``what`` names the resource in the refusal (``OBProxy cluster 3``)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(HOLDS), {"resource": resource, "task_id": task_id, "since": utcnow()}
            )
        return
    except IntegrityError:
        pass  # held, or held once: is the holder done?
    seen = _busy_holder(conn, resource, what)
    params = {"b_resource": resource, "seen": seen, "b_task_id": task_id, "b_since": utcnow()}
    if conn.execute(_TAKE_OVER, params).rowcount != 1:
        _busy_holder(conn, resource, what)  # another taker won meanwhile: name it
        raise ResourceBusy(f"{what} was just taken by another task; try again")


def holders(conn: Connection, resources: Sequence[str]) -> dict[str, int]:
    """The task holding each of ``resources`` now, by resource (for reads: nothing is locked).
    A resource whose holder ended well, or that was never held, is absent."""
    if not resources:
        return {}
    query = (
        select(HOLDS.c.resource, HOLDS.c.task_id)
        .join(TASKS, TASKS.c.id == HOLDS.c.task_id)
        .where(
            HOLDS.c.resource.in_(list(resources)),
            TASKS.c.status != TaskStatus.SUCCESSFUL.value,
        )
    )
    return {resource: task_id for resource, task_id in conn.execute(query)}


def forget(conn: Connection, resource: str) -> None:
    """The resource is gone (a deleted cluster): its hold row goes with it, whoever holds it."""
    conn.execute(delete(HOLDS).where(HOLDS.c.resource == resource))


def check(conn: Connection, resource: str, what: str) -> None:
    """ResourceBusy if a task holds ``resource`` now (for changes made without a task)."""
    _busy_holder(conn, resource, what)


def _busy_holder(conn: Connection, resource: str, what: str) -> int | None:
    """The id of the resource's released holder (None: never held); ResourceBusy if it is
    still held."""
    holder = conn.execute(_HOLDER, {"resource": resource}).scalar()
    if holder is None:
        return None
    task = conn.execute(_TASK, {"task_id": holder}).first()
    name, status = task if task is not None else (None, None)
    if status is None or status == TaskStatus.SUCCESSFUL.value:
        return holder  # its holder is done (or gone): free
    advice = (
        "wait for it to end"
        if status == TaskStatus.RUNNING.value
        else "retry it until it succeeds, or roll it back"
    )
    raise ResourceBusy(f"{what} is held by task {holder} ({name}), which is {status}: {advice}")
