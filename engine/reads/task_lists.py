"""The one rule for task lists: which tasks a list asks for (its filters checked, as the HTTP API
names them), the SQL that finds them, the columns a snapshot shows, and the scan of candidates
for filters that are not columns.

Standard library only: the Engine runs this SQL through SQLAlchemy (``Engine.page``), the CLI's
quick reads through sqlite3 (``sqlite_reader``); both bind the same ``:named`` parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.enums import TaskStatus, TaskType
from engine.errors import members

if TYPE_CHECKING:
    from engine.task import Task

TASK_COLUMNS = (
    "id name type status operation creator executor task_definition_id context payload "
    "create_time start_time finish_time"
).split()
"""The ``task_instance`` columns a snapshot (``Task``) is built from."""
SUBTASK_COLUMNS = (
    "id task_id series_id name description class_name node_type timeout status operation "
    "executor run_time parallel_idx prohibit_rollback context upstreams downstreams "
    "create_time start_time finish_time"
).split()
"""The ``subtask_instance`` columns a snapshot (``Subtask``) is built from."""
UNSHOWN_COLUMNS = {
    "task_instance": {"revision"},
    "subtask_instance": {"acquired_until", "lost_executor", "waiting", "revision"},
}
"""Columns no snapshot shows: a lease, the runner's bookkeeping, and revisions (they tell of a
change; they are not one). Every column is in exactly one of these lists (a test holds it)."""
SCAN_CHUNK = 200
"""Candidates loaded at a time by ``matching``: bounded memory and IN lists."""


def statuses_named(values: Sequence[TaskStatus | str]) -> list[str]:
    """Status names, any case; refused naming ``status`` and what it may be."""
    names = [v.value if isinstance(v, TaskStatus) else v for v in values]
    return members("status", names, TaskStatus.__members__)


def type_named(value: TaskType | str | None) -> str | None:
    if value is None or isinstance(value, TaskType):
        return value.value if value else None
    found = members("type", [value], TaskType.__members__)
    return found[0] if found else None


@dataclass(frozen=True)
class TaskQuery:
    """The SQL of a task list: its ids in order (``ids``, ``page`` with ``:limit``/``:offset``)
    and their count, with the parameters both bind."""

    where: str
    order: str
    params: dict[str, Any]

    @property
    def ids(self) -> str:
        return f"SELECT id FROM task_instance{self.where} ORDER BY {self.order}"

    @property
    def page(self) -> str:
        return f"{self.ids} LIMIT :limit OFFSET :offset"

    @property
    def count(self) -> str:
        return f"SELECT count(*) FROM task_instance{self.where}"


def task_query(
    statuses: Sequence[TaskStatus | str] = (),
    name: str | None = None,
    task_type: TaskType | str | None = None,
    order_by: str = "id",
    *,
    descending: bool = True,
) -> TaskQuery:
    """The tasks a list's filters ask for, in its order (ties broken by id, the same way)."""
    where, params = [], {}
    wanted = statuses_named(statuses)
    if wanted:
        params.update({f"status{i}": s for i, s in enumerate(wanted)})
        where.append(f"status IN ({', '.join(f':status{i}' for i in range(len(wanted)))})")
    kind = type_named(task_type)
    if kind is not None:
        params["type"] = kind
        where.append("type = :type")
    if name:  # a substring, its wildcards escaped with "/"
        params["name"] = name.replace("/", "//").replace("%", "/%").replace("_", "/_")
        where.append("name LIKE '%' || :name || '%' ESCAPE '/'")
    if order_by not in TASK_COLUMNS:
        raise ValueError(f"tasks cannot be ordered by {order_by!r}")
    way = "DESC" if descending else "ASC"
    order = f"id {way}" if order_by == "id" else f"{order_by} {way}, id {way}"
    return TaskQuery(" WHERE " + " AND ".join(where) if where else "", order, params)


def matching(
    chunks: Iterable[Sequence[int]],
    load: Callable[[list[int]], list[Task]],
    match: Callable[[Task], bool],
    *,
    offset: int = 0,
    limit: int,
    count: bool = True,
) -> tuple[list[Task], int | None]:
    """The page of the candidates (ids in the list's order, ``chunks`` of them) whose snapshot
    ``match`` keeps, and how many it keeps in all; without ``count``, the scan stops once the
    page is full and the total is None."""
    kept: list[Task] = []
    total = 0
    for ids in chunks:
        for task in load(list(ids)):
            if match(task):
                if offset <= total < offset + limit:
                    kept.append(task)
                total += 1
        if not count and len(kept) >= limit:
            return kept, None
    return kept, total if count else None


def in_chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    return (ids[i : i + SCAN_CHUNK] for i in range(0, len(ids), SCAN_CHUNK))
