"""OCP's ``POST /api/v2/compute/hosts/batchDelete {"hostIdList": [...]}``: every host or none.

The same refusals as deleting one host (a host a running task or an OBProxy needs stays), each
naming its place in the list; then nothing is removed. No task: OCP answers without data.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from engine import Engine
from tasks.validation import Id, OcpBody, parse

from . import audit_events

MAX_HOSTS = 1000


class BatchDeleteHostsRequest(OcpBody):
    hostIdList: Annotated[list[Id], Field(min_length=1, max_length=MAX_HOSTS)]


@audit_events.delete_hosts(BatchDeleteHostsRequest)
def batch_delete_hosts(engine: Engine, body: Any) -> None:
    request = parse(BatchDeleteHostsRequest, body)
    engine.hosts.remove_all(request.hostIdList, "hostIdList")


@audit_events.delete_host
def delete_host(engine: Engine, host_id: int) -> None:
    """``DELETE /api/v2/compute/hosts/{hostId}``: the registry's remove, as a recorded call."""
    engine.hosts.remove(host_id)
