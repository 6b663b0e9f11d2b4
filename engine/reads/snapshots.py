"""Task reads that build a snapshot only when the task's rows changed since the last read.

An API client polling a task's detail mostly sees it unchanged; fetching, decoding (JSON
contexts, times) and building the dataclasses is most of a read's cost, so the Engine keeps the
last snapshot of recently read tasks and hands it out again while the task is unchanged. Callers
must treat snapshots as read-only (they are frozen dataclasses).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, func, select, type_coerce
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.types import NullType

from engine.db.compiled import RowRead
from engine.db.records import SUBTASKS, TASKS
from engine.task import Task

from .task_lists import SUBTASK_COLUMNS, TASK_COLUMNS

_TASKS: Table = TASKS
_SUBTASKS: Table = SUBTASKS
# What a snapshot shows (``task_lists``): not a running subtask's lease, which changes every few
# seconds. Revisions come last, outside what is compared: they tell a change, they are not one.
_TASK_COLUMNS = [_TASKS.c[name] for name in TASK_COLUMNS]
_SUBTASK_COLUMNS = [_SUBTASKS.c[name] for name in SUBTASK_COLUMNS]
_TASK_ID = [c.name for c in _TASK_COLUMNS].index("id")
_SUBTASK_TASK_ID = [c.name for c in _SUBTASK_COLUMNS].index("task_id")
Revision = tuple[int, int, int]
"""A task's revision, its subtasks' count and the sum of their revisions: every UPDATE bumps a
row's revision (``revisions``), so any change to the task's rows changes this."""


def _raw(columns: list[Any], revision: Any) -> Select[Any]:
    """The columns as the driver returns them (no JSON decoding, no parsing of times), then the
    row's revision."""
    raw = [type_coerce(c, NullType()).label(c.name) for c in columns]
    return select(*raw, func.coalesce(revision, 0).label("revision"))


def _revisions(where: Any) -> Select[Any]:
    """Each task's id and ``Revision``, for the tasks ``where`` picks."""
    sub = _SUBTASKS.c
    return (
        select(
            _TASKS.c.id,
            func.coalesce(_TASKS.c.revision, 0),
            func.count(sub.id),
            func.coalesce(func.sum(func.coalesce(sub.revision, 0)), 0),
        )
        .select_from(_TASKS.outerjoin(_SUBTASKS, sub.task_id == _TASKS.c.id))
        .where(where)
        .group_by(_TASKS.c.id, _TASKS.c.revision)
    )


class _Decoder:
    """Raw rows into records: the column types' own result processing, as a typed select
    would have done it."""

    def __init__(self, columns: list[Any], dialect: Any) -> None:
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

    Remembered tasks are first checked by revision (one small read for one task or a page of
    them): a task whose revision is the one its snapshot was built at is answered with that
    snapshot. Changed or unknown tasks have every row fetched undecoded; rows equal to the
    remembered ones (a lease renewal bumps a revision and changes nothing shown) still reuse it.
    """

    def __init__(self, engine: SqlEngine, size: int = 256) -> None:
        self._engine = engine
        dialect = engine.dialect
        self._task = _Decoder(_TASK_COLUMNS, dialect)
        self._subtask = _Decoder(_SUBTASK_COLUMNS, dialect)
        # Built once, with bound parameters: a statement's cache key is costly to compute.
        one, many = bindparam("id"), bindparam("ids", expanding=True)
        subtasks = _raw(_SUBTASK_COLUMNS, _SUBTASKS.c.revision).order_by(_SUBTASKS.c.id)
        tasks = _raw(_TASK_COLUMNS, _TASKS.c.revision)
        self._one = (tasks.where(_TASKS.c.id == one), subtasks.where(_SUBTASKS.c.task_id == one))
        self._many = (
            tasks.where(_TASKS.c.id.in_(many)),
            subtasks.where(_SUBTASKS.c.task_id.in_(many)),
        )
        self._revision = RowRead(engine, _revisions(_TASKS.c.id == one))
        self._revisions = _revisions(_TASKS.c.id.in_(many))
        self._size = size
        self._memo: OrderedDict[int, tuple[Revision, tuple[Any, ...], list[Any], Task]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, task_id: int) -> Task | None:
        """The task with this id, or None."""
        with self._lock:
            known = self._memo.get(task_id)
        if known is not None:
            found = self._revision.first(id=task_id)
            if found is None:
                return None
            if tuple(found[1:]) == known[0]:
                return self._reused(task_id, known[3])
        return self.load([task_id], check=False).get(task_id)

    def load(self, ids: Sequence[int], *, check: bool = True) -> dict[int, Task]:
        """The tasks with these ids that exist, by id; ``check``: first ask the remembered
        ones' revisions."""
        found: dict[int, Task] = {}
        with self._engine.connect() as conn:
            if check:
                found = self._unchanged(conn, ids)
            rest = [i for i in ids if i not in found]
            if rest:
                found.update(self._fetch(conn, rest))
        return found

    def _unchanged(self, conn: Connection, ids: Sequence[int]) -> dict[int, Task]:
        with self._lock:
            known = {i: self._memo[i] for i in ids if i in self._memo}
        if not known:
            return {}
        unchanged = {}
        for task_id, *revision in conn.execute(self._revisions, {"ids": list(known)}):
            if tuple(revision) == known[task_id][0]:
                unchanged[task_id] = self._reused(task_id, known[task_id][3])
        return unchanged

    def _reused(self, task_id: int, task: Task) -> Task:
        with self._lock:
            if task_id in self._memo:
                self._memo.move_to_end(task_id)
        return task

    def _fetch(self, conn: Connection, ids: Sequence[int]) -> dict[int, Task]:
        if len(ids) == 1:  # a task's detail: equality on the primary key
            (tasks, subtasks), params = self._one, {"id": ids[0]}
        else:
            (tasks, subtasks), params = self._many, {"ids": list(ids)}
        # Plain tuples (in the tables' column order, the revision last): they compare fast.
        rows = {r[_TASK_ID]: tuple(r) for r in conn.execute(tasks, params).all()}
        subs: dict[int, list[tuple[Any, ...]]] = {i: [] for i in rows}
        if rows:
            for sub in conn.execute(subtasks, params).all():
                subs[sub[_SUBTASK_TASK_ID]].append(tuple(sub))
        return {i: self._snapshot(i, row, subs[i]) for i, row in rows.items()}

    def _snapshot(self, task_id: int, row: tuple[Any, ...], subs: list[tuple[Any, ...]]) -> Task:
        revision = (row[-1], len(subs), sum(s[-1] for s in subs))
        shown, shown_subs = row[:-1], [s[:-1] for s in subs]
        with self._lock:
            known = self._memo.get(task_id)
        if known is not None and known[1] == shown and known[2] == shown_subs:
            task = known[3]
        else:
            task = Task.from_records(self._task(shown), [self._subtask(s) for s in shown_subs])
        with self._lock:
            self._memo[task_id] = (revision, shown, shown_subs, task)
            self._memo.move_to_end(task_id)
            while len(self._memo) > self._size:
                self._memo.popitem(last=False)
        return task
