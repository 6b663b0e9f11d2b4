"""The host registry: where tasks can run, how to reach each host, and its pinned key.

Credentials live in their own table, never in task records or logs, and never in a Host snapshot:
only ``HostRegistry.target()`` hands them to the SSH layer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from engine import concerns
from engine.clock import utcnow
from engine.db.compiled import RowRead
from engine.db.records import TASKS
from engine.db.row_ids import is_row_id
from engine.db.store import Store
from engine.db.subjects import SUBJECTS
from engine.enums import TaskStatus
from engine.errors import FieldError, HostNotFound, RequestInvalid, found
from engine.packages import HostGuard, HostServices, ServiceSummary

from .host_entries import check_entry
from .host_facts import HostFacts
from .host_record import Host, HostRecord, HostStatus
from .ssh import SshTarget


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


def _label(name: str, address: str) -> str:
    """How a task's record names a host: "name (address)"."""
    return f"{name} ({address})"


def _running_tasks(session: Session, host_id: int) -> str | None:
    """A RUNNING task on the host (a task of its own, or one split over it: ``concerns``) still
    needs to reach it."""
    query = (
        core_select(TASKS.c.id)
        .join(SUBJECTS, SUBJECTS.c.task_id == TASKS.c.id)
        .where(SUBJECTS.c.kind == concerns.HOST, SUBJECTS.c.key == host_id)
        .where(TASKS.c.status == TaskStatus.RUNNING.value)
        .limit(1)
    )
    task_id = session.connection().execute(query).scalar()
    return None if task_id is None else f"task {task_id} is running on it"


def _name_taken(name: str) -> FieldError:
    return FieldError("name", f"a host named {name!r} is already registered", name)


