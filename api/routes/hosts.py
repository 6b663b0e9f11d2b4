"""``/api/v2/compute/hosts``: the host registry tasks run on, and batchCreate to add to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from engine import FieldError, HostStatus, RequestInvalid
from tasks.hosts import BatchCreateHostsRequest, batch_create_hosts

from .. import models as m
from ..auth.caller import authenticated
from ..auth.users import User
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from .bodies import documented, submitted
from .ids import Id
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/compute/hosts", tags=["hosts"])


@router.get("", response_model=m.Envelope[m.Page[m.Host]], summary="List hosts")
def list_all(
    request: Request,
    pages: Annotated[Paging, Depends(paging)],
    status: Annotated[str | None, Query(max_length=256, description="e.g. NEW,AVAILABLE")] = None,
    keyword: Annotated[str | None, Query(max_length=256)] = None,
) -> Envelope:
    wanted = {s.strip().upper() for s in (status or "").split(",") if s.strip()}
    if wanted - set(HostStatus.__members__):
        raise RequestInvalid(
            [FieldError("status", f"must be among {', '.join(HostStatus.__members__)}", status)]
        )
    hosts = [
        h
        for h in engine_of(request).hosts.list()
        if (not wanted or h.status.value in wanted)
        and (not keyword or keyword in h.name or keyword in h.inner_ip_address)
    ]
    column, descending = pages.order(
        {"id": "id", "name": "name", "innerIpAddress": "inner_ip_address"}
    )
    hosts.sort(key=lambda h: getattr(h, column), reverse=descending)
    chunk = hosts[pages.offset : pages.offset + pages.size]
    return paged([h.to_ocp() for h in chunk], len(hosts), pages.page, pages.size)


@router.post(
    "/batchCreate",
    response_model=m.Envelope[m.Contents[m.TaskInstance]],
    summary='Register hosts with an SSH credential (returns their "Prepare host" task)',
    openapi_extra=documented(BatchCreateHostsRequest),
)
async def batch_create(request: Request, user: Annotated[User, Depends(authenticated)]) -> Envelope:
    task = await submitted(request, user.name, batch_create_hosts)
    return ok({"contents": [task.to_instance()]})


@router.get("/{hostId}", response_model=m.Envelope[m.Host], summary="Host detail")
def get_one(request: Request, hostId: Id) -> Envelope:
    return ok(engine_of(request).hosts.get(hostId).to_ocp())


@router.delete("/{hostId}", response_model=m.NoData, summary="Remove a host")
def remove(request: Request, hostId: Id) -> Envelope:
    engine_of(request).hosts.remove(hostId)
    return ok(has_data=False)
