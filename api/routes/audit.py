"""``GET /api/v2/audit/events``: OCP's event history (``AuditEventHistory``), and what the API
itself records: who is calling (``caller``, for the events the calls record where every surface
meets) and the refusals that never reached a recorded call (``refusal``: a permission or a body
refused before it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine import FieldError, RequestInvalid, members
from engine.audit import (
    FAILED,
    SORTABLE,
    SUCCESS,
    AuditEvents,
    Caller,
    EventFilter,
    Operation,
    Resource,
    set_caller,
    was_recorded,
)
from engine.audit_calls import record_task_operation
from tasks.hosts import audit_events as host_events
from tasks.obproxy import audit_events as obproxy_events

from .. import models as m
from ..envelope import Envelope, paged
from ..paging import Paging, paging
from ..query import Listed, listed
from .ids import MAX_ID
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/audit", tags=["audit"])


class AuditEventHistory(BaseModel):
    """OCP's record of one event (``engine.audit.to_ocp`` makes it)."""

    model_config = ConfigDict(extra="allow")

    id: int
    operationEvent: str = Field(description="OCP's operation event (CREATE_OB_PROXY_CLUSTER, …)")
    eventType: str = Field(description="OB_PROXY_CLUSTER_MANAGEMENT, COMPUTE_HOST_MANAGEMENT, …")
    resourceType: str | None = Field(description="OB_PROXY_CLUSTER, COMPUTE_HOST, TASK (ours)")
    resourceId: int | None
    resourceName: str | None
    parentResource: str | None
    operatorName: str | None
    operatorId: int | None
    status: str = Field(description="SUCCESS or FAILED (refused)")
    taskId: int | None = Field(description="the task the call started or operated on")
    executionType: str = Field(description="NEW or RETRY")
    eventInfo: str = Field(description="the request's parameters as JSON, secrets masked")
    clientIp: str | None = Field(description="the HTTP client's address; null from a CLI --db")
    startTime: str
    endTime: str


_TEXT = Annotated[str | None, Query(max_length=256)]


