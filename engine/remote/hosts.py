"""The host registry: where tasks can run, how to reach each host, and its pinned key.

Credentials live in their own table, never in task records or logs, and never in a Host snapshot:
only ``HostRegistry.target()`` hands them to the SSH layer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from paramiko.hostkeys import HostKeyEntry
from sqlalchemy import Column, Text, bindparam
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from engine.clock import as_utc, ocp_time, utcnow
from engine.db.compiled import RowRead
from engine.db.records import TaskRecord, timestamp
from engine.db.row_ids import is_row_id
from engine.db.store import Store
from engine.enums import TaskStatus
from engine.errors import FieldError, HostNotFound, RequestInvalid, found
from engine.packages import HostGuard

from .ssh import SshTarget

_USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class HostStatus(StrEnum):
    """OCP's host statuses that matter before an agent exists."""

    NEW = "NEW"
    """Registered; not yet reached."""
    AVAILABLE = "AVAILABLE"
    """Reached over SSH with its pinned key."""
    OFFLINE = "OFFLINE"
    """Last attempt to reach it failed."""


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
    status: str = HostStatus.NEW.value
    create_time: datetime = timestamp(nullable=False)
    update_time: datetime = timestamp(nullable=False)


class HostCredentialRecord(SQLModel, table=True):
    """Kept apart from the host row so no query for hosts or tasks can carry a secret out."""

    __tablename__ = "host_credential"

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    private_key_path: str | None = None
    password: str | None = None


_HOSTS, _CREDENTIALS = HostRecord.__table__, HostCredentialRecord.__table__  # type: ignore[attr-defined]
_TARGET = (
    core_select(
        _HOSTS.c.name,
        _HOSTS.c.inner_ip_address,
        _HOSTS.c.ssh_port,
        _HOSTS.c.username,
        _HOSTS.c.host_key,
        _HOSTS.c.trust_on_first_use,
        _CREDENTIALS.c.private_key_path,
        _CREDENTIALS.c.password,
    )
    .join(_CREDENTIALS, _CREDENTIALS.c.host_id == _HOSTS.c.id)
    .where(_HOSTS.c.id == bindparam("id"))
)


@dataclass(frozen=True)
class Host:
    id: int
    name: str
    inner_ip_address: str
    ssh_port: int
    username: str
    host_key: str | None
    status: HostStatus
    create_time: datetime
    update_time: datetime

    @classmethod
    def from_record(cls, rec: HostRecord) -> Host:
        assert rec.id is not None
        return cls(
            rec.id,
            rec.name,
            rec.inner_ip_address,
            rec.ssh_port,
            rec.username,
            rec.host_key,
            HostStatus(rec.status),
            as_utc(rec.create_time),  # type: ignore[arg-type]
            as_utc(rec.update_time),  # type: ignore[arg-type]
        )

    def to_ocp(self) -> dict[str, Any]:
        """OCP's host object, as far as ocptask knows it (there is no credential field)."""
        return {
            "createTime": ocp_time(self.create_time),
            "id": self.id,
            "innerIpAddress": self.inner_ip_address,
            "name": self.name,
            "sshPort": self.ssh_port,
            "status": self.status.value,
            "updateTime": ocp_time(self.update_time),
        }


def _label(host: Host) -> str:
    return f"{host.name} ({host.inner_ip_address})"


def _check(entry: dict[str, Any]) -> list[FieldError]:
    if not isinstance(entry, dict):
        return [FieldError("(host)", "must be a JSON object of host fields", None)]
    problems: list[FieldError] = []
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(FieldError("name", "must be a non-empty string", name))
    address = entry.get("innerIpAddress")
    try:
        ipaddress.ip_address(address)  # type: ignore[arg-type]
    except ValueError:
        problems.append(FieldError("innerIpAddress", "must be an IP address", address))
    port = entry.get("sshPort", 22)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append(FieldError("sshPort", "must be a port number 1-65535", port))
    user = entry.get("username")
    if not isinstance(user, str) or not _USERNAME.match(user):
        problems.append(FieldError("username", "must be a valid login name", user))
    key, password = entry.get("privateKeyPath"), entry.get("password")
    if bool(key) == bool(password):
        problems.append(
            FieldError("privateKeyPath", "give exactly one of privateKeyPath and password")
        )
    if not isinstance(entry.get("trustOnFirstUse", False), bool):
        problems.append(FieldError("trustOnFirstUse", "must be true or false"))
    line = entry.get("hostKey")
    if line is not None and (not isinstance(line, str) or HostKeyEntry.from_line(line) is None):
        problems.append(FieldError("hostKey", "must be a known_hosts line", line))
    return problems


def _running_tasks(session: Session, host_id: int) -> str | None:
    """A RUNNING task split over the host (``listMap.host_ids``) still needs to reach it."""
    query = select(TaskRecord.id, TaskRecord.context).where(
        TaskRecord.status == TaskStatus.RUNNING.value
    )
    for task_id, context in session.exec(query).all():
        if str(host_id) in ((context or {}).get("listMap") or {}).get("host_ids", []):
            return f"task {task_id} is running on it"
    return None


def _name_taken(name: str) -> FieldError:
    return FieldError("name", f"a host named {name!r} is already registered", name)


