"""``/api/v2/obproxy/clusters``: create (a task), list, detail, edits, and live parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from engine import User
from tasks.obproxy import (
    ClusterEdit,
    CreateObproxyClusterRequest,
    ObLink,
    add_links,
    create_cluster,
    edit_cluster,
    remove_link,
)
from tasks.obproxy.clusters import get_cluster, list_clusters
from tasks.obproxy.parameters import cluster_parameters

from .. import models as m
from ..auth import authenticated
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from .bodies import documented, documented_array, json_body, submitted
from .ids import Id
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/obproxy/clusters", tags=["obproxy"])


@router.post(
    "",
    response_model=m.Envelope[m.TaskInstance],
    summary="Create an OBProxy cluster (returns its task)",
    openapi_extra=documented(CreateObproxyClusterRequest),
)
async def create(request: Request, user: Annotated[User, Depends(authenticated)]) -> Envelope:
    task = await submitted(request, user.name, create_cluster)
    return ok(task.to_instance())


@router.get("", response_model=m.Envelope[m.Page[m.ObproxyCluster]], summary="List clusters")
def list_all(request: Request, pages: Annotated[Paging, Depends(paging)]) -> Envelope:
    contents, total = list_clusters(engine_of(request), pages.offset, pages.size)
    return paged(contents, total, pages.page, pages.size)


@router.get("/{id}", response_model=m.Envelope[m.ObproxyCluster], summary="Cluster detail")
def get_one(request: Request, id: Id) -> Envelope:
    return ok(get_cluster(engine_of(request), id))


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
    return ok(await run_in_threadpool(edit_cluster, engine_of(request), id, body))


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
