"""Which tasks a list asks for: its filters (checked by ``task_filters``) as the query of their
ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from engine.db.records import TaskRecord
from engine.enums import TaskStatus, TaskType
from engine.errors import FieldError, RequestInvalid


def task_ids(
    statuses: Sequence[TaskStatus | str],
    name: str | None,
    task_type: TaskType | str | None,
    order_by: str,
    *,
    descending: bool,
) -> Any:
    """The ids of the tasks a list asks for, in its order (ties broken by id)."""
    query = select(TaskRecord.id)
    wanted = statuses_named(statuses)
    if wanted:
        query = query.where(col(TaskRecord.status).in_(wanted))
    kind = type_named(task_type)
    if kind is not None:
        query = query.where(TaskRecord.type == kind)
    if name:
        query = query.where(col(TaskRecord.name).contains(name, autoescape=True))
    column = col(getattr(TaskRecord, order_by))
    tie = col(TaskRecord.id)
    if descending:
        return query.order_by(column.desc(), tie.desc())
    return query.order_by(column.asc(), tie.asc())


def statuses_named(values: Sequence[TaskStatus | str]) -> list[str]:
    """Status names, any case; refused naming ``status`` and what it may be."""
    found = [v.value if isinstance(v, TaskStatus) else str(v).strip().upper() for v in values]
    found = [v for v in found if v]
    bad = [v for v in found if v not in TaskStatus.__members__]
    if bad:
        allowed = ", ".join(TaskStatus.__members__)
        raise RequestInvalid([FieldError("status", f"must be among {allowed}", ",".join(bad))])
    return found


def type_named(value: TaskType | str | None) -> str | None:
    if value is None or isinstance(value, TaskType):
        return value.value if value else None
    name = value.strip().upper()
    if not name:
        return None
    if name not in TaskType.__members__:
        allowed = ", ".join(TaskType.__members__)
        raise RequestInvalid([FieldError("type", f"must be one of {allowed}", value)])
    return name
