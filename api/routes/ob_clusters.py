"""``/api/v2/ob/clusters``: the OceanBase clusters obLinks name (the registry)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tasks.obclusters.registry import ObClusters

from .. import models as m
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from .ids import Id
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/ob/clusters", tags=["ob clusters"])


@router.get("", response_model=m.Envelope[m.Page[m.ObCluster]], summary="List OceanBase clusters")
def list_all(request: Request, pages: Annotated[Paging, Depends(paging)]) -> Envelope:
    registry = ObClusters(engine_of(request))
    found = registry.list(offset=pages.offset, limit=pages.size)
    return paged([c.to_ocp() for c in found], registry.count(), pages.page, pages.size)


@router.get("/{id}", response_model=m.Envelope[m.ObCluster], summary="OceanBase cluster detail")
def get_one(request: Request, id: Id) -> Envelope:
    return ok(ObClusters(engine_of(request)).get(id).to_ocp())
