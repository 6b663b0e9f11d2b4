"""How calls become audit events (``audit``: the table, its writer, who is calling): a task
package's embedded function (``audited``), a registry's change (``recorded``) and the Engine's
task operations (``task_operation``), each recorded once where every surface meets, SUCCESS or
FAILED, a refusal marked so that no surface records it again. Writing an event never fails the
call: a failed write is logged."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from engine.clock import utcnow
from engine.db.store import Store
from engine.errors import OcpTaskError

from .audit import (
    FAILED,
    NEW,
    RETRY,
    SUCCESS,
    AuditEvents,
    Caller,
    Operation,
    Resource,
    mark_recorded,
)
from .db.row_ids import is_row_id

log = logging.getLogger("ocptask.audit")
_inside: ContextVar[bool] = ContextVar("ocptask_audit_inside", default=False)

# Ours: OCP has no event for these task operations, nor a type or resource for a task.
TASK_MANAGEMENT, TASK = "TASK_MANAGEMENT", "TASK"
ROLLBACK_TASK, SKIP_SUBTASK, CANCEL_SUBTASK = "ROLLBACK_TASK", "SKIP_SUBTASK", "CANCEL_SUBTASK"
RETRY_TASK = "RETRY_TASK"  # a retry of a task no recorded call started (a scheduled one)


F = TypeVar("F", bound=Callable[..., Any])
Arguments = Mapping[str, Any]
"""A call's arguments by parameter name (``engine``, ``body``, ``creator``, …)."""


class Outcome:
    """What a call recorded by ``recorded`` tells its event once it knows: the resource's id."""

    resource_id: int | None = None


_inside_call: ContextVar[bool] = ContextVar("ocptask_audit_recorded", default=False)


@contextmanager
def recorded(store: Store, operation: Operation, name: str | None, info: Any) -> Iterator[Outcome]:
    """One event for the call inside (a registry's change, not a task package's embedded
    function): SUCCESS, or FAILED when it raised (re-raised as it was). What it does on the way
    through another recorded call is part of it. A failed write is logged, never raised."""
    outcome = Outcome()
    if _inside_call.get():
        yield outcome
        return
    token, start, status = _inside_call.set(True), utcnow(), FAILED
    try:
        yield outcome
        status = SUCCESS
    finally:
        _inside_call.reset(token)
        try:  # the change happened (or was refused): a failed write must not hide that
            store.ensure_schema()
            resource = Resource(outcome.resource_id, name)
            AuditEvents(store).record(
                operation, status=status, resource=resource, info=info, start_time=start
            )
        except Exception:
            log.exception("audit event %s (%s) could not be written", operation.event, status)


