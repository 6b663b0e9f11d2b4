"""The one rule for task lists, its first half: which tasks a list asks for (its filters checked,
as the HTTP API names them), the columns a snapshot shows, and the scan of candidates for a
filter that is a Python callable. The SQL that finds them is ``list_sql``'s.

Standard library only, as ``list_sql``: the command line's quick reads use it without SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

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


def fuzzy(keyword: str, names: Iterable[str]) -> list[str]:
    """The names that hold ``keyword``, case-blind (OCP's fuzzy match), in one rule for the
    task's name and a cluster's, on every backend."""
    wanted = keyword.casefold()
    return [n for n in names if wanted in n.casefold()]


@dataclass(frozen=True)
class TaskQuery:
    """A task list's filters, checked, and its order (ties broken by id, the same way)."""

    statuses: list[str] = field(default_factory=list)
    task_type: str | None = None
    name: str | None = None
    host_id: int | None = None
    cluster_id: int | None = None
    cluster_name: str | None = None
    after: datetime | None = None
    order_by: str = "id"
    descending: bool = True


def task_query(
    statuses: Sequence[TaskStatus | str] = (),
    name: str | None = None,
    task_type: TaskType | str | None = None,
    order_by: str = "id",
    *,
    descending: bool = True,
    host_id: int | None = None,
    cluster_id: int | None = None,
    cluster_name: str | None = None,
    after: datetime | None = None,
) -> TaskQuery:
    """The tasks a list's filters ask for: refused naming the field at fault."""
    if order_by not in TASK_COLUMNS:
        raise ValueError(f"tasks cannot be ordered by {order_by!r}")
    return TaskQuery(
        statuses_named(statuses), type_named(task_type), name or None, host_id, cluster_id,
        cluster_name or None, after, order_by, descending,
    )  # fmt: skip


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
    page is full and the total is None. For a filter that is a Python callable (an embedded
    caller's): every candidate is loaded, so keep it for narrow lists."""
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
