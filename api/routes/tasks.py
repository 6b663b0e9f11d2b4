"""``/api/v2/tasks/instances``: list, detail, and OCP's task and subtask operations."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.routing import Route

from engine import Engine, FieldError, RequestInvalid, Task, TaskStatus, TaskType, members

from .. import models as m
from ..auth.caller import authenticated
from ..auth.permissions import check
from ..auth.users import Users
from ..envelope import Envelope, encode, ok, ok_encoded, paged
from ..paging import Paging, paging
from ..query import Listed, listed, refuse_unknown
from ..task_records import basic
from ..task_records import wrapped as wrapped_record
from .ids import MAX_ID, Id

router = APIRouter(prefix="/api/v2/tasks/instances", tags=["tasks"])
SORTABLE = {
    "id": "id",
    "name": "name",
    "status": "status",
    "createTime": "create_time",
    "startTime": "start_time",
    "finishTime": "finish_time",
}


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def creator_ids(request: Request) -> dict[str, int]:
    """Each user's id by name: records name their creator, OCP shows both."""
    users: Users = request.app.state.users
    return users.ids()


@router.get("", response_model=m.Envelope[m.Page[m.BasicTaskInstance]], summary="List tasks")
def list_tasks(
    request: Request,
    pages: Annotated[Paging, Depends(paging)],
    status: Listed = None,
    name: Annotated[str | None, Query(max_length=256, description="fuzzy")] = None,
    type: Annotated[
        str | None, Query(max_length=32, description="MANUAL, SYS_ONECE, SCHEDULED, SYS_SCHEDULED")
    ] = None,
    cluterName: Annotated[
        str | None, Query(max_length=256, description="OCP's spelling; fuzzy on the cluster name")
    ] = None,
    clusterName: Annotated[
        str | None, Query(max_length=256, description="the same as cluterName, spelt right")
    ] = None,
    clusterId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    tenantName: Annotated[str | None, Query(max_length=256)] = None,
    tenantId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    hostId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Envelope:
    engine = engine_of(request)
    column, descending = pages.order(SORTABLE)
    if cluterName and clusterName and cluterName != clusterName:
        message = f"says {clusterName!r} where cluterName says {cluterName!r}"
        raise RequestInvalid([FieldError("clusterName", message, clusterName, "query")])
    if tenantId is not None or tenantName:
        # ocptask has no tenants: no task is about one, as in an OCP without them. The other
        # filters are still refused as on any list (engine.page checks them otherwise).
        members("status", listed(status), TaskStatus.__members__)
        members("type", [type] if type else [], TaskType.__members__)
        return paged([], 0, pages.page, pages.size)
    tasks, total = engine.page(
        statuses=listed(status),
        name=name,
        task_type=type,
        host_id=hostId,
        cluster_id=clusterId,
        cluster_name=cluterName or clusterName,
        order_by=column,
        descending=descending,
        offset=pages.offset,
        limit=pages.size,
    )
    ids = creator_ids(request)
    contents = [basic(t, ids.get(t.creator)) for t in tasks]
    return paged(contents, total, pages.page, pages.size)


_DETAIL = f"{router.prefix}/{{taskId}}"


@router.get("/{taskId}", response_model=m.Envelope[m.WrappedTaskInstance], summary="Task detail")
async def get_task(request: Request, taskId: Id) -> Envelope:
    """On the event loop: the most polled call is a few indexed reads and, while the task is
    unchanged, a remembered rendering; a thread hop would cost more than the work."""
    return wrapped(request, engine_of(request).get(taskId))


async def _get_task_lean(request: Request) -> Envelope:
    user = await authenticated(request)  # what the FastAPI route's dependencies do
    check(request, user, "GET", _DETAIL)  # as the FastAPI route's, which it stands for
    refuse_unknown(request, frozenset())
    return await get_task(request, request.path_params["taskId"])


def lean_routes() -> list[Route]:
    """Plain Starlette routes for the most polled call, placed ahead of FastAPI's routes.

    Task detail is what clients poll, and FastAPI's per-request work (solving dependencies,
    validating parameters) cost more than the rest of the answer. The lean route calls the same
    authentication and the same endpoint; it takes only ids that are certainly valid, so every
    other request (and the OpenAPI description) is the FastAPI route's.
    """
    route = Route(
        f"{router.prefix}/{{taskId:plain_id}}", _get_task_lean, methods=["GET"], name="task-lean"
    )
    route.methods = {"GET"}  # as the FastAPI route: HEAD is 405
    return [route]


def wrapped(request: Request, task: Task) -> Envelope:
    return ok_encoded(_rendered(task, creator_ids(request).get(task.creator)))


# A task's detail as JSON, remembered with the snapshot it was made from: the engine hands out
# the same snapshot while the task's rows are unchanged, and a polled task mostly is.
_RENDERED: OrderedDict[int, tuple[Task, int | None, bytes]] = OrderedDict()
_RENDERED_LOCK = threading.Lock()
_RENDERED_SIZE = 256


def _rendered(task: Task, creator_id: int | None) -> bytes:
    with _RENDERED_LOCK:
        known = _RENDERED.get(task.id)
        if known is not None and known[0] is task and known[1] == creator_id:
            _RENDERED.move_to_end(task.id)
            return known[2]
    data = encode(wrapped_record(task, creator_id))
    with _RENDERED_LOCK:
        _RENDERED[task.id] = (task, creator_id, data)
        _RENDERED.move_to_end(task.id)
        while len(_RENDERED) > _RENDERED_SIZE:
            _RENDERED.popitem(last=False)
    return data


@router.post(
    "/{taskId}/retry",
    response_model=m.Envelope[m.WrappedTaskInstance],
    summary="Retry every failed subtask of a failed task",
)
def retry_task(request: Request, taskId: Id) -> Envelope:
    engine = engine_of(request)
    return wrapped(request, engine.retry(taskId))


@router.post(
    "/{taskId}/rollback",
    response_model=m.Envelope[m.WrappedTaskInstance],
    summary="Roll back a failed task",
)
def rollback_task(request: Request, taskId: Id) -> Envelope:
    engine = engine_of(request)
    return wrapped(request, engine.rollback(taskId))


@router.get(
    "/{taskId}/subtasks/{subtaskId}/log",
    response_model=m.Envelope[m.SubtaskLog],
    summary="A subtask's log",
)
def subtask_log(request: Request, taskId: Id, subtaskId: Id) -> Envelope:
    return ok({"log": engine_of(request).log(taskId, subtaskId)})


@router.post(
    "/{taskId}/subtasks/{subtaskId}/retry",
    response_model=m.Envelope[m.SubtaskInstance],
    summary="Retry a failed subtask",
)
def retry_subtask(request: Request, taskId: Id, subtaskId: Id) -> Envelope:
    return ok(engine_of(request).retry_subtask(taskId, subtaskId).to_ocp())


@router.post(
    "/{taskId}/subtasks/{subtaskId}/skip",
    response_model=m.NoData,
    summary="Skip a failed subtask (it counts as successful)",
)
def skip_subtask(request: Request, taskId: Id, subtaskId: Id) -> Envelope:
    engine_of(request).skip_subtask(taskId, subtaskId)
    return ok(has_data=False)


@router.post(
    "/{taskId}/subtasks/{subtaskId}/cancel",
    response_model=m.NoData,
    summary="Cancel a running subtask (it ends failed)",
)
def cancel_subtask(request: Request, taskId: Id, subtaskId: Id) -> Envelope:
    engine_of(request).cancel_subtask(taskId, subtaskId)
    return ok(has_data=False)
