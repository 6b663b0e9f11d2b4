"""The OBProxy cluster table, written by the "Prepare obproxy install" step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from engine.clock import utcnow


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
    create_time: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
