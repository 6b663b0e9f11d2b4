"""A task list's filters checked, each refusal naming its field as the HTTP API's query
parameters are named: one rule for the Engine's lists and the SQLite reader's."""

from __future__ import annotations

from collections.abc import Sequence

from .enums import TaskStatus, TaskType
from .errors import FieldError, RequestInvalid


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
