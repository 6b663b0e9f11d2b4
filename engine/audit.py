"""Audit events: who changed what, from where, with what result, as OCP's ``AuditEventHistory``
(``GET /api/v2/audit/events``).

One table and one writer for every surface. A state-changing call is recorded where all its
surfaces meet (``audit_calls``): the task packages' embedded calls (``audited``, with their OCP
event names), the registries' changes (``recorded``) and the Engine's task operations
(``task_operation``). The HTTP API, the console and ``--db``
commands are thin layers over those, so each call is recorded once, whoever made it; a surface
only says who is calling (``acting_as``/``set_caller``: the user, its id, the client's address).
A call refused before it reached one of those (a permission, in the API) is recorded by the
surface with ``AuditEvents.record``; an error that was recorded is marked (``was_recorded``) so
that it is not recorded twice.

What an event keeps of the request (``eventInfo``) is what its task package chose to show:
secrets masked by that package's rule, never a password. Writing an event never fails the call
it describes (it already happened): a failed write is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, func, insert, or_, select
from sqlmodel import Field, SQLModel

from engine.clock import as_utc, ocp_time, utcnow
from engine.db.store import Store

log = logging.getLogger("ocptask.audit")

SUCCESS, FAILED = "SUCCESS", "FAILED"
NEW, RETRY = "NEW", "RETRY"


class AuditEventRecord(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_start_time", "start_time"),
        Index("ix_audit_event_task_id", "task_id"),
    )  # rows are never deleted: ids increase without SQLite's AUTOINCREMENT bookkeeping

    id: int | None = Field(default=None, primary_key=True)
    operation_event: str
    event_type: str
    resource_type: str | None = None
    resource_id: int | None = None
    resource_name: str | None = None
    parent_resource: str | None = None
    operator_name: str | None = None
    operator_id: int | None = None
    status: str
    task_id: int | None = None
    # Every task the call started, ",1,2,3," (a call per host starts several; taskId is the
    # first): how a retry of any of them finds the call's event. Not part of OCP's record.
    task_ids: str | None = None
    execution_type: str
    event_info: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    client_ip: str | None = None
    start_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    end_time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


EVENTS = AuditEventRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Operation:
    """What a call is, in OCP's terms: its operation event, event type and resource type."""

    event: str
    event_type: str
    resource_type: str | None


