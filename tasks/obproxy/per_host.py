"""OCP's per-host install tasks: batchAdd answers one "Install obproxy" task per host, each
with the context OCP's sample shows (``host_id``, ``obproxy_server_id``, ``package_name``,
``package_version``, …).

All of a call's tasks are written in one transaction (``Engine.submit_batch``): their server
rows, the host reservations and the cluster's hold, which the tasks share. They run side by
side; no other operation on the cluster starts until every one of them ended well, and a
failed one keeps the cluster held until it is retried to success or rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy import select as sql_select

from engine import Engine, FieldError, RequestInvalid, Task
from engine.clock import utcnow
from engine.errors import found
from engine.states import holds

from .checks import busy_hosts, host_addresses, host_hold
from .clusters import ObproxyClusterNotFound
from .config_url import ensure_config_url
from .install_steps import COMMANDS_TO_CHECK, PROCESS_KEYWORDS
from .packages import edition, shown_version
from .payloads import AddPayload
from .records import ObproxyClusterRecord, ObproxyServerRecord, hold, touch_row
from .spec import new_mark
from .templates import INSTALL_ONE_OBPROXY

SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]
CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]


def add_per_host(
    engine: Engine,
    cluster: ObproxyClusterRecord,
    host_ids: list[int],
    request: Any,
    creator: str,
) -> list[Task]:
    """Submit one "Install obproxy" per host (``request``: sqlPort, exporterPort, version)."""
    mark = new_mark()
    addresses = host_addresses(engine, host_ids, "hostIds")
    each = []
    for host_id in host_ids:
        payload = AddPayload(
            cluster_id=cluster.id,  # type: ignore[arg-type]
            creator=creator,
            mark=mark,
            host_ids=[host_id],
            sql_port=request.sqlPort,
            exporter_port=request.exporterPort,
            version=request.version,
        )
        args = {
            "stringMap": {
                "host_id": str(host_id),
                "obproxy_cluster_id": str(cluster.id),
                "obproxy_cluster_name": cluster.name,
                "service_name": cluster.name,
                "package_name": edition(request.version),
                "package_version": shown_version(request.version),  # OCP: 1.9.1.1-1919579
                "obproxy_parameter_version": str(cluster.parameter_version or 0),
                "obproxy_need_delete_cluster": "false",
            },
            "listMap": {
                "commands_to_check": list(COMMANDS_TO_CHECK),
                "process_keywords": list(PROCESS_KEYWORDS),
            },
        }
        each.append((args, payload.model_dump(mode="json")))
    rows = [
        {
            "host_id": host_id,
            "ip": addresses[host_id],
            "sql_port": request.sqlPort,
            "exporter_port": request.exporterPort,
            "version": request.version,
            "status": "CREATING",
        }
        for host_id in host_ids
    ]

    def written(conn: Connection, task_ids: list[int]) -> Mapping[int, dict[str, str]]:
        claimed = claim_batch(conn, cluster.id, task_ids, rows, "hostIds")  # type: ignore[arg-type]
        ensure_config_url(engine, conn, cluster.id, "configUrl")  # type: ignore[arg-type]
        return claimed

    return engine.submit_batch(INSTALL_ONE_OBPROXY, each, creator, also=written)


def claim_batch(
    conn: Connection,
    cluster_id: int,
    task_ids: list[int],
    rows: list[dict[str, Any]],
    field: str,
    suffix: str = "",
) -> dict[int, dict[str, str]]:
    """In a per-host call's submit (batchAdd, takeOver): the cluster held by the whole batch
    and still there, each host held by its own task, none of them running an OBProxy already
    (each refusal at ``field[i]`` + ``suffix``), a server row per host (``rows[i]`` of task
    ``task_ids[i]``), the cluster's update time moved. Answers each task's
    ``obproxy_server_id``."""
    resource, what = hold(cluster_id)
    holds.take(conn, resource, task_ids[0], what, batch=task_ids)
    there = sql_select(CLUSTERS.c.id).where(CLUSTERS.c.id == cluster_id)
    found(conn.execute(there).scalar(), ObproxyClusterNotFound, cluster_id)
    host_ids = [row["host_id"] for row in rows]
    for host_id, task_id in zip(host_ids, task_ids, strict=True):
        holds.take(conn, host_hold(host_id), task_id, f"host {host_id}")
    busy = [
        FieldError(e.field + suffix, e.message, e.rejected_value)
        for e in busy_hosts(conn, host_ids, field)
    ]
    if busy:
        raise RequestInvalid(busy)
    now = utcnow()
    server_ids = {}
    for row, task_id in zip(rows, task_ids, strict=True):
        values = {
            "cluster_id": cluster_id,
            "task_id": task_id,
            "create_time": now,
            "update_time": now,
            **row,
        }
        server_id = conn.execute(insert(SERVERS).returning(SERVERS.c.id), values).scalar_one()
        server_ids[task_id] = {"obproxy_server_id": str(server_id)}
    touch_row(conn, cluster_id, now)
    return server_ids