def audited(
    operation: Operation,
    *,
    info: Callable[[Arguments], Any],
    resource: Callable[[Arguments, Any], Resource],
) -> Callable[[F], F]:
    """Record each call of a task package's embedded function (its first parameter the Engine)
    as one event: SUCCESS with the tasks it started, or FAILED when it refused (an OcpTaskError,
    re-raised as it was). ``info(args)`` is the request as the event shows it (its secrets
    masked); ``resource(args, result)`` what it acts on, asked before the call (``result``
    None: what a delete removes is still there) and after it (what a create made). The
    operator is the call's ``creator`` when it takes one, else the caller. A call made inside
    another recorded one is part of it and not recorded again."""

    def wrap(call: F) -> F:
        signature = inspect.signature(call)

        @functools.wraps(call)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                return call(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            start = utcnow()
            before = _resource(resource, arguments, None)  # what a delete removes is named now
            token = _inside.set(True)
            try:
                result = call(*args, **kwargs)
            except OcpTaskError as exc:
                _write(operation, arguments, None, FAILED, start, info, before)
                mark_recorded(exc)
                raise
            finally:
                _inside.reset(token)
            after = _resource(resource, arguments, result)  # what a create made has its id now
            _write(operation, arguments, result, SUCCESS, start, info, _merged(after, before))
            return result

        return recorded  # type: ignore[return-value]

    return wrap


def _resource(
    resource: Callable[[Arguments, Any], Resource], arguments: Arguments, result: Any
) -> Resource:
    try:
        return resource(arguments, result)
    except Exception:  # a name not found is no reason to lose the event
        log.exception("the resource of an audit event could not be named")
        return Resource()


def _merged(after: Resource, before: Resource) -> Resource:
    return Resource(
        after.id if after.id is not None else before.id,
        after.name if after.name is not None else before.name,
        after.parent if after.parent is not None else before.parent,
    )


def _write(
    operation: Operation,
    arguments: Arguments,
    result: Any,
    status: str,
    start: datetime,
    info: Callable[[Arguments], Any],
    resource: Resource,
) -> None:
    try:
        creator = arguments.get("creator")
        AuditEvents(arguments["engine"].store).record(
            operation,
            status=status,
            resource=resource,
            info=info(arguments),
            task_ids=_task_ids(result),
            operator=creator if isinstance(creator, str) else None,
            start_time=start,
        )
    except Exception:
        log.exception("audit event %s (%s) could not be written", operation.event, status)


def _task_ids(result: Any) -> list[int]:
    items = result if isinstance(result, list) else [result]
    return [t.id for t in items if isinstance(getattr(t, "id", None), int) and hasattr(t, "status")]


def task_operation(kind: str) -> Callable[[F], F]:
    """Record an Engine task operation (``RETRY``, ``ROLLBACK``, ``SKIP``, ``CANCEL``) on
    ``(self, task_id[, subtask_id])`` (see ``record_task_operation``)."""

    def wrap(call: F) -> F:
        @functools.wraps(call)
        def recorded(self: Any, task_id: int, *rest: Any) -> Any:
            start = utcnow()
            subtask_id = rest[0] if rest else None
            try:
                result = call(self, task_id, *rest)
            except OcpTaskError as exc:
                record_task_operation(self, kind, task_id, subtask_id, FAILED, start=start)
                mark_recorded(exc)
                raise
            record_task_operation(self, kind, task_id, subtask_id, SUCCESS, start=start)
            return result

        return recorded  # type: ignore[return-value]

    return wrap


_OURS = {"RETRY": RETRY_TASK, "ROLLBACK": ROLLBACK_TASK, "SKIP": SKIP_SUBTASK}
_OURS["CANCEL"] = CANCEL_SUBTASK


def record_task_operation(
    engine: Any,
    kind: str,
    task_id: Any,
    subtask_id: Any,
    status: str,
    *,
    caller: Caller | None = None,
    start: datetime | None = None,
) -> None:
    """One event for a task operation on ``engine`` (an Engine: its store, ``get``). A retry is
    the event of the call that started the task, again, with executionType RETRY, as OCP records
    it; the others are events of ours about what that call was about (about the task itself
    when no call was recorded: a scheduled task)."""
    try:
        events = AuditEvents(engine.store)
        known = is_row_id(task_id)  # beyond it, no task: and PostgreSQL refuses the number
        first = events.started(task_id) if known else None
        info: dict[str, Any] = {"taskId": task_id}
        if subtask_id is not None:
            info["subtaskId"] = subtask_id
        if first is not None:
            event = first.operation_event if kind == "RETRY" else _OURS[kind]
            operation = Operation(event, first.event_type, first.resource_type)
            resource = Resource(first.resource_id, first.resource_name, first.parent_resource)
        else:
            operation = Operation(_OURS[kind], TASK_MANAGEMENT, TASK)
            resource = Resource(task_id if known else None, _task_name(engine, task_id))
        events.record(
            operation,
            status=status,
            resource=resource,
            info=info,
            task_ids=[task_id] if known else [],
            execution_type=RETRY if kind == "RETRY" else NEW,
            caller=caller,
            start_time=start,
        )
    except Exception:
        log.exception("audit event of %s on task %s could not be written", kind, task_id)


def _task_name(engine: Any, task_id: Any) -> str | None:
    try:
        return str(engine.get(task_id).name)
    except Exception:
        return None
