"""Host calls: OCP's ``batchCreate`` with its "Prepare host" task, and ``batchDelete``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .batch_create import BatchCreateHostsRequest, HostBasicData, batch_create_hosts
from .batch_delete import BatchDeleteHostsRequest, batch_delete_hosts, delete_host
from .steps import PrepareHost
from .templates import PREPARE_HOST, PREPARE_HOSTS

if TYPE_CHECKING:
    from engine.packages import Declarations


def register(declare: Declarations) -> None:
    """No table of its own: hosts are the engine's. "Prepare host" checks the commands every
    package declares (``HostRegistry.required_commands``), its own pgrep (the legacy agents'
    look) among them."""
    declare.host_commands_needed("pgrep")


__all__ = [
    "PREPARE_HOST",
    "PREPARE_HOSTS",
    "register",
    "BatchCreateHostsRequest",
    "BatchDeleteHostsRequest",
    "HostBasicData",
    "PrepareHost",
    "batch_create_hosts",
    "batch_delete_hosts",
    "delete_host",
]
