"""A registered OceanBase cluster as OCP shows it: its root servers and OCP's ObCluster.

Root servers are registered as obproxy's ``--rs_list`` takes them (``ip:sql_port;…``) or as
OceanBase's ``rootservice_list`` shows them (``ip:rpc_port:sql_port;…``); obproxy is given the
first form either way. A cluster is shown as OCP's ObCluster (``450.cluster-information/100``,
OCP 4.2.2) as far as the registry knows it: what it cannot know (version, counts, zones, the
root servers' roles unless its observers registered them, a root server's RPC address when only
its SQL port was registered) is null or empty. Its ``status`` is RUNNING: ocptask runs no
operation on OceanBase clusters, so a registered one is never in any of OCP's transient states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import ocp_time
from engine.text import address_problem

STATUSES = (
    "RUNNING",
    "CREATING",
    "DELETING",
    "STARTING",
    "RESTARTING",
    "STOPPING",
    "STOPPED",
    "TAKINGOVER",
    "MOVINGOUT",
    "SWITCHOVER",
    "FAILOVER",
    "OPERATING",
)
"""OCP's ObCluster ``status`` values (the ``status`` filter of ``GET /api/v2/ob/clusters``)."""
REGISTERED = "RUNNING"  # the status of every registered cluster (see the module's docstring)
SORTABLE = {"id": "id", "obClusterId": "id", "name": "name"} | {
    "createTime": "create_time",
    "updateTime": "update_time",
}
"""For ``Paging.order``: the documented fields a list sorts by, and their columns."""


@dataclass(frozen=True)
class RootServer:
    """One entry of a registered rsList: ``ip:sql_port`` or ``ip:rpc_port:sql_port``."""

    host: str  # as written (an IPv6 address may be bracketed)
    rpc_port: int | None
    sql_port: int

    @property
    def bracketed_host(self) -> str:
        """The host as an ``ip:port`` address writes it (an IPv6 address in brackets)."""
        bare = ":" in self.host and not self.host.startswith("[")
        return f"[{self.host}]" if bare else self.host

    @property
    def entry(self) -> str:
        """As a registered rsList writes it."""
        ports = f"{self.rpc_port}:{self.sql_port}" if self.rpc_port is not None else self.sql_port
        return f"{self.host}:{ports}"

    @classmethod
    def parse(cls, entry: str) -> RootServer:
        """ValueError when the entry is neither form."""
        rest, sep, sql = entry.rpartition(":")
        host, sep2, rpc = rest.rpartition(":")
        if sep and _is_port(sql):
            if sep2 and _is_ip(host) and _is_port(rpc):
                return cls(host, int(rpc), int(sql))
            if _is_ip(rest):
                return cls(rest, None, int(sql))
        raise ValueError(f"{entry!r} is not ip:sql_port or ip:rpc_port:sql_port")

    def to_ocp(self, role: str | None = None) -> dict[str, Any]:
        """OCP's rootServers entry: ``address`` is the RPC address (IP:Port), null when only
        the SQL port was registered; the role as registered with it, else null (OceanBase's
        to know, not the registry's)."""
        address = f"{self.host}:{self.rpc_port}" if self.rpc_port is not None else None
        return {"address": address, "role": role, "sql_port": self.sql_port}


def _is_ip(text: str) -> bool:
    return address_problem(text.strip("[]")) is None


def _is_port(value: object) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


@dataclass(frozen=True)
class ObCluster:
    id: int
    name: str
    rs_list: str
    config_url: str | None
    create_time: datetime
    update_time: datetime
    status: str = REGISTERED
    type: str = "PRIMARY"  # ocptask knows no standby clusters
    roles: tuple[str, ...] | None = None  # each root server's, when registered with them

    @property
    def root_servers(self) -> list[RootServer]:
        return [RootServer.parse(entry) for entry in self.rs_list.split(";")]

    @property
    def root_servers_with_roles(self) -> list[tuple[RootServer, str | None]]:
        servers = self.root_servers
        roles = self.roles if self.roles and len(self.roles) == len(servers) else None
        return [(rs, roles[i] if roles else None) for i, rs in enumerate(servers)]

    @property
    def proxy_rs_list(self) -> str:
        """The root servers as obproxy's ``--rs_list`` takes them: ``ip:sql_port;…``."""
        return ";".join(f"{rs.host}:{rs.sql_port}" for rs in self.root_servers)

    def to_ocp(self) -> dict[str, Any]:
        """OCP's ObCluster as far as ocptask knows the cluster (no password field); ``rsList``
        and ``configUrl`` are ocptask's, as registered."""
        return {
            "id": self.id,
            "name": self.name,
            "obClusterId": self.id,
            "obVersion": None,
            "status": self.status,
            "type": self.type,
            "primaryCluster": None,
            "standbyClusters": [],
            "regionCount": None,
            "rootServers": [rs.to_ocp(role) for rs, role in self.root_servers_with_roles],
            "tenantCount": None,
            "partitionCount": None,
            "serverCount": None,
            "delayTime": None,
            "syncStatus": None,
            "zones": [],
            "createTime": ocp_time(self.create_time),
            "updateTime": ocp_time(self.update_time),
            "creator": None,
            "failToQueryFromObReason": None,
            "rsList": self.rs_list,
            "configUrl": self.config_url,
        }
