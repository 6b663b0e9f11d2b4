"""Response models: what ``/openapi.json`` promises, so a client can be generated from it.

Handlers build their JSON with the records' own ``to_ocp`` methods (one copy of each shape) and
return it directly; these models describe that JSON for the schema and are checked against real
responses by the tests, not applied to every response (that would double the work per call).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# The registries' records (hosts, OceanBase clusters) are described beside, and named here too,
# so that every route names its models as ``models.X``.
from .registry_models import Host as Host
from .registry_models import ObCluster as ObCluster
from .registry_models import RootServer as RootServer
from .registry_models import ServiceSummary as ServiceSummary

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


class SubtaskInstance43(SubtaskInstance):
    prohibitSkip: bool
    taskId: int


class TaskInstance43(TaskInstance):
    """OCP 4.3's started task (servers/stop, servers/delete): 4.2's keys and these."""

    prohibitRollback: bool
    subtasks: list[SubtaskInstance43]  # type: ignore[assignment]


class PerHostTaskInstance(TaskInstance):
    """A task of a call that starts one per host (batchCreate), as OCP answers it."""

    hostId: int | None = Field(description="the host the task works on")


class Creator(_Out):
    id: int | None
    name: str


class TaskCluster(_Out):
    id: int
    name: str
    obClusterId: int
    type: str


class WrappedTaskInstance(_Out):
    id: int
    name: str
    cluster: TaskCluster | None = Field(description="the OceanBase cluster the task is about")
    tenant: None = Field(None, description="always null: ocptask has no tenants")
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
    """OCP's ObLink (``800.obproxy-management/300``): ``status`` and ``clusterType`` are the
    registered OceanBase cluster's (null when it is no longer registered); ``connections`` is
    null, as ocptask does not monitor them."""

    clusterId: int
    clusterName: str
    username: str
    status: str | None = Field(
        description="RUNNING, UNAVAILABLE, STOPPED, CREATING, TAKINGOVER, DELETING, MOVINGOUT, "
        "RESTARTING, STARTING, STOPPING, SWITCHOVER, FAILOVER, UPGRADING, OPERATING, ABANDONED"
    )
    connections: float | None
    obClusterId: int
    clusterType: str | None = Field(description="PRIMARY or STANDBY")


class VersionStatInfo(_Out):
    version: str
    count: int


class IdcStatInfo(_Out):
    idcName: str | None
    count: int


class ObproxyServer(_Out):
    """OCP's ObproxyServer; ``idcName`` null (hosts have no IDC)."""

    id: int
    clusterId: int
    hostId: int
    idcName: str | None
    lastActiveTime: str | None
    parameterVersion: int
    ip: str
    sqlPort: int
    exporterPort: int
    version: str = Field(description="version-release, as OCP shows it (4.3.2.0-1)")
    status: str = Field(
        description="CREATING, RUNNING, RESTARTING, UPGRADING, REFRESHING, DELETING, "
        "UNAVAILABLE (also a stopped OBProxy), TAKINGOVER"
    )
    operateStatus: str = Field(description="NORMAL, or OPERATING while a task holds the cluster")
    architecture: str | None = Field(description="the host's uname -m, read at install")


class ObproxyCluster(_Out):
    id: int
    name: str
    parameterVersion: int
    creatorId: int | None
    creatorName: str
    createTime: str | None
    updateTime: str | None
    configUrl: str | None
    address: str | None
    port: int | None
    workMode: str
    obLinks: list[ObLinkOut]
    versions: list[VersionStatInfo]
    topo: list[IdcStatInfo]
    obproxies: list[ObproxyServer]


class ParameterValue(_Out):
    value: str
    obproxies: list[str]


class ParameterInfo(_Out):
    id: int
    name: str
    version: str
    type: str
    allowedStringValues: str | None
    maxValue: str | None
    minValue: str | None
    defaultValue: str | None
    needRestart: bool
    readonly: bool
    description: str | None
    explanation: str | None


class ObproxyParameter(_Out):
    name: str
    description: str | None
    needReboot: bool
    valueString: str
    values: list[ParameterValue]