@dataclass(frozen=True)
class Resource:
    id: int | None = None
    name: str | None = None
    parent: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who makes the calls of this context: a user (its id when known) from an address."""

    name: str | None
    id: int | None = None
    client_ip: str | None = None


_caller: ContextVar[Caller | None] = ContextVar("ocptask_audit_caller", default=None)


def set_caller(name: str | None, user_id: int | None, client_ip: str | None) -> None:
    """The caller of the rest of this context (an HTTP request's task: it ends with it)."""
    _caller.set(Caller(name, user_id, client_ip))


@contextmanager
def acting_as(
    name: str | None, user_id: int | None = None, client_ip: str | None = None
) -> Iterator[None]:
    """Calls made inside are recorded as ``name``'s (a command line, an embedded program)."""
    token = _caller.set(Caller(name, user_id, client_ip))
    try:
        yield
    finally:
        _caller.reset(token)


def current_caller() -> Caller:
    return _caller.get() or Caller(None)


def was_recorded(exc: BaseException) -> bool:
    """Whether the refusal ``exc`` is already an event (a surface then records nothing)."""
    return bool(getattr(exc, "_ocptask_audited", False))


def mark_recorded(exc: BaseException) -> None:
    exc._ocptask_audited = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EventFilter:
    """``GET /api/v2/audit/events``' filters; empty ones filter nothing."""

    event_types: Sequence[str] = ()
    operation_events: Sequence[str] = ()
    resource_name: str | None = None
    operator_ids: Sequence[int] = ()
    event_info: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


SORTABLE = {
    "id": "id",
    "startTime": "start_time",
    "endTime": "end_time",
    "operationEvent": "operation_event",
    "eventType": "event_type",
    "resourceName": "resource_name",
    "operatorName": "operator_name",
    "status": "status",
}
"""OCP's field names → columns, for ``order``/``sort``."""


class AuditEvents:
    """The audit events of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        operation: Operation,
        *,
        status: str,
        resource: Resource | None = None,
        info: Any = None,
        task_ids: Sequence[int] = (),
        execution_type: str = NEW,
        caller: Caller | None = None,
        operator: str | None = None,
        start_time: datetime | None = None,
    ) -> int:
        """Write one event; its id. ``operator`` overrides the caller's name (the creator an
        embedded call was given); the caller's id is kept only when it names the same user."""
        who = caller or current_caller()
        name = operator if operator is not None else who.name
        resource = resource or Resource()
        row = {
            "operation_event": operation.event,
            "event_type": operation.event_type,
            "resource_type": operation.resource_type,
            "resource_id": resource.id,
            "resource_name": resource.name,
            "parent_resource": resource.parent,
            "operator_name": name,
            "operator_id": who.id if who.name == name else None,
            "status": status,
            "task_id": task_ids[0] if task_ids else None,
            "task_ids": "".join(f",{t}" for t in task_ids) + "," if task_ids else None,
            "execution_type": execution_type,
            "event_info": json.dumps(info if info is not None else {}, separators=(",", ":")),
            "client_ip": who.client_ip,
            "start_time": _to_ms(start_time or utcnow()),
            "end_time": _to_ms(utcnow()),
        }
        with self.store.begin_write() as conn:
            return int(conn.execute(insert(EVENTS).returning(EVENTS.c.id), row).scalar_one())

    def started(self, task_id: int) -> AuditEventRecord | None:
        """The event of the call that started the task, if one was recorded."""
        query = (
            select(EVENTS)
            .where(EVENTS.c.execution_type == NEW, EVENTS.c.status == SUCCESS)
            .where(or_(EVENTS.c.task_id == task_id, EVENTS.c.task_ids.like(f"%,{task_id},%")))
            .order_by(EVENTS.c.id)
            .limit(1)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else AuditEventRecord(**row)

    def page(
        self,
        wanted: EventFilter,
        *,
        order_by: str = "id",
        descending: bool = True,
        offset: int = 0,
        limit: int = 10,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of events as OCP's records, and how many match."""
        where = _conditions(wanted)
        column = EVENTS.c[order_by]
        order = [column.desc() if descending else column.asc()]
        if order_by != "id":
            order.append(EVENTS.c.id.desc() if descending else EVENTS.c.id.asc())
        query = select(EVENTS).where(*where).order_by(*order).offset(offset).limit(limit)
        with self.store.engine.connect() as conn:  # one transaction: the count fits the page
            total = conn.execute(select(func.count()).select_from(EVENTS).where(*where)).scalar()
            rows = conn.execute(query).mappings().all()
        return [to_ocp(row) for row in rows], int(total or 0)


def _to_ms(moment: datetime) -> datetime:
    """Kept to the millisecond, as shown: a time copied from a record bounds it exactly."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _conditions(wanted: EventFilter) -> list[Any]:
    where: list[Any] = []
    if wanted.event_types:
        where.append(EVENTS.c.event_type.in_(list(wanted.event_types)))
    if wanted.operation_events:
        where.append(EVENTS.c.operation_event.in_(list(wanted.operation_events)))
    if wanted.resource_name:
        where.append(EVENTS.c.resource_name.contains(wanted.resource_name, autoescape=True))
    if wanted.operator_ids:
        where.append(EVENTS.c.operator_id.in_(list(wanted.operator_ids)))
    if wanted.event_info:
        where.append(EVENTS.c.event_info.contains(wanted.event_info, autoescape=True))
    if wanted.status:
        where.append(EVENTS.c.status == wanted.status)
    if wanted.start_time is not None:
        where.append(EVENTS.c.start_time >= wanted.start_time.astimezone(UTC))
    if wanted.end_time is not None:
        where.append(EVENTS.c.start_time <= wanted.end_time.astimezone(UTC))
    return where


def to_ocp(row: Mapping[str, Any]) -> dict[str, Any]:
    """OCP's ``AuditEventHistory``, key for key."""
    return {
        "id": row["id"],
        "operationEvent": row["operation_event"],
        "eventType": row["event_type"],
        "resourceType": row["resource_type"],
        "resourceId": row["resource_id"],
        "resourceName": row["resource_name"],
        "parentResource": row["parent_resource"],
        "operatorName": row["operator_name"],
        "operatorId": row["operator_id"],
        "status": row["status"],
        "taskId": row["task_id"],
        "executionType": row["execution_type"],
        "eventInfo": row["event_info"],
        "clientIp": row["client_ip"],
        "startTime": ocp_time(as_utc(row["start_time"])),
        "endTime": ocp_time(as_utc(row["end_time"])),
    }
