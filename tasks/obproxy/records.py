"""The OBProxy cluster and server tables: the cluster row is written at the create's submit, a
server row per host by the task that installs it; the steps of every task keep them current.

Columns added since the first release are nullable (``engine.db.store`` adds them to an older
database): their NULL reads as the value a row of that time had (parameter version 0, updated
when created, architecture unknown)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, Integer, text, update
from sqlalchemy import select as core_select
from sqlmodel import Field, Session, SQLModel, select

from engine import concerns
from engine.clock import utcnow
from engine.db.records import timestamp


def _version() -> Any:
    """A parameter version: 0 until parameters are set (nullable: an older database gains it)."""
    return Field(default=0, sa_column=Column(Integer, nullable=True, server_default=text("0")))


class ObproxyClusterRecord(SQLModel, table=True):
    __tablename__ = "obproxy_cluster"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    address: str | None = None
    port: int | None = None
    work_mode: str
    ob_links: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    startup_parameters: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    parameters: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    creator: str
    task_id: int = Field(index=True)
    create_time: datetime = timestamp(nullable=False)
    # Bumped each time the recorded parameters change (the create's own are version 1).
    parameter_version: int | None = _version()
    # Moved by every change of the cluster, its links, its OBProxies (``touch``).
    update_time: datetime | None = timestamp()
    # CONFIG_URL mode: where its OBProxies fetch their clusters (``config_url``); NULL until
    # known, and in RS_LIST mode.
    config_url: str | None = None


class ObproxyServerRecord(SQLModel, table=True):
    """One obproxy process of a cluster on one host. ``status`` is what its tasks' steps left it
    in: CREATING (TAKINGOVER for one taken over) → RUNNING, STOPPED, UNAVAILABLE (a step failed
    on it), DELETING; what OCP shows is worked out from it and the task holding the cluster
    (``activity``)."""

    __tablename__ = "obproxy_server"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="obproxy_cluster.id", index=True)
    host_id: int
    ip: str
    sql_port: int
    exporter_port: int
    version: str
    status: str = "CREATING"
    exporter_url: str | None = None
    task_id: int = Field(index=True)
    create_time: datetime = timestamp(nullable=False)
    update_time: datetime = timestamp(nullable=False)
    # The cluster's parameter version this OBProxy last applied ("Sync obproxy parameter").
    parameter_version: int | None = _version()
    architecture: str | None = None  # the host's ``uname -m`` (its facts) when installed here
    # An OBProxy taken over (``takeover``), installed by other means: where it runs from and the
    # command line it was started with (after the binary), which its restarts, stops, starts and
    # upgrade use in place of ocptask's ``~/obproxy-<version>`` (with the cluster's parameters
    # that go at start merged in, ``ServerSpec.start_args``); its root@proxysys password,
    # sealed. NULL for the OBProxies ocptask installs.
    install_dir: str | None = None
    startup_options: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    proxysys_password: str | None = None


CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]


def hold(cluster_id: int) -> tuple[str, str]:
    """The resource a task changing this cluster holds (``engine.states.holds``), and its name."""
    return f"obproxy_cluster:{cluster_id}", f"OBProxy cluster {cluster_id}"


def touch(session: Session, cluster_id: int, now: datetime | None = None) -> None:
    """The cluster changed (itself, a link, one of its OBProxies): its updateTime moves."""
    cluster = session.get(ObproxyClusterRecord, cluster_id)
    if cluster is not None:
        cluster.update_time = now or utcnow()
        session.add(cluster)


def touch_row(conn: Connection, cluster_id: int, now: datetime | None = None) -> None:
    """``touch`` in a transaction of its own making (a submit's)."""
    conn.execute(
        update(CLUSTERS).where(CLUSTERS.c.id == cluster_id).values(update_time=now or utcnow())
    )


def obproxy_on_host(session: Session, host_id: int) -> str | None:
    query = select(ObproxyServerRecord).where(ObproxyServerRecord.host_id == host_id)
    server = session.exec(query).first()
    if server is None:
        return None
    return f"OBProxy server {server.id} of OBProxy cluster {server.cluster_id} runs on it"


SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]


def existing_clusters(conn: Connection) -> Iterator[tuple[str, int | None, str | None]]:
    """Every OBProxy cluster there is, as tasks are about it (retention keeps the last task
    about each)."""
    for cluster_id in conn.execute(core_select(CLUSTERS.c.id)).scalars():
        yield concerns.OBPROXY_CLUSTER, cluster_id, None


def referenced_tasks(conn: Connection, task_ids: Collection[int]) -> set[int]:
    """Those of ``task_ids`` a cluster or OBProxy row names as the task that made it (its
    steps check the row is their task's by that id)."""
    ids = list(task_ids)
    if not ids:
        return set()
    found = set(conn.execute(core_select(CLUSTERS.c.task_id).where(CLUSTERS.c.task_id.in_(ids))))
    found |= set(conn.execute(core_select(SERVERS.c.task_id).where(SERVERS.c.task_id.in_(ids))))
    return {row[0] for row in found}
