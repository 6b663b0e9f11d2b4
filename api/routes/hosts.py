"""``/api/v2/compute/hosts``: the host registry tasks run on, batchCreate to add to it and
batchDelete to remove several at once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from engine import Host, HostStatus, ServiceType, members
from tasks.hosts import (
    BatchCreateHostsRequest,
    BatchDeleteHostsRequest,
    batch_create_hosts,
    batch_delete_hosts,
    delete_host,
)

from .. import models as m
from ..auth.caller import authenticated
from ..auth.users import User
from ..envelope import Envelope, ok, paged
from ..paging import Paging, paging
from ..query import Listed, listed
from ..task_records import per_host
from .bodies import documented, json_body, submitted
from .ids import Id
from .tasks import engine_of

router = APIRouter(prefix="/api/v2/compute/hosts", tags=["hosts"])


@router.get("", response_model=m.Envelope[m.Page[m.Host]], summary="List hosts")
def list_all(
    request: Request,
    pages: Annotated[Paging, Depends(paging)],
    status: Listed = None,
    keyword: Annotated[
        str | None, Query(max_length=256, description="part of a name, address or service name")
    ] = None,
    includedServiceType: Listed = None,
    excludedServiceType: Listed = None,
) -> Envelope:
    wanted = _members("status", status, HostStatus)
    included = _members("includedServiceType", includedServiceType, ServiceType)
    excluded = _members("excludedServiceType", excludedServiceType, ServiceType)
    column, descending = pages.order(SORTS)
    hosts = [
        h
        for h in engine_of(request).hosts.list()
        if (not wanted or h.status in wanted)
        and (not included or any(s.type in included for s in h.services))
        and not any(s.type in excluded for s in h.services)
        and (not keyword or _matches(h, keyword))
    ]
    hosts.sort(key=lambda h: _sort_key(getattr(h, column)), reverse=descending)
    chunk = hosts[pages.offset : pages.offset + pages.size]
    return paged([h.to_ocp() for h in chunk], len(hosts), pages.page, pages.size)


SORTS = {
    "id": "id",
    "name": "name",
    "alias": "alias",
    "innerIpAddress": "inner_ip_address",
    "sshPort": "ssh_port",
    "status": "status",
    "kind": "kind",
    "architecture": "architecture",
    "operatingSystem": "operating_system",
    "operatingSystemRelease": "operating_system_release",
    "serialNumber": "serial_number",
    "createTime": "create_time",
    "updateTime": "update_time",
}
"""``sort`` fields: the host record's own values (not IDC, region or type, which are null)."""

E = TypeVar("E", bound=StrEnum)


def _members(field: str, values: list[str] | None, enum: type[E]) -> set[E]:
    """A StringArray filter's values as ``enum`` members (``engine.members``' rule)."""
    return {enum(v) for v in members(field, listed(values), enum.__members__)}


def _matches(host: Host, keyword: str) -> bool:
    """OCP's keyword: a fuzzy match on the host's name, its address, or a service on it."""
    needle = keyword.casefold()
    texts = (host.name, host.inner_ip_address, *(s.name for s in host.services))
    return any(needle in text.casefold() for text in texts)


def _sort_key(value: Any) -> tuple[bool, Any]:
    """None before any value (as OCP's database sorts NULL ascending)."""
    return (value is not None, value)


@router.post(
    "/batchCreate",
    response_model=m.Envelope[m.Contents[m.PerHostTaskInstance]],
    summary='Register hosts with an SSH credential (returns a "Prepare host" task per host)',
    openapi_extra=documented(BatchCreateHostsRequest),
)
async def batch_create(request: Request, user: Annotated[User, Depends(authenticated)]) -> Envelope:
    tasks = await submitted(request, user.name, batch_create_hosts)
    return ok({"contents": [per_host(task) for task in tasks]})


@router.post(
    "/batchDelete",
    response_model=m.NoData,
    summary="Remove several hosts: every one or, if any is unknown or in use, none",
    openapi_extra=documented(BatchDeleteHostsRequest),
)
async def batch_delete(request: Request) -> Envelope:
    body = await json_body(request)
    await run_in_threadpool(batch_delete_hosts, engine_of(request), body)
    return ok(has_data=False)


@router.get("/{hostId}", response_model=m.Envelope[m.Host], summary="Host detail")
def get_one(request: Request, hostId: Id) -> Envelope:
    return ok(engine_of(request).hosts.get(hostId).to_ocp())


@router.delete("/{hostId}", response_model=m.NoData, summary="Remove a host")
def remove(request: Request, hostId: Id) -> Envelope:
    delete_host(engine_of(request), hostId)
    return ok(has_data=False)
