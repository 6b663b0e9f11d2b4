"""``POST /api/v2/obproxy/clusters`` as an embedded call."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from engine import Engine, FieldError, RequestInvalid, Task
from tasks.validation import parse

from .records import ObproxyClusterRecord
from .request import CreateObproxyClusterRequest
from .templates import INSTALL_OBPROXY


def create_cluster(engine: Engine, request: dict[str, Any], creator: str = "admin") -> Task:
    """Validate, persist and return the "Install obproxy" task at once (it is not run here).

    A rejected request raises RequestInvalid naming each field at fault and writes nothing.
    """
    parsed = parse(CreateObproxyClusterRequest, request)
    problems = parsed.problems()
    if problems:
        raise RequestInvalid(problems)
    engine.store.ensure_schema()
    with engine.store.read() as session:
        query = select(ObproxyClusterRecord.id).where(ObproxyClusterRecord.name == parsed.name)
        existing = session.exec(query).first()
    if existing is not None:
        raise RequestInvalid(
            [
                FieldError(
                    "name",
                    f"an OBProxy cluster named {parsed.name!r} already exists (id {existing})",
                    parsed.name,
                )
            ]
        )
    payload = {"request": parsed.model_dump(mode="json"), "creator": creator}
    return engine.submit(INSTALL_OBPROXY, {}, creator, payload=payload)