class HostRegistry:
    """``engine.hosts``: add, list, get and remove hosts; hand SSH targets to steps.

    ``guards`` say what keeps a host in use besides a running task, and ``commands`` what the
    task packages' steps run on hosts (both declared by the task packages, ``packages``)."""

    def __init__(
        self,
        store: Store,
        *,
        guards: Sequence[HostGuard] = (),
        commands: Iterable[str] = (),
    ) -> None:
        self.store = store
        store.ensure_schema()
        self._guards = (_running_tasks, *guards)
        self.required_commands: tuple[str, ...] = tuple(sorted(set(commands)))
        """Every command a step of an installed task package runs on a host."""
        # Every step of a host chain reads its host's target: one statement, not two ORM gets.
        self._target_row = RowRead(store.engine, _TARGET)

    def add(self, entry: dict[str, Any], *, new: bool = False) -> Host:
        """Register a host (OCP-style field names), or update the one with the same name;
        with ``new``, a host of that name already there (even one another process is adding
        right now) is a field error instead."""
        problems = _check(entry)
        if problems:
            raise RequestInvalid(problems)
        try:
            return self._add(entry, new)
        except IntegrityError:  # lost a race for the name
            raise RequestInvalid([_name_taken(entry["name"])]) from None

    def _add(self, entry: dict[str, Any], new: bool) -> Host:
        with self.store.write() as session:
            rec = session.exec(select(HostRecord).where(HostRecord.name == entry["name"])).first()
            if rec is not None and new:
                raise RequestInvalid([_name_taken(entry["name"])])
            if rec is None:
                rec = HostRecord(
                    name=entry["name"],
                    inner_ip_address=entry["innerIpAddress"],
                    ssh_port=entry.get("sshPort", 22),
                    username=entry["username"],
                )
            rec.inner_ip_address = entry["innerIpAddress"]
            rec.ssh_port = entry.get("sshPort", 22)
            rec.username = entry["username"]
            rec.host_key = entry.get("hostKey")
            rec.trust_on_first_use = entry.get("trustOnFirstUse") is True
            rec.update_time = utcnow()
            session.add(rec)
            session.flush()
            cred = session.get(HostCredentialRecord, rec.id) or HostCredentialRecord(
                host_id=rec.id  # type: ignore[arg-type]
            )
            cred.private_key_path = entry.get("privateKeyPath")
            cred.password = self.store.secrets.seal(entry.get("password"))
            session.add(cred)
            session.flush()
            return Host.from_record(rec)

    def list(self) -> list[Host]:
        with self.store.read() as session:
            query = select(HostRecord).order_by(col(HostRecord.id))
            return [Host.from_record(r) for r in session.exec(query).all()]

    def label(self, host_id: str) -> str:
        """How a task's record names the host its chain works on: "name (address)"."""
        try:
            return _label(self.get(int(host_id)))
        except (HostNotFound, ValueError):
            return f"host {host_id}"

    def labels(self) -> dict[str, str]:
        """``label`` of every host, by id as text (as ``listMap.host_ids`` holds them)."""
        return {str(h.id): _label(h) for h in self.list()}

    def get(self, host_id: int) -> Host:
        with self.store.read() as session:
            rec = found(
                session.get(HostRecord, host_id) if is_row_id(host_id) else None,
                HostNotFound,
                host_id,
            )
            return Host.from_record(rec)

    def remove(self, host_id: int) -> None:
        """Forget a host and its credential; refused while a running task or anything a task
        package recorded (an OBProxy on it) still needs it."""
        with self.store.write() as session:
            rec = found(
                session.get(HostRecord, host_id) if is_row_id(host_id) else None,
                HostNotFound,
                host_id,
            )
            reasons = [r for check in self._guards if (r := check(session, host_id))]
            if reasons:
                raise RequestInvalid(
                    [
                        FieldError("hostId", f"host {host_id} is in use: {r}", host_id)
                        for r in reasons
                    ]
                )
            cred = session.get(HostCredentialRecord, host_id)
            if cred is not None:
                session.delete(cred)
                session.flush()
            session.delete(rec)

    def pin(self, host_id: int, host_key: str) -> None:
        """Pin the key learned on first use; from then on only that key is accepted."""
        with self.store.write() as session:
            rec = session.get(HostRecord, host_id)
            if rec is not None and rec.host_key is None:
                rec.host_key = host_key
                rec.update_time = utcnow()
                session.add(rec)

    def set_status(self, host_id: int, status: HostStatus) -> None:
        with self.store.write() as session:
            rec = session.get(HostRecord, host_id)
            if rec is not None and rec.status != status.value:
                rec.status = status.value
                rec.update_time = utcnow()
                session.add(rec)

    def target(self, host_id: int) -> SshTarget:
        """What the SSH layer needs, credential included. Not for display."""
        row = self._target_row.first(id=host_id) if is_row_id(host_id) else None
        row = found(row, HostNotFound, host_id)
        return SshTarget(
            name=row.name,
            address=row.inner_ip_address,
            port=row.ssh_port,
            username=row.username,
            private_key_path=row.private_key_path,
            password=self.store.secrets.open(row.password),
            host_key=row.host_key,
            trust_on_first_use=bool(row.trust_on_first_use) and row.host_key is None,
        )
