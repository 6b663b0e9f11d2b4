"""Response models: what ``/openapi.json`` promises, so a client can be generated from it.

Handlers build their JSON with the records' own ``to_ocp`` methods (one copy of each shape) and
return it directly; these models describe that JSON for the schema and are checked against real
responses by the tests, not applied to every response (that would double the work per call).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class SubError(_Out):
    object: str | None = Field(None, description='what holds the field: "body", "query" or "path"')
    field: str | None = None
    message: str
    rejectedValue: Any = None


class ApiError(_Out):
    code: int = Field(
        description="OCP's error code: 10001 bad argument, 10002 not found, 10003 body not JSON, "
        "10005 conflict, 10008 method not supported, 10011 field cannot be sorted on, "
        "20000 no such task, 20003 illegal in this state, 20004 rollback prohibited"
    )
    message: str
    debugMessage: str | None = None
    stackTrace: str | None = None
    target: str | None = None
    subErrors: list[SubError] = []


class _Frame(_Out):
    successful: bool
    timestamp: str
    duration: int
    status: int
    traceId: str
    server: str


class ErrorEnvelope(_Frame):
    error: ApiError


class Envelope(_Frame, Generic[T]):
    data: T


class NoData(_Frame):
    """Operations that return nothing (skip, cancel, delete) omit ``data``."""


class PageInfo(_Out):
    totalElements: int
    totalPages: int
    number: int = Field(description="1-based")
    size: int


class Page(_Out, Generic[T]):
    contents: list[T]
    page: PageInfo


class Contents(_Out, Generic[T]):
    contents: list[T]


class Context(_Out):
    listMap: dict[str, list[str]]
    parallel: bool
    parallelIdx: int
    stringMap: dict[str, str]


class SubtaskInstance(_Out):
    id: int
    name: str
    className: str
    description: str
    nodeType: str
    operation: str
    status: str
    parallelIdx: int
    prohibitRollback: bool
    runTime: int
    seriesId: int
    timeout: int
    upstreams: list[int]
    downstreams: list[int]
    context: Context | None = None
    executor: str | None = None
    createTime: str | None = None
    startTime: str | None = None
    finishTime: str | None = None


class TaskInstance(_Out):
    """Returned by the operations that start a task (OCP's sample response, key for key)."""

    id: int
    name: str
    type: str
    status: str
    operation: str
    creator: str
    executor: str | None
    taskDefinitionId: int
    startTime: str | None
    context: Context
    subtasks: list[SubtaskInstance]


class Creator(_Out):
    id: int | None
    name: str


class WrappedTaskInstance(_Out):
    id: int
    name: str
    type: str
    status: str
    operation: str
    creator: Creator
    executor: str | None
    taskDefinitionId: int
    prohibitRollback: bool
    createTime: str | None
    startTime: str | None
    finishTime: str | None
    context: Context
    subtasks: list[SubtaskInstance]


class BasicSubtask(_Out):
    id: int
    name: str
    description: str
    operation: str
    status: str


class TaskCluster(_Out):
    id: int
    name: str
    obClusterId: int
    type: str


class BasicTaskInstance(_Out):
    id: int
    name: str
    cluster: TaskCluster | None = Field(description="the OceanBase cluster the task is about")
    tenant: None = Field(None, description="always null: ocptask has no tenants")
    status: str
    creator: Creator
    startTime: str | None
    finishTime: str | None
    subtasks: list[BasicSubtask]


class SubtaskLog(_Out):
    log: str


class ObLinkOut(_Out):
    clusterName: str
    obClusterId: int
    username: str


class ObproxyServer(_Out):
    id: int
    clusterId: int
    hostId: int
    ip: str
    sqlPort: int
    exporterPort: int
    version: str
    status: str
    operateStatus: str


class ObproxyCluster(_Out):
    id: int
    name: str
    workMode: str
    address: str | None
    port: int | None
    configUrl: str | None
    creatorName: str
    createTime: str | None
    obLinks: list[ObLinkOut]
    obproxies: list[ObproxyServer]


class ParameterValue(_Out):
    value: str
    obproxies: list[str]


class ObproxyParameter(_Out):
    name: str
    description: str | None
    needReboot: bool
    valueString: str
    values: list[ParameterValue]


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


class ObCluster(_Out):
    id: int
    obClusterId: int
    name: str
    type: str
    rsList: str
    configUrl: str | None
