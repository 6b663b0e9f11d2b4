"""``/api/v2/obproxy/clusters``: create (a task), list, detail, edits, live parameters, and
the tasks on an existing cluster (add, take over, delete, restart, upgrade, stop, start
OBProxies; delete the cluster)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from engine import Task
from tasks.obproxy import (
    ClusterEdit,
    CreateObproxyClusterRequest,
    ObLink,
    add_links,
    add_obproxies,
    create_cluster,
    delete_cluster,
    delete_obproxies,
    delete_servers,
    edit_cluster,
    plan_cluster,
    remove_link,
    restart_obproxies,
    start_obproxies,
    stop_obproxies,
    take_over_obproxies,
    upgrade_obproxies,
)
from tasks.obproxy.bodies import (
    AddObproxiesRequest,
    DeleteServersRequest,
    ServerIdsRequest,
    UpgradeRequest,
)
from tasks.obproxy.clusters import SORTABLE, get_cluster, list_clusters
from tasks.obproxy.parameter_info import parameter_info
from tasks.obproxy.parameters import cluster_parameters
from tasks.obproxy.takeover import TakeOverRequest

from .. import models as m
from ..auth.caller import authenticated
from ..auth.users import User, with_creator_id
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from ..task_records import in_43_shape, per_host
from .bodies import documented, documented_array, json_body, submitted
from .ids import Id
from .tasks import creator_ids, engine_of

router = APIRouter(prefix="/api/v2/obproxy/clusters", tags=["obproxy"])
info_router = APIRouter(prefix="/api/v2/obproxy", tags=["obproxy"])


@info_router.get(
    "/parameterInfo",
    response_model=m.Envelope[m.Contents[m.ParameterInfo]],
    summary="OBProxy parameter metadata (from obproxy's source)",
)
def parameter_metadata(
    name: Annotated[str | None, Query(max_length=128, description="one parameter's name")] = None,
    version: Annotated[
        str | None, Query(max_length=64, description="an OBProxy version, e.g. 4.3.2.0")
    ] = None,
) -> Envelope:
    return ok({"contents": parameter_info(name, version)})


@router.post(
    "",
    response_model=m.Envelope[m.TaskInstance],
    summary="Create an OBProxy cluster (returns its task; with plan=true, the task it would "
    "submit, submitting nothing)",
    openapi_extra=documented(CreateObproxyClusterRequest),
)
async def create(
    request: Request,
    user: Annotated[User, Depends(authenticated)],
    plan: Annotated[bool, Query(description="ocptask's: validate and plan only")] = False,
) -> Envelope:
    if plan:
        body = await json_body(request)
        return ok(await run_in_threadpool(plan_cluster, engine_of(request), body))
    task = await submitted(request, user.name, create_cluster)
    return ok(task.to_instance())


@router.get("", response_model=m.Envelope[m.Page[m.ObproxyCluster]], summary="List clusters")
def list_all(request: Request, pages: Annotated[Paging, Depends(paging)]) -> Envelope:
    """OCP documents no filter for this list; ``sort`` takes its cluster's fields."""
    field, descending = pages.order(SORTABLE)
    contents, total = list_clusters(
        engine_of(request), pages.offset, pages.size, order_by=field, descending=descending
    )
    ids = creator_ids(request)
    return paged([with_creator_id(c, ids) for c in contents], total, pages.page, pages.size)


@router.get("/{id}", response_model=m.Envelope[m.ObproxyCluster], summary="Cluster detail")
def get_one(request: Request, id: Id) -> Envelope:
    return ok(with_creator_id(get_cluster(engine_of(request), id), creator_ids(request)))


@router.get(
    "/{id}/parameters",
    response_model=m.Envelope[m.Contents[m.ObproxyParameter]],
    summary="Parameters, read live from each OBProxy and grouped by value",
)
def parameters(request: Request, id: Id) -> Envelope:
    return ok({"contents": cluster_parameters(engine_of(request), id)})


@router.patch(
    "/{id}",
    response_model=m.Envelope[m.ObproxyCluster],
    summary="Set a cluster's address and port (given fields only)",
    openapi_extra=documented(ClusterEdit),
)
async def patch(request: Request, id: Id) -> Envelope:
    body = await json_body(request)
    edited = await run_in_threadpool(edit_cluster, engine_of(request), id, body)
    return ok(with_creator_id(edited, creator_ids(request)))


@router.post(
    "/{id}/obLinks/batchAdd",
    response_model=m.NoData,
    summary="Link more OceanBase clusters",
    openapi_extra=documented_array(ObLink),
)
async def add_ob_links(request: Request, id: Id) -> Envelope:
    body = await json_body(request)
    await run_in_threadpool(add_links, engine_of(request), id, body)
    return ok(has_data=False)


@router.delete(
    "/{id}/obLinks/{obClusterName}", response_model=m.NoData, summary="Unlink an OceanBase cluster"
)
def delete_ob_link(
    request: Request, id: Id, obClusterName: Annotated[str, Path(max_length=64)]
) -> Envelope:
    remove_link(engine_of(request), id, obClusterName)
    return ok(has_data=False)


