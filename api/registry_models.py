"""Response models of the registries' records: hosts and OceanBase clusters (see ``models``,
which re-exports them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ServiceSummary(_Out):
    name: str
    version: str | None
    type: str = Field(description="OB_CLUSTER, OB_PROXY, OCP_AGENT, BACKUP_AGENT, ...")
    softwarePackageId: int | None


class Host(_Out):
    """OCP's host record. ocptask keeps no IDC, region or host type and runs no OCP agent: those
    keys are always null."""

    id: int
    name: str
    alias: str | None
    description: str | None
    operatingSystem: str | None = Field(description="the kernel release, as OCP shows it")
    operatingSystemRelease: str | None = Field(description="distribution and major version")
    architecture: str | None
    serialNumber: str | None
    innerIpAddress: str
    sshPort: int
    kind: str = Field(description="DEDICATED_PHYSICAL_MACHINE or DEDICATED_CONTAINER")
    publishPorts: str | None
    services: list[ServiceSummary]
    status: str = Field(description="NEW, AVAILABLE, ONLINE, OFFLINE or DELETING")
    idcId: int | None
    idcName: str | None
    idcDescription: str | None
    typeId: int | None
    typeName: str | None
    typeDescription: str | None
    regionId: int | None
    regionName: str | None
    regionDescription: str | None
    hostAgentId: int | None
    hostAgentVersion: str | None
    hostAgentStatus: str | None
    createTime: str
    updateTime: str


class RootServer(_Out):
    address: str | None = Field(description="IP:RPC port; null when only the SQL port is known")
    role: str | None = Field(description="LEADER or FOLLOWER; null: the registry does not know")
    sql_port: int


class ObCluster(_Out):
    """OCP's ObCluster (``450.cluster-information/100``) as far as the registry knows it: what
    it does not know is null or empty. ``rsList`` and ``configUrl`` are ocptask's."""

    id: int
    name: str
    obClusterId: int
    obVersion: str | None
    status: str = Field(
        description="RUNNING (ocptask runs no operation on OceanBase clusters); the filter "
        "takes OCP's RUNNING, CREATING, DELETING, STARTING, RESTARTING, STOPPING, STOPPED, "
        "TAKINGOVER, MOVINGOUT, SWITCHOVER, FAILOVER, OPERATING"
    )
    type: str
    primaryCluster: dict[str, Any] | None
    standbyClusters: list[dict[str, Any]]
    regionCount: int | None
    rootServers: list[RootServer]
    tenantCount: int | None
    partitionCount: int | None
    serverCount: int | None
    delayTime: float | None
    syncStatus: str | None
    zones: list[dict[str, Any]]
    createTime: str | None
    updateTime: str | None
    creator: str | None
    failToQueryFromObReason: str | None
    rsList: str
    configUrl: str | None
