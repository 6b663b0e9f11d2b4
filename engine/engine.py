"""The embedded API: submit tasks, drive them, operate on them, read their records and logs.

All state lives in the database. An Engine holds no task state of its own beyond the threads
running steps right now, so a new Engine on the same database sees the same tasks and can
continue them, and the HTTP API and daemon are thin layers over these methods.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlmodel import Session, col, select

from engine.db import subjects
from engine.db.records import SubtaskLogRecord, TaskRecord
from engine.db.row_ids import is_row_id
from engine.db.store import Store
from engine.db.subtask_log import keep_bytes
from engine.packages import task_packages
from engine.reads.list_sql import Counts, all_ids, list_page
from engine.reads.snapshots import Snapshots
from engine.reads.task_lists import in_chunks, matching, task_query
from engine.remote.credentials import Credentials
from engine.remote.hosts import HostRegistry
from engine.run.runner import LEASE_SECONDS, Runner, running_here
from engine.run.services import Services
from engine.states import holds as _holds  # noqa: F401 - registers its table
from engine.states import leases, operations, transitions

from . import retention
from .audit import FAILED, SUCCESS, AuditEvents, Operation, Resource
from .audit_calls import TASK, TASK_MANAGEMENT, task_operation
from .clock import utcnow
from .context import Context
from .definitions import Definitions, fire_due
from .enums import TaskStatus, TaskType
from .errors import TaskNotFound, WaitTimeout, found
from .public_url import checked_public_url
from .retention import PurgeReport
from .step import load_step
from .task import Subtask, Task
from .template import Template

WAIT_POLL_SECONDS = 0.1
WAIT_SWEEP_SECONDS = 1.0
log = logging.getLogger("ocptask.engine")
PURGE_TASKS = Operation("PURGE_TASKS", TASK_MANAGEMENT, TASK)  # ours: OCP has no purge


def default_executor() -> str:
    """``<ip>:<pid>``: names this process in records (OCP shows the server's IP)."""
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        ip = "127.0.0.1"
    return f"{ip}:{os.getpid()}"


def _as_submitted(
    task_ids: list[int],
    checked: list[tuple[Context, list[Any], dict[str, Any]]],
    added: Mapping[int, dict[str, str]],
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Each new task's id, context (with the entries its package added) and payload, as the
    submit's transaction leaves them: what ``subjects`` records it to be about."""
    for task_id, (context, _plan, payload) in zip(task_ids, checked, strict=True):
        as_json = context.to_json()
        as_json["stringMap"].update(added.get(task_id, {}))
        yield task_id, as_json, payload


def _runner(conn: Connection) -> Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]:
    """``task_lists``' way to run its SQL, on the caller's connection."""
    return lambda sql, params: conn.execute(text(sql), params).all()


class Engine:
    """Tasks persisted in ``db_url`` (default: ``$OCPTASK_DB`` or ``~/.ocptask/ocptask.db``).

    ``parallelism`` caps how many subtasks this Engine runs at once, across all its tasks.
    ``public_url`` is where its hosts reach ``ocptask serve`` on this database (``public_url``):
    a CONFIG_URL OBProxy cluster on hosts needs it. ``log_keep_kib`` bounds each execution's
    stored log to its first and last that many KiB (default ``$OCPTASK_LOG_KEEP_KIB``, else 64).
    """

    def __init__(
        self,
        db_url: str | None = None,
        parallelism: int = 10,
        *,
        executor: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        public_url: str | None = None,
        log_keep_kib: int | None = None,
    ) -> None:
        if not isinstance(parallelism, int) or parallelism < 1:
            raise ValueError(f"parallelism must be a whole number >= 1, not {parallelism!r}")
        log_keep = keep_bytes(log_keep_kib)  # refused before anything is opened
        self.public_url = checked_public_url(public_url)
        """Where the hosts reach this database's ``ocptask serve`` (``public_url``), if known."""
        self.packages = task_packages()
        """What the installed task packages declared (their tables exist once the store opens)."""
        self.store = Store(db_url, pool_size=parallelism + 5)
        self.executor = executor or default_executor()
        self.hosts = HostRegistry(
            self.store,
            guards=self.packages.host_guards,
            services=self.packages.host_services,
            commands=self.packages.host_commands,
        )
        self.credentials = Credentials(self.store)
        self.definitions = Definitions(self.store)
        self.services = Services(self.store, self.hosts)
        self.runner = Runner(
            self.store,
            self.services,
            parallelism=parallelism,
            executor=self.executor,
            lease_seconds=lease_seconds,
            log_keep=log_keep,
        )
        """Executes this engine's subtasks; a daemon drives it (dispatch, leases, drain)."""
        self._snapshots = Snapshots(self.store.engine)
        self._counts = Counts()  # task lists' totals, kept between reads
        self.on_work: Callable[[], None] | None = None
        """Called after a submit or an operation made work: a daemon in this process (``ocptask
        serve``) sets it to start dispatching at once instead of at its next poll."""

    # -- submit -----------------------------------------------------------------------------

    def submit(
        self,
        template: Template,
        args: Context | Mapping[str, Any] | None = None,
        creator: str = "admin",
        *,
        payload: Mapping[str, Any] | None = None,
        task_type: TaskType = TaskType.MANUAL,
        task_definition_id: int = -1,
        also: Callable[[Connection, int], None] | None = None,
    ) -> Task:
        """Persist a new task: RUNNING, roots READY, everything else PENDING. Does not run it.

        Everything that can be refused (arguments, expansion, step classes, payload) is checked
        before the first write, so a refused submit leaves no row behind. ``also(conn, task_id)``
        writes the task's own records (an OBProxy cluster row) in the same transaction: if it
        raises, nothing of the task is written either.
        """

        def then(conn: Connection, ids: list[int]) -> None:
            if also is not None:
                also(conn, ids[0])

        (task,) = self.submit_batch(
            template,
            [(args, payload)],
            creator,
            task_type=task_type,
            task_definition_id=task_definition_id,
            also=then,
        )
        return task

    def submit_batch(
        self,
        template: Template,
        each: Sequence[tuple[Context | Mapping[str, Any] | None, Mapping[str, Any] | None]],
        creator: str = "admin",
        *,
        task_type: TaskType = TaskType.MANUAL,
        task_definition_id: int = -1,
        also: Callable[[Connection, list[int]], Mapping[int, dict[str, str]] | None] | None = None,
    ) -> list[Task]:
        """Persist one task of ``template`` per (arguments, payload) of ``each``, all or none,
        as ``submit`` does one: OCP's per-host calls (batchAdd, batchCreate) answer a task per
        host. ``also(conn, task_ids)`` runs once, in the same transaction; it may answer
        ``stringMap`` entries to add to some of the tasks (ids of rows it wrote for them)."""
        if not isinstance(template, Template):
            raise TypeError(f"template must be a Template, not {type(template).__name__}")
        if not isinstance(creator, str) or not creator.strip():
            raise ValueError("creator must be a non-empty string")
        if not each:
            raise ValueError("a batch needs at least one task")
        checked = [self._checked(template, args, payload) for args, payload in each]
        with self.store.begin_write() as conn:
            task_ids = [
                transitions.insert_task(
                    conn,
                    name=template.name,
                    plan=plan,
                    context=context,
                    payload=data,
                    creator=creator,
                    executor=self.executor,
                    task_type=TaskType(task_type),
                    task_definition_id=task_definition_id,
                )
                for context, plan, data in checked
            ]
            added = also(conn, task_ids) if also is not None else None
            for task_id, values in (added or {}).items():
                transitions.add_strings(conn, task_id, values)
            subjects.write(conn, _as_submitted(task_ids, checked, added or {}))
            self.store.notify_work(conn)
        # The state the submit made, before a daemon here runs them.
        submitted = [self.get(task_id) for task_id in task_ids]
        self._work_made()
        return submitted

    @staticmethod
    def _checked(
        template: Template,
        args: Context | Mapping[str, Any] | None,
        payload: Mapping[str, Any] | None,
    ) -> tuple[Context, list[Any], dict[str, Any]]:
        """A task's context, plan and payload, with everything that can be refused checked."""
        context = Context.of(args)
        flag = context.string_map.get("prohibit_rollback", "false")
        context.string_map["prohibit_rollback"] = (
            "true" if template.prohibit_rollback or flag == "true" else "false"
        )
        plan = template.expand(context)
        for planned in plan:
            load_step(planned.node.class_name)
        data = dict(payload or {})
        json.dumps(data)  # TypeError now rather than a half-written task later
        return context, plan, data

    def fire_due(self, now: datetime | None = None) -> list[int]:
        """Create the SCHEDULED tasks of definitions due at ``now`` (default: now); their ids.
        Safe from any number of engines and daemons at once (see ``definitions.fire_due``)."""
        return fire_due(self.store, self.submit, now)

    def _work_made(self) -> None:
        if self.on_work is not None:
            self.on_work()

    # -- read -------------------------------------------------------------------------------

    def get(self, task_id: int) -> Task:
        # A task's detail is the API's most frequent read: rows, not ORM objects, and the
        # snapshot rebuilt only when they changed.
        return found(
            self._snapshots.get(task_id) if is_row_id(task_id) else None, TaskNotFound, task_id
        )

    def list(
        self,
        *,
        status: TaskStatus | str | None = None,
        name: str | None = None,
        task_type: TaskType | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Task]:
        """Newest first. ``name`` is a substring match, as OCP's fuzzy keyword."""
        query = task_query([] if status is None else [status], name, task_type)
        with self.store.engine.connect() as conn:
            ids, _ = list_page(_runner(conn), query, offset=offset, limit=limit, count=False,
                               dialect=conn.dialect.name)  # fmt: skip
        return self._load(ids)

    def page(
        self,
        *,
        statuses: Sequence[TaskStatus | str] = (),
        name: str | None = None,
        task_type: TaskType | str | None = None,
        host_id: int | None = None,
        cluster_id: int | None = None,
        cluster_name: str | None = None,
        after: datetime | None = None,
        match: Callable[[Task], bool] | None = None,
        order_by: str = "id",
        descending: bool = True,
        offset: int = 0,
        limit: int = 10,
    ) -> tuple[list[Task], int]:
        """One page of tasks and the total count, for paged lists (OCP's ``page``/``size``):
        every filter but ``match`` is answered through indexes (``task_lists``).

        ``match`` is a filter of the caller's on each snapshot: it is applied to every
        candidate the other filters leave, so keep it for narrow lists."""
        query = task_query(
            statuses, name, task_type, order_by, descending=descending, host_id=host_id,
            cluster_id=cluster_id, cluster_name=cluster_name, after=after,
        )  # fmt: skip
        with self.store.engine.connect() as conn:  # one transaction for the count and the page
            run, dialect = _runner(conn), conn.dialect.name
            if match is None:
                ids, total = list_page(
                    run, query, offset=offset, limit=limit, dialect=dialect, counts=self._counts
                )
                return self._load(ids), total or 0
            candidates = all_ids(run, query, dialect)
        kept, total = matching(in_chunks(candidates), self._load, match, offset=offset, limit=limit)
        return kept, total or 0

    def get_many(self, task_ids: list[int]) -> list[Task]:
        """The tasks with these ids that exist, in the order given, in one read."""
        return self._load(task_ids)

    def _load(self, ids: list[int]) -> list[Task]:
        """Tasks by id, in the order given."""
        if not ids:
            return []
        tasks = self._snapshots.load(ids)
        return [tasks[i] for i in ids if i in tasks]

    def log(self, task_id: int, subtask_id: int) -> str:
        """The subtask's log: one ``############{OPERATION}{time}############`` header per run."""
        with self.store.read() as session:
            operations.load_subtask(session, task_id, subtask_id)
            query = (
                select(SubtaskLogRecord.text)
                .where(SubtaskLogRecord.subtask_id == subtask_id)
                .order_by(col(SubtaskLogRecord.id))
            )
            return "".join(session.exec(query).all())

    # -- drive ------------------------------------------------------------------------------

    def start(self, task_id: int) -> None:
        """Run the task's READY subtasks in the background; returns at once."""
        self.get(task_id)
        self.recover_lost(task_id)
        self.runner.start(task_id)

    def recover_lost(self, task_id: int, *, wait: bool = True) -> None:
        """Without this, a crash would leave subtasks RUNNING forever and every operation
        refused. Executors elsewhere are judged by their leases (see ``leases``)."""
        leases.recover_lost(self.store, task_id, self.executor, running_here, wait=wait)

    def wait(self, task_id: int, timeout: float | None = None) -> Task:
        """Block until nothing of the task can progress; WaitTimeout after ``timeout`` seconds.

        Whoever runs it (this Engine, another, a daemon), a subtask whose executor's lease lapses
        meanwhile is judged lost here too, so a wait never outlasts a dead executor.
        """
        return self._wait(task_id, timeout, drive=False)

    def run(self, task_id: int, timeout: float | None = None) -> Task:
        """Start the task and block until nothing can progress; returns the final record."""
        self.start(task_id)
        return self._wait(task_id, timeout, drive=True)

    def _wait(self, task_id: int, timeout: float | None, *, drive: bool) -> Task:
        deadline = None if timeout is None else time.monotonic() + timeout
        last_sweep = time.monotonic()
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            # Our driver (if any) in slices: it also waits on subtasks others run.
            joined = self.runner.join(
                task_id, WAIT_SWEEP_SECONDS if left is None else min(WAIT_SWEEP_SECONDS, left)
            )
            if joined:  # not driven here (any more): the records tell
                with self.store.engine.connect() as conn:
                    active = transitions.has_active(conn, task_id)
                if not active:
                    return self.get(task_id)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"task {task_id} still running after {timeout} s")
            if time.monotonic() - last_sweep >= WAIT_SWEEP_SECONDS:
                last_sweep = time.monotonic()
                self.recover_lost(task_id, wait=False)
                if drive:  # a lost idempotent step may be READY again: run it here
                    self.runner.start(task_id)
            if joined:
                time.sleep(WAIT_POLL_SECONDS)

    # -- operate ----------------------------------------------------------------------------

    @contextmanager
    def _operate(self, task_id: int) -> Iterator[tuple[Session, TaskRecord]]:
        with self.store.write() as session:
            yield session, operations.load_task(session, task_id, lock=True)
            self.store.notify_work(session)
        self._work_made()

    @task_operation("RETRY")
    def retry(self, task_id: int) -> Task:
        """Retry all failed subtasks of a FAILED task. Call ``run``/``start`` to execute them."""
        with self._operate(task_id) as (session, task):
            operations.retry_task(session, task)
        return self.get(task_id)

    @task_operation("ROLLBACK")
    def rollback(self, task_id: int) -> Task:
        """Prepare to undo a FAILED task in reverse order (20004 if prohibited); then ``run``."""
        with self._operate(task_id) as (session, task):
            operations.rollback_task(session, task)
        return self.get(task_id)

    @task_operation("RETRY")
    def retry_subtask(self, task_id: int, subtask_id: int) -> Subtask:
        return self._subtask_op(task_id, subtask_id, operations.retry_subtask)

    @task_operation("SKIP")
    def skip_subtask(self, task_id: int, subtask_id: int) -> Subtask:
        return self._subtask_op(task_id, subtask_id, operations.skip_subtask)

    @task_operation("CANCEL")
    def cancel_subtask(self, task_id: int, subtask_id: int) -> Subtask:
        """Ask for a RUNNING subtask to stop; it ends FAILED with operation CANCEL."""
        # Answered with the state the cancel made (CANCELING), not a later read: the step may
        # have stopped and ended FAILED by the time a read would come back.
        with self._operate(task_id) as (session, task):
            sub = operations.load_subtask(session, task_id, subtask_id)
            operations.cancel_subtask(session, task, sub)
        self.runner.cancel_requested(subtask_id)
        return Subtask.from_record(sub)

    def _subtask_op(self, task_id: int, subtask_id: int, op: Any) -> Subtask:
        with self._operate(task_id) as (session, task):
            sub = operations.load_subtask(session, task_id, subtask_id)
            op(session, task, sub)
        return self.get(task_id).subtask(subtask_id)

    # -- retention --------------------------------------------------------------------------

    def purge(
        self,
        finished_before: datetime,
        statuses: Sequence[TaskStatus | str] | None = None,
        *,
        dry_run: bool = False,
        scheduled: bool = False,
    ) -> PurgeReport:
        """Remove the tasks (with their subtasks, logs and subject rows) of ``statuses`` (default
        SUCCESSFUL and FAILED) that finished before ``finished_before``, except those still
        needed (``engine.retention``); ``dry_run`` only counts. RequestInvalid for a cut-off in
        the future or a status that is not final; ResourceBusy while another purge of this
        database runs. A purge is an audit event of ours (PURGE_TASKS); a ``scheduled`` one only
        when it removed something."""
        cutoff, wanted = retention.checked(finished_before, statuses)
        if dry_run:
            return retention.purge(self.store, self.packages, cutoff, wanted, dry_run=True)
        start, status, report = utcnow(), FAILED, None
        try:
            report = retention.purge(self.store, self.packages, cutoff, wanted)
            status = SUCCESS
            return report
        finally:
            if not scheduled or (report is not None and report.tasks):
                self._purge_event(cutoff, wanted, report, status, start)

    def _purge_event(
        self,
        cutoff: datetime,
        statuses: Sequence[str],
        report: PurgeReport | None,
        status: str,
        start: datetime,
    ) -> None:
        info: dict[str, Any] = {"finishedBefore": cutoff.isoformat(), "statuses": list(statuses)}
        if report is not None:
            info |= {k: v for k, v in report.to_json().items() if k not in info}
        try:  # the purge happened (or was refused): a failed write must not hide that
            AuditEvents(self.store).record(
                PURGE_TASKS,
                status=status,
                resource=Resource(None, f"tasks finished before {cutoff.isoformat()}"),
                info=info,
                start_time=start,
            )
        except Exception:
            log.exception("audit event of a purge could not be written")

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        self.runner.close()
        self.services.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
