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

from engine import Engine, Task
from engine.clock import utcnow
from engine.errors import found
from engine.states import holds

from .checks import claim_hosts
from .clusters import ObproxyClusterNotFound
from .install_steps import COMMANDS_TO_CHECK, PROCESS_KEYWORDS
from .packages import PACKAGE_NAME, package_version
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
    addresses = {h: engine.hosts.get(h).inner_ip_address for h in host_ids}
    match = PACKAGE_NAME.match(request.version)
    product = request.version.split(f"-{match.group('version')}-")[0] if match else "obproxy"
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
                "package_name": product,
                "package_version": package_version(request.version),
                "obproxy_parameter_version": str(cluster.parameter_version or 0),
                "obproxy_need_delete_cluster": "false",
            },
            "listMap": {
                "commands_to_check": list(COMMANDS_TO_CHECK),
                "process_keywords": list(PROCESS_KEYWORDS),
            },
        }
        each.append((args, payload.model_dump(mode="json")))

    def written(conn: Connection, task_ids: list[int]) -> Mapping[int, dict[str, str]]:
        resource, what = hold(cluster.id)  # type: ignore[arg-type]
        holds.take(conn, resource, task_ids[0], what, batch=task_ids)
        there = sql_select(CLUSTERS.c.id).where(CLUSTERS.c.id == cluster.id)
        found(conn.execute(there).scalar(), ObproxyClusterNotFound, cluster.id)
        server_ids = {}
        for host_id, task_id in zip(host_ids, task_ids, strict=True):
            claim_hosts(conn, [host_id], task_id, "hostIds")
            server_ids[task_id] = {"obproxy_server_id": str(_server_row(conn, host_id, task_id))}
        touch_row(conn, cluster.id)  # type: ignore[arg-type]
        return server_ids

    def _server_row(conn: Connection, host_id: int, task_id: int) -> int:
        now = utcnow()
        return int(
            conn.execute(
                insert(SERVERS).returning(SERVERS.c.id),
                {
                    "cluster_id": cluster.id,
                    "host_id": host_id,
                    "ip": addresses[host_id],
                    "sql_port": request.sqlPort,
                    "exporter_port": request.exporterPort,
                    "version": request.version,
                    "status": "CREATING",
                    "task_id": task_id,
                    "create_time": now,
                    "update_time": now,
                },
            ).scalar_one()
        )

    return engine.submit_batch(INSTALL_ONE_OBPROXY, each, creator, also=written)
