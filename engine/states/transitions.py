"""OCP's state machine (ocp-task-api.md, "Engine state machine"), over the records.

Every function runs inside the caller's write transaction, so a transition is all-or-nothing. The
task's ``operation`` decides the direction: in a ROLLBACK task a subtask becomes READY once all of
its downstreams are PENDING (reverse dependency order); otherwise once all upstreams succeeded.

Operator actions are in ``operations`` (rare, on ORM objects). The runner's path (a run's end,
promote, settle) runs once or more per node, so it uses SQL expressions on the tables directly:
the ORM's per-statement cost would otherwise be most of the engine's per-node overhead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)

from engine.clock import utcnow
from engine.context import Context
from engine.db import revisions, subtask_log
from engine.db.compiled import CompiledStatement, StatementConn, in_list, list_params
from engine.db.records import SUBTASKS, TASKS
from engine.enums import NodeType, Operation, SubtaskStatus, TaskStatus, TaskType
from engine.errors import ContextConflict, TaskNotFound, found
from engine.template import PlannedSubtask

S = SubtaskStatus
ACTIVE = (S.READY.value, S.RUNNING.value, S.CANCELING.value)
Row = Mapping[str, Any]


# -- the runner's side --------------------------------------------------------------------------
# Statements are built once: building a SQLAlchemy statement costs several times executing it.


def _literals(values: Sequence[str]) -> list[Any]:
    """Values of an IN list as literals: compiled once (``compiled``), not expanded per call."""
    return [literal(v) for v in values]


ROW_COLUMNS = (
    SUBTASKS.c.id,
    SUBTASKS.c.status,
    SUBTASKS.c.operation,
    SUBTASKS.c.upstreams,
    SUBTASKS.c.downstreams,
    SUBTASKS.c.parallel_idx,
)
_OPERATION = select(TASKS.c.operation).where(TASKS.c.id == bindparam("task_id"))
_TASK_OPERATION = CompiledStatement(_OPERATION)
_ROW = CompiledStatement(select(*ROW_COLUMNS).where(SUBTASKS.c.id == bindparam("id")))
_COUNTS = CompiledStatement(
    select(SUBTASKS.c.status, func.count().label("n"))
    .where(SUBTASKS.c.task_id == bindparam("task_id"))
    .group_by(SUBTASKS.c.status)
)
_ANY_ACTIVE = CompiledStatement(
    select(SUBTASKS.c.id)
    .where(SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status.in_(_literals(ACTIVE)))
    .limit(1)
)


def has_active(conn: StatementConn, task_id: int) -> bool:
    """Whether any subtask of the task is READY, RUNNING or CANCELING (it may progress)."""
    return _ANY_ACTIVE.run(conn, {"task_id": task_id}).first() is not None


_PENDING_IDS = CompiledStatement(
    select(SUBTASKS.c.id).where(
        SUBTASKS.c.task_id == bindparam("task_id"), SUBTASKS.c.status == S.PENDING.value
    )
)
_END_TASK = CompiledStatement(
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_id"))
    .values(status=bindparam("v_status"), finish_time=bindparam("v_finish_time"))
)


@lru_cache(maxsize=128)
def _update_subtask(
    columns: frozenset[str], expected: int, owned: bool = False
) -> CompiledStatement:
    """``UPDATE subtask SET <columns> WHERE id = :sid [AND status IN (<expected> statuses)]
    [AND executor = :owner]``, built once."""
    values = {name: bindparam(f"v_{name}") for name in columns}
    where = [SUBTASKS.c.id == bindparam("sid")]
    if expected:
        where.append(in_list(SUBTASKS.c.status, "expect", expected))
    if owned:
        where.append(SUBTASKS.c.executor == bindparam("owner"))
    return CompiledStatement(
        update(SUBTASKS).where(*where).values({**values, **revisions.bumped(SUBTASKS)})
    )


def set_subtask(
    conn: StatementConn,
    subtask_id: int,
    *,
    expect: Iterable[str] | None = None,
    owner: str | None = None,
    **values: Any,
) -> bool:
    """Update one subtask; with ``expect``, only if its status is one of those, and with
    ``owner``, only if that executor still holds it. True if done."""
    params = {f"v_{name}": value for name, value in values.items()}
    params["sid"] = subtask_id
    statuses = [] if expect is None else list(expect)
    if expect is not None and not statuses:
        return False  # expecting none of the statuses: nothing can match
    params.update(list_params("expect", statuses))
    if owner is not None:
        params["owner"] = owner
    statement = _update_subtask(frozenset(values), len(statuses), owner is not None)
    return statement.run(conn, params).rowcount == 1


_LOCK_TASK = CompiledStatement(_OPERATION.with_for_update())


def lock_task(conn: StatementConn, task_id: int) -> str:
    """Serialise every transition of one task: take its row lock, return its operation.

    Needed wherever transactions are not serial already (PostgreSQL, READ COMMITTED): two
    upstreams finishing at once would each see the other unfinished and neither would promote
    their common downstream. SQLite's BEGIN IMMEDIATE serialises writers by itself (and SQLite
    has no FOR UPDATE; SQLAlchemy leaves it out there).
    """
    operation = found(_LOCK_TASK.run(conn, {"task_id": task_id}).scalar(), TaskNotFound, task_id)
    return operation


_TRY_LOCK_TASK = CompiledStatement(_OPERATION.with_for_update(skip_locked=True))


def try_lock_task(conn: StatementConn, task_id: int) -> str | None:
    """``lock_task`` that gives up at once (None) when another executor holds the task."""
    return _TRY_LOCK_TASK.run(conn, {"task_id": task_id}).scalar()


def task_operation(conn: StatementConn, task_id: int) -> str:
    operation = found(
        _TASK_OPERATION.run(conn, {"task_id": task_id}).scalar(), TaskNotFound, task_id
    )
    return operation


def subtask_row(conn: StatementConn, subtask_id: int) -> Row | None:
    return _ROW.run(conn, {"id": subtask_id}).first()


def end_values(sub: Row, *, ok: bool, interrupted: bool, context: Context | None) -> dict[str, Any]:
    """The columns that record the end of one execution (or skip) of ``sub``: its status,
    ``CANCEL`` if interrupted, the finish time, and the context it produced if it succeeded."""
    values: dict[str, Any] = {"finish_time": utcnow()}
    if interrupted:
        values.update(status=S.FAILED.value, operation=Operation.CANCEL.value)
    elif not ok:
        values["status"] = S.FAILED.value
    elif sub["operation"] in (Operation.ROLLBACK, Operation.ROLLBACK_SKIP):
        values["status"] = S.PENDING.value
    else:
        values["status"] = S.SUCCESSFUL.value
    if context is not None and ok:
        values["context"] = context.to_json()
    return values


def advance(
    conn: StatementConn,
    task_id: int,
    sub: Row,
    ended: Mapping[str, Any],
    *,
    rolling_back: bool,
    settles: bool = True,
) -> None:
    """After ``sub`` ended with the ``ended`` values (``end_values``): make READY whatever that
    unblocks, else settle the task. ``sub`` needs id, upstreams and downstreams.

    ``settles=False``: the caller settles the task itself once it has recorded every end of its
    transaction (a group commit): settling after each would only find the others RUNNING."""
    readied = False
    if ended["status"] == S.SUCCESSFUL and not rolling_back:
        known = {}
        if "context" in ended:  # otherwise read it back: a skipped subtask keeps its own
            known[sub["id"]] = {"status": S.SUCCESSFUL.value, "context": ended["context"]}
        readied = promote(
            conn, sub["downstreams"], rolling_back=False, known=known, one_succeeded=True
        )
    elif ended["status"] == S.PENDING and rolling_back:
        readied = promote(conn, sub["upstreams"], rolling_back=True)
    if not readied and settles:
        settle(conn, task_id, rolling_back=rolling_back)


_FEW = 32  # ids per statement; each count up to it has its statement compiled once


@lru_cache(maxsize=2 * _FEW)
def _rows_of(count: int, with_context: bool) -> CompiledStatement:
    columns = (*ROW_COLUMNS, SUBTASKS.c.context) if with_context else ROW_COLUMNS
    return CompiledStatement(select(*columns).where(in_list(SUBTASKS.c.id, "id", count)))


def _rows(conn: StatementConn, ids: Iterable[int], *, with_context: bool = False) -> list[Row]:
    ids = list(ids)
    if not ids:
        return []
    rows: list[Row] = []
    for start in range(0, len(ids), _FEW):  # a long list (a join's upstreams) in slices
        part = ids[start : start + _FEW]
        rows += _rows_of(len(part), with_context).run(conn, list_params("id", part)).rows
    return rows


def promote(
    conn: StatementConn,
    candidate_ids: Iterable[int],
    *,
    rolling_back: bool,
    known: Mapping[int, Row] | None = None,
    one_succeeded: bool = False,
) -> bool:
    """Make READY those candidates whose neighbours now allow it. True if any became READY.

    ``known`` holds rows (status, context) the caller just wrote, to save reading them back.
    ``one_succeeded``: the candidates are the downstreams of one upstream that just succeeded;
    each counts it off (``waiting``) and is looked at whole only once none is left, so a join
    of k upstreams costs O(k) in all instead of O(k) per upstream. Candidates are counted off,
    and made READY, a slice at a time: a fan-out's root readies its leaves in few statements.
    """
    known = known or {}
    readied = False
    if one_succeeded and not rolling_back:
        candidates = _counted_down(conn, list(candidate_ids))
    else:
        candidates = _rows(conn, candidate_ids)
    ready: dict[tuple[Any, ...], tuple[dict[str, Any], list[int]]] = {}  # values → ids
    for cand in candidates:
        if rolling_back:
            waiting = cand["operation"] == Operation.ROLLBACK and cand["status"] in (
                S.SUCCESSFUL,
                S.FAILED,
            )
            if waiting and all(d["status"] == S.PENDING for d in _rows(conn, cand["downstreams"])):
                readied |= set_subtask(conn, cand["id"], status=S.READY.value)
        elif cand["status"] == S.PENDING:
            # Candidates with the same upstreams and parallel index get the same context.
            key = (tuple(cand["upstreams"]), cand["parallel_idx"])
            if key in ready:
                ready[key][1].append(cand["id"])
                continue
            others = [i for i in cand["upstreams"] if i not in known]
            ups = [known[i] for i in cand["upstreams"] if i in known]
            ups += _rows(conn, others, with_context=True)
            if all(u["status"] == S.SUCCESSFUL for u in ups):
                values = _ready_values(conn, cand, ups)
                if values is not None:
                    ready[key] = (values, [cand["id"]])
    for values, ids in ready.values():
        readied |= _set_many(conn, ids, values) > 0
    return readied


_COUNTED = SUBTASKS.c.waiting <= 0  # in RETURNING: the count after this statement's decrement


@lru_cache(maxsize=_FEW)
def _count_down_of(count: int) -> CompiledStatement:
    """Count one upstream off each PENDING subtask of the slice; each row comes back with its
    new count, and with its upstreams once none is left (a join's long list is not decoded at
    every upstream's end)."""
    upstreams = case((_COUNTED, SUBTASKS.c.upstreams))
    return CompiledStatement(
        update(SUBTASKS)
        .where(in_list(SUBTASKS.c.id, "id", count), SUBTASKS.c.status == S.PENDING.value)
        .values(waiting=SUBTASKS.c.waiting - 1, **revisions.bumped(SUBTASKS))
        .returning(
            SUBTASKS.c.waiting,
            *(c for c in ROW_COLUMNS if c.key != "upstreams"),
            type_coerce(upstreams, SUBTASKS.c.upstreams.type).label("upstreams"),
        )
    )


def _counted_down(conn: StatementConn, ids: list[int]) -> list[Row]:
    """One upstream fewer for each PENDING subtask of ``ids`` to wait for. Returns, in the
    order of ``ids``, the rows to look at whole: those with none left, and rows made before the
    count existed (they have none: looked at whole every time, as they always were). Others
    still wait, and a subtask not PENDING waits for nothing."""
    whole: dict[int, Row] = {}
    uncounted: list[int] = []
    for start in range(0, len(ids), _FEW):
        part = ids[start : start + _FEW]
        for row in _count_down_of(len(part)).run(conn, list_params("id", part)):
            if row["upstreams"] is not None:
                whole[row["id"]] = row
            elif row["waiting"] is None:
                uncounted.append(row["id"])
    for row in _rows(conn, uncounted):
        whole[row["id"]] = row
    return [whole[i] for i in ids if i in whole]


def _ready_values(conn: StatementConn, cand: Row, ups: list[Row]) -> dict[str, Any] | None:
    """What makes ``cand`` READY: its status, and its upstreams' contexts merged; None if they
    conflict (then it is FAILED here, the conflict in its log)."""
    contexts = [Context.from_json(u["context"]) for u in ups if u["context"] is not None]
    if not contexts:
        return {"status": S.READY.value}
    try:
        merged = Context.merge(contexts, cand["parallel_idx"])
    except ContextConflict as exc:
        set_subtask(conn, cand["id"], status=S.FAILED.value, finish_time=utcnow())
        note = subtask_log.header(cand["operation"]) + subtask_log.line("ERROR", str(exc))
        subtask_log.append_row(conn, cand["id"], note)
        return None
    return {"status": S.READY.value, "context": merged.to_json()}


@lru_cache(maxsize=4 * _FEW)
def _update_many(columns: frozenset[str], count: int) -> CompiledStatement:
    values = {name: bindparam(f"v_{name}") for name in columns}
    return CompiledStatement(
        update(SUBTASKS)
        .where(in_list(SUBTASKS.c.id, "id", count))
        .values({**values, **revisions.bumped(SUBTASKS)})
    )


def _set_many(conn: StatementConn, ids: list[int], values: dict[str, Any]) -> int:
    """The same values on several subtasks, a slice at a time; how many rows changed."""
    params = {f"v_{name}": value for name, value in values.items()}
    changed = 0
    for start in range(0, len(ids), _FEW):
        part = ids[start : start + _FEW]
        statement = _update_many(frozenset(values), len(part))
        changed += statement.run(conn, {**params, **list_params("id", part)}).rowcount
    return changed


def settle(conn: StatementConn, task_id: int, *, rolling_back: bool | None = None) -> None:
    """Roll the task status up from its subtasks once nothing can progress.

    Deliberately later than OCP's "any subtask FAILED -> task FAILED": a failure stops only its
    own downstreams, independent branches (other hosts' chains) run to their end, and the task
    turns FAILED when nothing is READY, RUNNING or CANCELING. One dead host never strands the
    others half-installed, and a retry then has exactly the failed part to redo.
    """
    if has_active(conn, task_id):
        return  # the common case, answered from the index without counting
    if rolling_back is None:
        rolling_back = task_operation(conn, task_id) == Operation.ROLLBACK
    counts = _counts(conn, task_id)
    if not rolling_back and counts.get(S.PENDING, 0) and not counts.get(S.FAILED, 0):
        # Defensive: something unblocked but never promoted (e.g. a crash mid-transition).
        pending = [row["id"] for row in _PENDING_IDS.run(conn, {"task_id": task_id})]
        promote(conn, pending, rolling_back=False)
        counts = _counts(conn, task_id)
        if any(counts.get(s, 0) for s in ACTIVE):
            return
    total = sum(counts.values())
    done = counts.get(S.PENDING if rolling_back else S.SUCCESSFUL, 0) == total
    status = TaskStatus.SUCCESSFUL if done else TaskStatus.FAILED
    params = {"task_id": task_id, "v_status": status.value, "v_finish_time": utcnow()}
    _END_TASK.run(conn, params)


def _counts(conn: StatementConn, task_id: int) -> dict[str, int]:
    return {row["status"]: row["n"] for row in _COUNTS.run(conn, {"task_id": task_id})}


# -- a new task -----------------------------------------------------------------------------

_LINK_SUBTASKS = (
    update(SUBTASKS)
    .where(SUBTASKS.c.id == bindparam("sid"))
    .values(
        upstreams=bindparam("v_upstreams"),
        downstreams=bindparam("v_downstreams"),
        status=bindparam("v_status"),
        waiting=bindparam("v_waiting"),
    )
)


def insert_task(
    conn: Connection,
    *,
    name: str,
    plan: Sequence[PlannedSubtask],
    context: Context,
    payload: dict[str, Any],
    creator: str,
    executor: str,
    task_type: TaskType,
    task_definition_id: int,
) -> int:
    """Write a new task from its expanded plan: RUNNING, roots READY, the rest PENDING, with
    ids that follow seriesId; returns its id."""
    now = utcnow()
    task_id: int = conn.execute(
        insert(TASKS).returning(TASKS.c.id),
        {
            "name": name,
            "type": task_type.value,
            "status": TaskStatus.RUNNING.value,
            "operation": Operation.EXECUTE.value,
            "creator": creator,
            "executor": executor,
            "task_definition_id": task_definition_id,
            "context": context.to_json(),
            "payload": payload,
            "create_time": now,
            "start_time": now,
        },
    ).scalar_one()
    rows = [
        {
            "task_id": task_id,
            "series_id": planned.series_id,
            "name": planned.node.name,
            "description": planned.node.description or planned.node.name,
            "class_name": planned.node.class_name,
            "node_type": NodeType.JAVA_TASK.value,
            "timeout": planned.node.timeout,
            "status": S.PENDING.value,
            "operation": Operation.EXECUTE.value,
            "run_time": 1,
            "parallel_idx": planned.parallel_idx,
            "prohibit_rollback": planned.node.prohibit_rollback,
            "context": context.copy(parallel_idx=planned.parallel_idx).to_json(),
            "upstreams": [],
            "downstreams": [],
            "create_time": now,
        }
        for planned in plan
    ]
    if rows:
        # Ids follow seriesId: rows come back in the order they were sent.
        insert_subtasks = insert(SUBTASKS).returning(SUBTASKS.c.id, sort_by_parameter_order=True)
        ids = list(conn.execute(insert_subtasks, rows).scalars())
        links = [
            {
                "sid": ids[p.series_id],
                "v_upstreams": [ids[i] for i in p.upstreams],
                "v_downstreams": [ids[i] for i in p.downstreams],
                "v_status": (S.PENDING if p.upstreams else S.READY).value,
                "v_waiting": len(p.upstreams),
            }
            for p in plan
        ]
        conn.execute(_LINK_SUBTASKS, links)
    settle(conn, task_id)
    return task_id


def add_strings(conn: Connection, task_id: int, values: dict[str, str]) -> None:
    """Add ``stringMap`` entries to a task just inserted (its context and every subtask's):
    ids its package wrote in the submit's transaction, after the task row, that OCP shows in
    the context from the start (a batchAdd task's ``obproxy_server_id``)."""
    row = conn.execute(select(TASKS.c.context).where(TASKS.c.id == task_id)).first()
    if row is None:
        return
    task_context = Context.from_json(row.context)
    task_context.string_map.update(values)
    conn.execute(
        update(TASKS)
        .where(TASKS.c.id == task_id)
        .values(context=task_context.to_json(), **revisions.bumped(TASKS))
    )
    subs = conn.execute(
        select(SUBTASKS.c.id, SUBTASKS.c.context).where(SUBTASKS.c.task_id == task_id)
    ).all()
    for sub in subs:
        context = Context.from_json(sub.context)
        context.string_map.update(values)
        conn.execute(
            update(SUBTASKS)
            .where(SUBTASKS.c.id == sub.id)
            .values(context=context.to_json(), **revisions.bumped(SUBTASKS))
        )
