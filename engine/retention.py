"""Retention: old finished tasks removed with their subtasks, logs and subject rows.

What is never removed, whatever was asked:
- a task that is not finished (only SUCCESSFUL and FAILED are final; a RUNNING one may still
  change, and a FAILED one retried meanwhile is RUNNING again: the status is checked again in
  the transaction that removes it, under its row lock);
- a task named by a hold (``engine.states.holds``: a resource's holder, or one of its batch);
- the last record of something that still exists: the newest task about each registered host
  and about each thing a task package says exists (its OBProxy clusters, the OceanBase clusters
  of its registry: ``Declarations.subjects_that_exist``), by ``task_subject``;
- a task another record points at (``Declarations.tasks_referenced``: an OBProxy cluster's
  create task).
Audit events are never touched: they name tasks by id, and a removed task's events still read.

Each chunk of tasks goes in one transaction, so a crash mid-purge leaves whole tasks behind,
never half of one. One purge at a time per database (a PostgreSQL advisory lock, or a lock file
beside a SQLite database): daemons sharing a database each schedule it, one does the work.

Space: new SQLite databases are made with ``auto_vacuum=INCREMENTAL`` (``engine.db.store``), and
a purge ends with ``PRAGMA incremental_vacuum``: the file shrinks. A database made before that
keeps ``auto_vacuum=NONE`` (only a full ``VACUUM`` can switch it, which rewrites the whole file
under an exclusive lock, so it is never run here): its freed pages are reused by new rows, so
the file stops growing instead of shrinking. PostgreSQL's autovacuum reuses the space.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from engine.clock import utcnow
from engine.db import purges, space
from engine.db.records import LOGS, SUBTASKS, TASKS
from engine.db.store import Store
from engine.db.subjects import SUBJECTS
from engine.packages import Declarations
from engine.remote.host_record import HostRecord
from engine.states.holds import HOLDS

from . import concerns
from .enums import TaskStatus
from .errors import FieldError, RequestInvalid, ResourceBusy

FINAL = (TaskStatus.SUCCESSFUL.value, TaskStatus.FAILED.value)
"""The statuses a task can be purged in: nothing of it can progress."""
CHUNK = 200
"""Tasks removed per transaction: bounded locks and memory, whole tasks per commit."""
_PG_LOCK = 7212002  # pg_advisory_lock key of the purge (7212001: the schema's)
_SHOWN_IDS = 20

HOLD = "holds a resource"
LAST = "last record of something that exists"
REFERENCED = "a record points at it"
CHANGED = "changed meanwhile"


@dataclass
class PurgeReport:
    """What a purge removed (or, dry, would remove) and what it kept, and why."""

    finished_before: datetime
    statuses: tuple[str, ...]
    dry_run: bool
    tasks: int = 0
    subtasks: int = 0
    log_rows: int = 0
    subjects: int = 0
    kept: dict[str, int] = field(default_factory=dict)
    first_ids: list[int] = field(default_factory=list)
    """The first task ids removed (at most 20), to show."""
    size_before: int | None = None
    size_after: int | None = None
    """The database's size in bytes (SQLite: its file and write-ahead log; PostgreSQL:
    pg_database_size)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "finishedBefore": self.finished_before.isoformat(),
            "statuses": list(self.statuses),
            "dryRun": self.dry_run,
            "tasks": self.tasks,
            "subtasks": self.subtasks,
            "logRows": self.log_rows,
            "subjects": self.subjects,
            "kept": dict(self.kept),
            "sizeBefore": self.size_before,
            "sizeAfter": self.size_after,
        }


def checked(
    finished_before: datetime, statuses: Sequence[str] | None, now: datetime | None = None
) -> tuple[datetime, tuple[str, ...]]:
    """The cut-off (UTC) and the statuses, or RequestInvalid naming what is wrong: a cut-off
    in the future, a status that is not final (RUNNING is never purged) or unknown."""
    problems = []
    if not isinstance(finished_before, datetime):
        problems.append(FieldError("finishedBefore", "must be a time", finished_before))
    else:
        if finished_before.tzinfo is None:
            finished_before = finished_before.replace(tzinfo=UTC)
        finished_before = finished_before.astimezone(UTC)  # as times are stored
        if finished_before > (now or utcnow()):
            problems.append(
                FieldError("finishedBefore", "is in the future", finished_before.isoformat())
            )
    wanted = tuple(dict.fromkeys(str(s).strip().upper() for s in statuses or FINAL))
    for status in wanted:
        if status not in FINAL:
            why = (
                "is never purged (only finished tasks are: SUCCESSFUL, FAILED)"
                if status in TaskStatus.__members__
                else "is no task status (SUCCESSFUL, FAILED)"
            )
            problems.append(FieldError("status", f"{status} {why}", status))
    if problems:
        raise RequestInvalid(problems)
    return finished_before, wanted


def purge(
    store: Store,
    declared: Declarations,
    finished_before: datetime,
    statuses: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
) -> PurgeReport:
    """Remove the tasks of ``statuses`` (default: both final ones) that finished before
    ``finished_before``, but the protected ones (see the module); ResourceBusy if another purge
    of this database is under way."""
    cutoff, wanted = checked(finished_before, statuses)
    report = PurgeReport(cutoff, wanted, dry_run)
    with _one_purge(store):
        report.size_before = space.size(store)
        with store.engine.connect() as conn:
            last_records = _last_records(conn, declared)
        after = 0
        while True:
            with store.engine.connect() as conn:
                ids = _candidates(conn, cutoff, wanted, after)
            if not ids:
                break
            after = ids[-1]
            if dry_run:
                with store.engine.connect() as conn:
                    _chunk(conn, declared, ids, cutoff, wanted, last_records, report, remove=False)
            else:
                with store.begin_write() as conn:
                    _chunk(conn, declared, ids, cutoff, wanted, last_records, report, remove=True)
        if not dry_run and report.tasks:
            space.reclaim(store)
        report.size_after = space.size(store)
    return report


