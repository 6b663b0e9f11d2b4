"""A registered host: its table, its statuses, and OCP's host record (the host module's list and
detail pages, key for key)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from engine.clock import as_utc, ocp_time
from engine.db.records import timestamp
from engine.packages import ServiceSummary

HOST_KINDS = ("DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER")
DEFAULT_KIND = HOST_KINDS[0]
"""What a host registered without a kind is: ocptask reaches a host over its own SSH port and
runs on its own operating system, with no port mapping (``publishPorts``) between it and a
machine beneath; that is OCP's DEDICATED_PHYSICAL_MACHINE, the kind of OCP's samples, where a
DEDICATED_CONTAINER needs the port mapping given."""


class HostStatus(StrEnum):
    """OCP's host statuses (the host module's pages: NEW, AVAILABLE, ONLINE, OFFLINE, DELETING;
    OCP's console calls them Newly Submitted, Idle, Online, Offline and Deleting). OCP's agent
    is what makes an OCP host reachable; ocptask reaches its hosts over SSH, so "online" means
    the last SSH contact succeeded."""

    NEW = "NEW"
    """Registered (batchCreate, ``ocptask host import``) and not initialized: never reached yet, or
    reached by "Prepare host" and found not ready (a command installs need is missing)."""
    AVAILABLE = "AVAILABLE"
    """Idle: reached over SSH with its pinned key ("Prepare host" succeeded, or an install
    reached it), and no service of a task package on it. May be removed."""
    ONLINE = "ONLINE"
    """Reached, and running a service a task package put there (an OBProxy): OCP's host with
    its services deployed. Never stored: an AVAILABLE host with services is shown ONLINE, and
    goes back to AVAILABLE when its last service is removed."""
    OFFLINE = "OFFLINE"
    """The last attempt to reach it failed (unreachable, key changed, login refused)."""
    DELETING = "DELETING"
    """OCP's host while its removal runs. ocptask removes a host in one transaction (the DELETE
    answers once it is gone), so no host is ever seen DELETING; filters accept it."""


class HostRecord(SQLModel, table=True):
    __tablename__ = "host"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    inner_ip_address: str
    ssh_port: int
    username: str
    host_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Only with the operator's explicit consent: accept the first key seen, then pin it.
    trust_on_first_use: bool = False
    status: str = HostStatus.NEW.value  # never ONLINE: see HostStatus.ONLINE
    create_time: datetime = timestamp(nullable=False)
    update_time: datetime = timestamp(nullable=False)
    # As batchCreate gave them (None for a host added otherwise).
    alias: str | None = None
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    serial_number: str | None = None
    kind: str | None = None
    publish_ports: str | None = None
    # What the host told when last reached (``host_facts``).
    architecture: str | None = None
    operating_system: str | None = None
    operating_system_release: str | None = None


@dataclass(frozen=True)
class Host:
    id: int
    name: str
    inner_ip_address: str
    ssh_port: int
    username: str
    host_key: str | None
    status: HostStatus
    """As OCP shows it: ONLINE for a reached host with services (``HostStatus``)."""
    create_time: datetime
    update_time: datetime
    alias: str | None = None
    description: str | None = None
    serial_number: str | None = None
    kind: str = DEFAULT_KIND
    publish_ports: str | None = None
    architecture: str | None = None
    operating_system: str | None = None
    operating_system_release: str | None = None
    services: tuple[ServiceSummary, ...] = ()

    @classmethod
    def from_record(cls, rec: HostRecord, services: Sequence[ServiceSummary] = ()) -> Host:
        assert rec.id is not None
        status = HostStatus(rec.status)
        if status is HostStatus.AVAILABLE and services:
            status = HostStatus.ONLINE
        return cls(
            rec.id,
            rec.name,
            rec.inner_ip_address,
            rec.ssh_port,
            rec.username,
            rec.host_key,
            status,
            as_utc(rec.create_time),  # type: ignore[arg-type]
            as_utc(rec.update_time),  # type: ignore[arg-type]
            alias=rec.alias,
            description=rec.description,
            serial_number=rec.serial_number,
            kind=rec.kind or DEFAULT_KIND,
            publish_ports=rec.publish_ports,
            architecture=rec.architecture,
            operating_system=rec.operating_system,
            operating_system_release=rec.operating_system_release,
            services=tuple(services),
        )

    def to_ocp(self) -> dict[str, Any]:
        """OCP's host record, every key of its pages (there is no credential field). ocptask
        keeps no IDC, region or host type registry and runs no OCP agent: those keys are null,
        as OCP shows a key it has no value for."""
        return {
            "alias": self.alias,
            "architecture": self.architecture,
            "createTime": ocp_time(self.create_time),
            "description": self.description,
            "hostAgentId": None,
            "hostAgentStatus": None,
            "hostAgentVersion": None,
            "id": self.id,
            "idcDescription": None,
            "idcId": None,
            "idcName": None,
            "innerIpAddress": self.inner_ip_address,
            "kind": self.kind,
            "name": self.name,
            "operatingSystem": self.operating_system,
            "operatingSystemRelease": self.operating_system_release,
            "publishPorts": self.publish_ports,
            "regionDescription": None,
            "regionId": None,
            "regionName": None,
            "serialNumber": self.serial_number,
            "services": [s.to_ocp() for s in self.services],
            "sshPort": self.ssh_port,
            "status": self.status.value,
            "typeDescription": None,
            "typeId": None,
            "typeName": None,
            "updateTime": ocp_time(self.update_time),
        }
