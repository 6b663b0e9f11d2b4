"""``/api/v2/obproxy/clusters``: create (a task), list, detail, and live parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from engine import User
from tasks.obproxy import CreateObproxyClusterRequest, create_cluster
from tasks.obproxy.clusters import get_cluster, list_clusters
from tasks.obproxy.parameters import cluster_parameters

from .. import models as m
from ..auth import authenticated
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from .bodies import documented, submitted
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
