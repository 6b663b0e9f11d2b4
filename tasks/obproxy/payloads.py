"""What the tasks on an existing cluster carry in their payload, written at submit.

Their steps read the cluster's settings and server rows from the database (``obproxy_host``);
the payload keeps only what the operator asked that the records do not hold.
"""

from __future__ import annotations

from .spec import Marked


class ServersPayload(Marked):
    """A task on some OBProxies of one cluster (restart, stop, start, offline)."""

    cluster_id: int
    creator: str
    server_ids: list[int] = []


class AddPayload(ServersPayload):
    """New OBProxies: their hosts, ports and package (the server rows are written at Prepare)."""

    host_ids: list[int]
    sql_port: int
    exporter_port: int
    version: str


class UpgradePayload(ServersPayload):
    """The package to go to, and each host's package before (what a rollback goes back to)."""

    version: str
    from_versions: dict[str, str]  # host id -> package file name


class OfflinePayload(ServersPayload):
    """Delete OBProxies; with ``delete_cluster``, then the cluster's own row."""

    delete_cluster: bool = False
    # OCP 4.3's skipHostOperationServerIds, as their hosts: forgotten without touching the host
    # (one that is gone or unreachable), as the caller asked.
    skip_host_ids: list[int] = []
