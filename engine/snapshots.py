"""Task reads that build a snapshot only when the task's rows changed since the last read.

An API client polling a task's detail mostly sees it unchanged; decoding its rows (JSON
contexts, times) and building the dataclasses is most of a read's cost, so the Engine keeps the
last snapshot of recently read tasks and hands it out again while their rows are equal. Callers
must treat snapshots as read-only (they are frozen dataclasses).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Dialect, Select, Table, bindparam, select, type_coerce
from sqlalchemy.types import NullType

from .records import SubtaskRecord, TaskRecord
from .task import Task

_TASKS: Table = TaskRecord.__table__  # type: ignore[attr-defined]
_SUBTASKS: Table = SubtaskRecord.__table__  # type: ignore[attr-defined]
# What a snapshot does not show: a running subtask's lease changes every few seconds.
_TASK_COLUMNS = list(_TASKS.c)
_SUBTASK_COLUMNS = [c for c in _SUBTASKS.c if c.name not in ("acquired_until", "lost_executor")]
_TASK_ID = [c.name for c in _TASK_COLUMNS].index("id")
_SUBTASK_TASK_ID = [c.name for c in _SUBTASK_COLUMNS].index("task_id")


def _raw(columns: list[Any]) -> Select[Any]:
    """The columns as the driver returns them: no JSON decoding, no parsing of times."""
    return select(*(type_coerce(c, NullType()).label(c.name) for c in columns))


class _Decoder:
    """Raw rows into records: the column types' own result processing, as a typed select
    would have done it."""

    def __init__(self, columns: list[Any], dialect: Dialect) -> None:
        self.steps = [
            (c.name, c.type.dialect_impl(dialect).result_processor(dialect, None)) for c in columns
        ]

    def __call__(self, row: Sequence[Any]) -> SimpleNamespace:
        return SimpleNamespace(
            **{
                name: v if f is None or v is None else f(v)
                for (name, f), v in zip(self.steps, row, strict=True)
            }
        )


class Snapshots:
    """Reads tasks, and builds a task's snapshot only when its rows changed since the last read.

    A read always fetches every row of the task and its subtasks, but undecoded: when they equal
    the rows the remembered snapshot was built from, that snapshot is the answer. Decoding (JSON
    contexts, times) and building the dataclasses is most of a read's cost otherwise, and an
    API client polling a task's detail mostly sees it unchanged.
    """

    def __init__(self, dialect: Dialect, size: int = 256) -> None:
        self._task = _Decoder(_TASK_COLUMNS, dialect)
        self._subtask = _Decoder(_SUBTASK_COLUMNS, dialect)
        # Built once, with bound parameters: a statement's cache key is costly to compute.
        one, many = bindparam("id"), bindparam("ids", expanding=True)
        subtasks = _raw(_SUBTASK_COLUMNS).order_by(_SUBTASKS.c.id)
        self._one = (
            _raw(_TASK_COLUMNS).where(_TASKS.c.id == one),
            subtasks.where(_SUBTASKS.c.task_id == one),
        )
        self._many = (
            _raw(_TASK_COLUMNS).where(_TASKS.c.id.in_(many)),
            subtasks.where(_SUBTASKS.c.task_id.in_(many)),
        )
        self._size = size
        self._memo: OrderedDict[int, tuple[Any, list[Any], Task]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, conn: Connection, ids: Sequence[int]) -> dict[int, Task]:
        """The tasks with these ids that exist, by id."""
        if len(ids) == 1:  # a task's detail: equality on the primary key
            (tasks, subtasks), params = self._one, {"id": ids[0]}
        else:
            (tasks, subtasks), params = self._many, {"ids": list(ids)}
        # Plain tuples (in the tables' column order): they compare fast.
        rows = {r[_TASK_ID]: tuple(r) for r in conn.execute(tasks, params).all()}
        subs: dict[int, list[tuple[Any, ...]]] = {i: [] for i in rows}
        if rows:
            for sub in conn.execute(subtasks, params).all():
                subs[sub[_SUBTASK_TASK_ID]].append(tuple(sub))
        return {i: self._snapshot(i, row, subs[i]) for i, row in rows.items()}

    def _snapshot(self, task_id: int, row: tuple[Any, ...], subs: list[tuple[Any, ...]]) -> Task:
        with self._lock:
            known = self._memo.get(task_id)
            if known is not None and known[0] == row and known[1] == subs:
                self._memo.move_to_end(task_id)
                return known[2]
        task = Task.from_records(self._task(row), [self._subtask(s) for s in subs])
        with self._lock:
            self._memo[task_id] = (row, subs, task)
            self._memo.move_to_end(task_id)
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return task
