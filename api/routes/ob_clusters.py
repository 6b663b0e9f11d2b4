"""``/api/v2/ob/clusters``: the OceanBase clusters obLinks name (the registry), listed as OCP's
"Query clusters" (``450.cluster-information/100``) lists them: ``name`` keyword, ``status``
values, ``sort``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tasks.obclusters.cluster import SORTABLE
from tasks.obclusters.registry import ObClusters

from .. import models as m
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from ..query import Listed, listed
from .ids import Id
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/ob/clusters", tags=["ob clusters"])


@router.get("", response_model=m.Envelope[m.Page[m.ObCluster]], summary="List OceanBase clusters")
def list_all(
    request: Request,
    pages: Annotated[Paging, Depends(paging)],
    name: Annotated[
        str | None, Query(max_length=128, description="a keyword of the name, any case")
    ] = None,
    status: Listed = None,
    withStandby: Annotated[
        bool | None,
        Query(description="OCP 4.0's (deprecated in 4.2): the registry holds no standby cluster"),
    ] = None,
) -> Envelope:
    # withStandby is honoured, not dropped: with or without standby clusters the list is the
    # same, since ocptask registers primary clusters only.
    column, descending = pages.order(SORTABLE)
    found, total = ObClusters(engine_of(request)).page(
        name=name,
        statuses=listed(status),
        order_by=column,
        descending=descending,
        offset=pages.offset,
        limit=pages.size,
    )
    return paged([c.to_ocp() for c in found], total, pages.page, pages.size)


@router.get("/{id}", response_model=m.Envelope[m.ObCluster], summary="OceanBase cluster detail")
def get_one(request: Request, id: Id) -> Envelope:
    return ok(ObClusters(engine_of(request)).get(id).to_ocp())