def _time(field: str, text: str | None) -> datetime | None:
    """OCP's OffsetDateTime (``2021-09-07T19:04:42.768+08:00``); a ``+`` sent unescaped in a
    query arrives as a space and is read as the ``+`` it was. UTC when no offset is given."""
    if text is None or not text.strip():
        return None
    value = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text.strip())
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        message = "must be a time such as 2021-09-07T19:04:42.768+08:00"
        raise RequestInvalid([FieldError(field, message, text, "query")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ids(field: str, values: list[str]) -> list[int]:
    try:
        ids = [int(v) for v in values]
    except ValueError:
        ids = []
    if len(ids) != len(values) or any(not 1 <= i <= MAX_ID for i in ids):
        message = "must be user ids (whole numbers), repeated or comma-separated"
        raise RequestInvalid([FieldError(field, message, ",".join(values), "query")])
    return ids


@router.get(
    "/events",
    response_model=m.Envelope[m.Page[AuditEventHistory]],
    summary="Query event history: who changed what, from where, with what result",
)
def list_events(
    request: Request,
    pages: Annotated[Paging, Depends(paging)],
    eventType: Listed = None,
    operationEvent: Listed = None,
    resourceName: _TEXT = None,
    operatorId: Listed = None,
    eventInfo: _TEXT = None,
    status: Annotated[str | None, Query(max_length=16, description="SUCCESS or FAILED")] = None,
    startTime: Annotated[str | None, Query(max_length=64, description="at or after")] = None,
    endTime: Annotated[str | None, Query(max_length=64, description="at or before")] = None,
    order: Annotated[
        str | None, Query(max_length=64, description="OCP's sort: startTime,desc")
    ] = None,
) -> Envelope:
    """Newest first unless ``order`` (or ``sort``) says otherwise; ``resourceName`` and
    ``eventInfo`` match a part of the value; the times bound when the event started."""
    wanted = EventFilter(
        event_types=[v.upper() for v in listed(eventType)],
        operation_events=[v.upper() for v in listed(operationEvent)],
        resource_name=resourceName or None,
        operator_ids=_ids("operatorId", listed(operatorId)),
        event_info=eventInfo or None,
        status=(members("status", [status], (SUCCESS, FAILED)) or [None])[0] if status else None,
        start_time=_time("startTime", startTime),
        end_time=_time("endTime", endTime),
    )
    sorting = Paging(pages.page, pages.size, (order,)) if order and order.strip() else pages
    column, descending = sorting.order(SORTABLE)
    contents, total = AuditEvents(engine_of(request).store).page(
        wanted, order_by=column, descending=descending, offset=pages.offset, limit=pages.size
    )
    return paged(contents, total, pages.page, pages.size)


# -- what the API records itself -----------------------------------------------------------------


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def caller(request: Request) -> None:
    """Every /api route's: the calls this request makes are recorded as its user's, from its
    client's address (after ``authenticated``, which found the user)."""
    user = getattr(request.state, "user", None)
    set_caller(getattr(user, "name", None), getattr(user, "id", None), _client(request))


_CLUSTER = "/api/v2/obproxy/clusters/{id}"
_TASK = "/api/v2/tasks/instances/{taskId}"
_ROUTES: dict[tuple[str, str], Operation | str] = {
    ("POST", "/api/v2/obproxy/clusters"): obproxy_events.CREATE,
    ("PATCH", _CLUSTER): obproxy_events.PATCH,
    ("DELETE", _CLUSTER): obproxy_events.DELETE_CLUSTER,
    ("POST", f"{_CLUSTER}/obLinks/batchAdd"): obproxy_events.ADD_LINK,
    ("DELETE", f"{_CLUSTER}/obLinks/{{obClusterName}}"): obproxy_events.DELETE_LINK,
    ("POST", f"{_CLUSTER}/obproxies/batchAdd"): obproxy_events.ADD,
    ("POST", f"{_CLUSTER}/takeOver"): obproxy_events.TAKE_OVER,
    ("DELETE", f"{_CLUSTER}/obproxies/{{obproxyIds}}"): obproxy_events.DELETE,
    ("POST", f"{_CLUSTER}/obproxies/{{obproxyIds}}/restart"): obproxy_events.RESTART,
    ("POST", f"{_CLUSTER}/obproxies/{{obproxyIds}}/upgrade"): obproxy_events.UPGRADE,
    ("POST", f"{_CLUSTER}/servers/delete"): obproxy_events.DELETE,
    ("POST", f"{_CLUSTER}/servers/stop"): obproxy_events.STOP,
    ("POST", f"{_CLUSTER}/servers/start"): obproxy_events.START,
    ("POST", "/api/v2/compute/hosts/batchCreate"): host_events.ADD_HOSTS,
    ("POST", "/api/v2/compute/hosts/batchDelete"): host_events.DELETE_HOSTS,
    ("DELETE", "/api/v2/compute/hosts/{hostId}"): host_events.DELETE_HOST,
    ("POST", f"{_TASK}/retry"): "RETRY",
    ("POST", f"{_TASK}/rollback"): "ROLLBACK",
    ("POST", f"{_TASK}/subtasks/{{subtaskId}}/retry"): "RETRY",
    ("POST", f"{_TASK}/subtasks/{{subtaskId}}/skip"): "SKIP",
    ("POST", f"{_TASK}/subtasks/{{subtaskId}}/cancel"): "CANCEL",
}
"""Each state-changing route's event (a task operation by its kind), for its refusals."""


async def refusal(request: Request, exc: Exception) -> None:
    """Record a refused state-changing call that no recorded call saw (a permission, a body
    that is not JSON, an unknown query parameter): FAILED, with the call's path parameters as
    its eventInfo (the body was not read, or not understood)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    operation = _ROUTES.get((request.method, path or ""))
    if operation is None or was_recorded(exc) or request.query_params.get("plan") == "true":
        return
    user = getattr(request.state, "user", None)
    who = Caller(getattr(user, "name", None), getattr(user, "id", None), _client(request))
    params = {k: _plain(v) for k, v in request.path_params.items()}
    engine = engine_of(request)
    if isinstance(operation, str):
        task_id, subtask_id = params.get("taskId"), params.get("subtaskId")
        await run_in_threadpool(
            record_task_operation, engine, operation, task_id, subtask_id, FAILED, caller=who
        )
        return
    own_id = params.get("id", params.get("hostId"))
    resource = Resource(own_id if isinstance(own_id, int) else None)
    await run_in_threadpool(
        AuditEvents(engine.store).record,
        operation,
        status=FAILED,
        resource=resource,
        info=params,
        caller=who,
    )


def _plain(value: Any) -> Any:
    """A path parameter as the event keeps it: a whole number as one."""
    text = str(value)
    return int(text) if text.isdigit() and len(text) < 19 else text[:256]