def _candidates(
    conn: Connection, cutoff: datetime, statuses: Sequence[str], after: int
) -> list[int]:
    query = (
        select(TASKS.c.id)
        .where(TASKS.c.id > after, TASKS.c.status.in_(statuses), TASKS.c.finish_time < cutoff)
        .order_by(TASKS.c.id)
        .limit(CHUNK)
    )
    return list(conn.execute(query).scalars())


def _chunk(
    conn: Connection,
    declared: Declarations,
    ids: list[int],
    cutoff: datetime,
    statuses: Sequence[str],
    last_records: set[int],
    report: PurgeReport,
    *,
    remove: bool,
) -> None:
    """One chunk of candidates: what is still purgeable now (its row locked while removing),
    less the protected; removed in the caller's transaction, or only counted."""
    still = (
        select(TASKS.c.id)
        .where(TASKS.c.id.in_(ids), TASKS.c.status.in_(statuses), TASKS.c.finish_time < cutoff)
        .order_by(TASKS.c.id)
    )
    if remove:
        still = still.with_for_update()
    now = list(conn.execute(still).scalars())
    _count(report, CHANGED, len(ids) - len(now))
    held = _held(conn, now)
    referenced = {i for ask in declared.referenced_tasks for i in ask(conn, now)}
    going = []
    for task_id in now:
        why = (
            HOLD
            if task_id in held
            else LAST
            if task_id in last_records
            else REFERENCED
            if task_id in referenced
            else None
        )
        if why is None:
            going.append(task_id)
        else:
            _count(report, why, 1)
    if not going:
        return
    subtasks = select(SUBTASKS.c.id).where(SUBTASKS.c.task_id.in_(going)).scalar_subquery()
    if remove:
        report.log_rows += conn.execute(
            delete(LOGS).where(LOGS.c.subtask_id.in_(subtasks))
        ).rowcount
        report.subtasks += conn.execute(
            delete(SUBTASKS).where(SUBTASKS.c.task_id.in_(going))
        ).rowcount
        report.subjects += conn.execute(
            delete(SUBJECTS).where(SUBJECTS.c.task_id.in_(going))
        ).rowcount
        conn.execute(delete(TASKS).where(TASKS.c.id.in_(going)))
        purges.mark(conn, len(going))
    else:
        count = select(func.count()).select_from(LOGS).where(LOGS.c.subtask_id.in_(subtasks))
        report.log_rows += conn.execute(count).scalar_one()
        count = select(func.count()).select_from(SUBTASKS).where(SUBTASKS.c.task_id.in_(going))
        report.subtasks += conn.execute(count).scalar_one()
        count = select(func.count()).select_from(SUBJECTS).where(SUBJECTS.c.task_id.in_(going))
        report.subjects += conn.execute(count).scalar_one()
    report.tasks += len(going)
    report.first_ids.extend(going[: _SHOWN_IDS - len(report.first_ids)])


def _count(report: PurgeReport, why: str, n: int) -> None:
    if n > 0:
        report.kept[why] = report.kept.get(why, 0) + n


def _held(conn: Connection, ids: Collection[int]) -> set[int]:
    """Those of ``ids`` a hold names (its holder, or one of its batch), read in the purge's
    transaction: a hold is a small table, one row per resource."""
    wanted = set(ids)
    found: set[int] = set()
    for task_id, batch in conn.execute(select(HOLDS.c.task_id, HOLDS.c.batch)):
        found.update(i for i in (task_id, *(batch or ())) if i in wanted)
    return found


def _last_records(conn: Connection, declared: Declarations) -> set[int]:
    """The newest task about each host and each thing the task packages say exists."""
    existing = [(concerns.HOST, key, None) for key in conn.execute(select(HostRecord.id)).scalars()]
    for ask in declared.existing_subjects:
        existing.extend(ask(conn))
    by_key: dict[str, set[int]] = {}
    by_name: dict[str, set[str]] = {}
    for kind, key, name in existing:
        if key is not None:
            by_key.setdefault(kind, set()).add(key)
        if name is not None:
            by_name.setdefault(kind, set()).add(name)
    newest: set[int] = set()
    for kind, keys in by_key.items():
        newest.update(_newest(conn, kind, SUBJECTS.c.key, sorted(keys)))
    for kind, names in by_name.items():
        newest.update(_newest(conn, kind, SUBJECTS.c.name, sorted(names)))
    return newest


def _newest(conn: Connection, kind: str, column: Any, values: list[Any]) -> Iterator[int]:
    for start in range(0, len(values), 500):
        query = (
            select(func.max(SUBJECTS.c.task_id))
            .where(SUBJECTS.c.kind == kind, column.in_(values[start : start + 500]))
            .group_by(column)
        )
        yield from conn.execute(query).scalars()


@contextmanager
def _one_purge(store: Store) -> Iterator[None]:
    """One purge per database at a time, across processes; ResourceBusy if one is under way."""
    busy = ResourceBusy("another purge of this database is under way; try again later")
    if store.is_sqlite:
        database = Path(store.engine.url.database or "ocptask.db")
        fd = os.open(
            database.with_name(database.name + ".purge-lock"),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            yield
        finally:
            os.close(fd)  # lets go of the lock
        return
    with store.engine.connect() as conn:  # a session lock: held across the chunks' commits
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK}).scalar()
        conn.commit()
        if not got:
            raise busy
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})
            conn.commit()
