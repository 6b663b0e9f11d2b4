"""``POST /api/v2/obproxy/clusters`` as an embedded call."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select

from engine import Engine, FieldError, RequestInvalid, Task, Template
from tasks.validation import parse

from .packages import package_path
from .records import ObproxyClusterRecord
from .request import CreateObproxyClusterRequest
from .templates import INSTALL_OBPROXY


def create_cluster(
    engine: Engine,
    request: dict[str, Any],
    creator: str = "admin",
    *,
    template: Template = INSTALL_OBPROXY,
) -> Task:
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
    problems = _host_problems(engine, parsed)
    if problems:
        raise RequestInvalid(problems)
    payload = {
        "request": parsed.model_dump(mode="json"),
        "creator": creator,
        # Names this task's remote commands on hosts (cleanup tags): subtask ids alone repeat
        # across ocptask databases that may drive the same host.
        "mark": uuid.uuid4().hex[:12],
    }
    # Only when there are hosts: OCP's record for a cluster without hosts has an empty listMap.
    args = {"host_ids": [str(h) for h in parsed.host_ids]} if parsed.host_ids else {}
    return engine.submit(template, args, creator, payload=payload)


def _host_problems(engine: Engine, request: CreateObproxyClusterRequest) -> list[FieldError]:
    found = []
    known = {h.id for h in engine.hosts.list()}
    for i, host_id in enumerate(request.host_ids):
        if host_id not in known:
            found.append(
                FieldError(
                    f"obproxyInstallParam.hostIds[{i}]", f"host {host_id} does not exist", host_id
                )
            )
    install = request.obproxyInstallParam
    if request.host_ids and install is not None and install.version:
        try:
            path = package_path(install.version)
        except ValueError as exc:
            found.append(FieldError("obproxyInstallParam.version", str(exc), install.version))
        else:
            if not path.is_file():
                found.append(
                    FieldError(
                        "obproxyInstallParam.version",
                        f"no package {path.name} in {path.parent}",
                        install.version,
                    )
                )
    return found