# -- tasks on an existing cluster ---------------------------------------------------------------

Caller = Annotated[User, Depends(authenticated)]
ObproxyIds = Annotated[str, Path(max_length=20000, description="OBProxy ids, comma-separated")]


async def _task(call: Callable[..., Task], *args: Any) -> dict[str, Any]:
    """Run the embedded call off the event loop; its task as OCP's TaskInstance."""
    task = await run_in_threadpool(call, *args)
    return task.to_instance()


async def _task_43(call: Callable[..., Task], request: Request, id: int, user: User) -> Envelope:
    """OCP 4.3's calls on a cluster's OBProxies, by body: the task in 4.3's shape."""
    body = await json_body(request)
    task = await run_in_threadpool(call, engine_of(request), id, body, user.name)
    return ok(in_43_shape(task))


@router.delete(
    "/{id}", response_model=m.Envelope[m.TaskInstance], summary="Delete a cluster (a task)"
)
async def delete(request: Request, id: Id, user: Caller) -> Envelope:
    return ok(await _task(delete_cluster, engine_of(request), id, user.name))


@router.post(
    "/{id}/obproxies/batchAdd",
    response_model=m.Envelope[m.Contents[m.PerHostTaskInstance]],
    summary="Add OBProxies on more hosts (a task per host)",
    openapi_extra=documented(AddObproxiesRequest),
)
async def batch_add(request: Request, id: Id, user: Caller) -> Envelope:
    return await _per_host(add_obproxies, request, id, user)


@router.post(
    "/{id}/takeOver",
    response_model=m.Envelope[m.Contents[m.PerHostTaskInstance]],
    summary="Take over OBProxies installed by other means (a task per host)",
    openapi_extra=documented(TakeOverRequest),
)
async def take_over(request: Request, id: Id, user: Caller) -> Envelope:
    return await _per_host(take_over_obproxies, request, id, user)


async def _per_host(
    call: Callable[..., list[Task]], request: Request, id: int, user: User
) -> Envelope:
    """A call that starts a task per host, answered as OCP's ``data.contents``, each task with
    its ``hostId``."""
    body = await json_body(request)
    tasks = await run_in_threadpool(call, engine_of(request), id, body, user.name)
    return ok({"contents": [per_host(task) for task in tasks]})


@router.delete(
    "/{id}/obproxies/{obproxyIds}",
    response_model=m.Envelope[m.TaskInstance],
    summary="Delete OBProxies (a task)",
)
async def delete_some(request: Request, id: Id, obproxyIds: ObproxyIds, user: Caller) -> Envelope:
    return ok(await _task(delete_obproxies, engine_of(request), id, obproxyIds, user.name))


@router.post(
    "/{id}/obproxies/{obproxyIds}/restart",
    response_model=m.Envelope[m.TaskInstance],
    summary="Restart OBProxies, one host at a time (a task)",
)
async def restart(request: Request, id: Id, obproxyIds: ObproxyIds, user: Caller) -> Envelope:
    return ok(await _task(restart_obproxies, engine_of(request), id, obproxyIds, user.name))


@router.post(
    "/{id}/obproxies/{obproxyIds}/upgrade",
    response_model=m.Envelope[m.TaskInstance],
    summary="Upgrade OBProxies, one host at a time (a task)",
    openapi_extra=documented(UpgradeRequest),
)
async def upgrade(request: Request, id: Id, obproxyIds: ObproxyIds, user: Caller) -> Envelope:
    body = await json_body(request, required=False)  # OCP 4.0 sends none
    engine = engine_of(request)
    return ok(await _task(upgrade_obproxies, engine, id, obproxyIds, body, user.name))


@router.post(
    "/{id}/servers/delete",
    response_model=m.Envelope[m.TaskInstance43],
    summary="Delete OBProxies, leaving the hosts of skipHostOperationServerIds alone (OCP 4.3)",
    openapi_extra=documented(DeleteServersRequest),
)
async def delete_listed(request: Request, id: Id, user: Caller) -> Envelope:
    return await _task_43(delete_servers, request, id, user)


@router.post(
    "/{id}/servers/stop",
    response_model=m.Envelope[m.TaskInstance43],
    summary="Stop OBProxies (a task; OCP 4.3)",
    openapi_extra=documented(ServerIdsRequest),
)
async def stop(request: Request, id: Id, user: Caller) -> Envelope:
    return await _task_43(stop_obproxies, request, id, user)


@router.post(
    "/{id}/servers/start",
    response_model=m.Envelope[m.TaskInstance43],
    summary="Start stopped OBProxies (a task; ocptask's counterpart of stop)",
    openapi_extra=documented(ServerIdsRequest),
)
async def start(request: Request, id: Id, user: Caller) -> Envelope:
    return await _task_43(start_obproxies, request, id, user)