class HostRegistry:
    """``engine.hosts``: add, list, get and remove hosts; hand SSH targets to steps.

    ``guards`` say what keeps a host in use besides a running task, ``services`` what runs on
    hosts, and ``commands`` what the task packages' steps run on hosts (all declared by the
    task packages, ``packages``)."""

    def __init__(
        self,
        store: Store,
        *,
        guards: Sequence[HostGuard] = (),
        services: Sequence[HostServices] = (),
        commands: Iterable[str] = (),
    ) -> None:
        self.store = store
        store.ensure_schema()
        self._guards = (_running_tasks, *guards)
        self._services = tuple(services)
        self.required_commands: tuple[str, ...] = tuple(sorted(set(commands)))
        """Every command a step of an installed task package runs on a host."""
        # Every step of a host chain reads its host's target: one statement, not two ORM gets.
        self._target_row = RowRead(store.engine, _TARGET)

    def add(self, entry: dict[str, Any], *, new: bool = False) -> Host:
        """Register a host (OCP-style field names), or update the one with the same name;
        with ``new``, a host of that name already there (even one another process is adding
        right now) is a field error instead."""
        problems = check_entry(entry)
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
            rec.alias = entry.get("alias")
            rec.description = entry.get("description")
            rec.serial_number = entry.get("serialNumber")
            rec.kind = entry.get("kind")
            rec.publish_ports = entry.get("publishPorts")
            rec.update_time = utcnow()
            session.add(rec)
            session.flush()
            host_id = rec.id
            assert host_id is not None
            cred = session.get(HostCredentialRecord, host_id) or HostCredentialRecord(
                host_id=host_id
            )
            cred.private_key_path = entry.get("privateKeyPath")
            cred.password = self.store.secrets.seal(entry.get("password"))
            session.add(cred)
            session.flush()
            return Host.from_record(rec, self._on(session, [host_id])[host_id])

    def _on(self, session: Session, host_ids: Collection[int]) -> dict[int, list[ServiceSummary]]:
        """The services the task packages keep on each of ``host_ids``."""
        on_hosts: dict[int, list[ServiceSummary]] = defaultdict(list)
        if host_ids:
            for services in self._services:
                for host_id, service in services(session, host_ids):
                    on_hosts[host_id].append(service)
        return on_hosts

    def list(self) -> list[Host]:
        """Every host, with its services, by id."""
        with self.store.read() as session:
            query = select(HostRecord).order_by(col(HostRecord.id))
            records = session.exec(query).all()
            services = self._on(session, [r.id for r in records if r.id is not None])
            return [Host.from_record(r, services[r.id or 0]) for r in records]

    def existing(self, host_ids: Collection[int]) -> set[int]:
        """Which of ``host_ids`` are registered hosts (one indexed query, no records built)."""
        wanted = [i for i in set(host_ids) if is_row_id(i)]
        if not wanted:
            return set()
        with self.store.read() as session:
            query = select(HostRecord.id).where(col(HostRecord.id).in_(wanted))
            return {int(i) for i in session.exec(query).all() if i is not None}

    def addresses(self, host_ids: Collection[int]) -> dict[int, str]:
        """The address of each of ``host_ids`` that is registered (one query, no records)."""
        wanted = [i for i in set(host_ids) if is_row_id(i)]
        if not wanted:
            return {}
        query = select(HostRecord.id, HostRecord.inner_ip_address).where(
            col(HostRecord.id).in_(wanted)
        )
        with self.store.read() as session:
            return {int(i): address for i, address in session.exec(query) if i is not None}

    def label(self, host_id: str) -> str:
        """How a task's record names the host its chain works on: "name (address)"."""
        try:
            host = self.get(int(host_id))
            return _label(host.name, host.inner_ip_address)
        except (HostNotFound, ValueError):
            return f"host {host_id}"

    def labels(self) -> dict[str, str]:
        """``label`` of every host, by id as text (as ``listMap.host_ids`` holds them): names
        and addresses only, without building records or asking for their services."""
        query = select(HostRecord.id, HostRecord.name, HostRecord.inner_ip_address)
        with self.store.read() as session:
            return {str(i): _label(name, address) for i, name, address in session.exec(query)}

    def get(self, host_id: int) -> Host:
        with self.store.read() as session:
            rec = found(
                session.get(HostRecord, host_id) if is_row_id(host_id) else None,
                HostNotFound,
                host_id,
            )
            return Host.from_record(rec, self._on(session, [host_id])[host_id])

    def remove(self, host_id: int) -> None:
        """Forget a host and its credential; refused while a running task or anything a task
        package recorded (an OBProxy on it) still needs it."""
        with self.store.write() as session:
            rec = found(
                session.get(HostRecord, host_id) if is_row_id(host_id) else None,
                HostNotFound,
                host_id,
            )
            problems = self._in_use(session, host_id, "hostId")
            if problems:
                raise RequestInvalid(problems)
            self._forget(session, rec)

    def remove_all(self, host_ids: Sequence[int], field: str = "hostIdList") -> None:
        """OCP's batchDelete: every host or none. Each unknown, repeated or busy host is a field
        error (``field[i]``) and then nothing is removed."""
        with self.store.write() as session:
            problems: list[FieldError] = []
            records: list[HostRecord] = []
            for i, host_id in enumerate(host_ids):
                where = f"{field}[{i}]"
                rec = session.get(HostRecord, host_id) if is_row_id(host_id) else None
                if rec is None:
                    problems.append(FieldError(where, f"host {host_id} does not exist", host_id))
                elif rec in records:
                    problems.append(FieldError(where, f"host {host_id} is named twice", host_id))
                else:
                    problems += self._in_use(session, host_id, where)
                    records.append(rec)
            if not host_ids:
                problems.append(FieldError(field, "name at least one host", []))
            if problems:
                raise RequestInvalid(problems)
            for rec in records:
                self._forget(session, rec)

    def _in_use(self, session: Session, host_id: int, field: str) -> list[FieldError]:
        reasons = [r for check in self._guards if (r := check(session, host_id))]
        return [FieldError(field, f"host {host_id} is in use: {r}", host_id) for r in reasons]

    @staticmethod
    def _forget(session: Session, rec: HostRecord) -> None:
        cred = session.get(HostCredentialRecord, rec.id)
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
        """Record what the last contact found. ONLINE is not recorded but shown (an AVAILABLE
        host with services, ``HostStatus.ONLINE``): asking for it is a programming error."""
        self._update(host_id, status, None)

    def reached(self, host_id: int, facts: HostFacts, status: HostStatus | None = None) -> None:
        """What the host told about itself when reached, and (with ``status``) its status, in
        one write; nothing is written when nothing changed."""
        self._update(host_id, status, facts)

    def _update(self, host_id: int, status: HostStatus | None, facts: HostFacts | None) -> None:
        if status is HostStatus.ONLINE:
            raise ValueError("ONLINE follows from a host's services: record AVAILABLE")
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = status.value
        if facts is not None:  # what the host did not tell this time stays as it was
            told = {
                "architecture": facts.architecture,
                "operating_system": facts.operating_system,
                "operating_system_release": facts.operating_system_release,
            }
            changes |= {k: v for k, v in told.items() if v is not None}
        with self.store.write() as session:
            rec = session.get(HostRecord, host_id)
            if rec is None or all(getattr(rec, k) == v for k, v in changes.items()):
                return
            for key, value in changes.items():
                setattr(rec, key, value)
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
