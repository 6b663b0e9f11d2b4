"""Host tasks: OCP's ``POST /api/v2/compute/hosts/batchCreate`` and the "Prepare host" task."""

from __future__ import annotations

from .batch_create import BatchCreateHostsRequest, HostBasicData, batch_create_hosts
from .steps import PrepareHost
from .templates import PREPARE_HOSTS

__all__ = [
    "PREPARE_HOSTS",
    "BatchCreateHostsRequest",
    "HostBasicData",
    "PrepareHost",
    "batch_create_hosts",
]
