"""The OBProxy cluster table, written by the "Prepare obproxy install" step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, select

from engine.db.records import timestamp


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


class ObproxyServerRecord(SQLModel, table=True):
    """One obproxy process of a cluster on one host. CREATING → RUNNING, or UNAVAILABLE."""

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


def obproxy_on_host(session: Session, host_id: int) -> str | None:
    query = select(ObproxyServerRecord).where(ObproxyServerRecord.host_id == host_id)
    server = session.exec(query).first()
    if server is None:
        return None
    return f"OBProxy server {server.id} of OBProxy cluster {server.cluster_id} runs on it"
