"""Which tasks a list asks for: its filters (checked by ``task_filters``) as the query of their
ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from .enums import TaskStatus, TaskType
from .records import TaskRecord
from .task_filters import statuses_named, type_named


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
