"""OBProxy clusters as OCP shows them: the cluster row, its links, and its servers' rows."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import col, func, select

from engine import Engine, NotFound
from engine.clock import ocp_time
from engine.db.row_ids import is_row_id
from engine.errors import found

from .packages import shown_version
from .records import ObproxyClusterRecord, ObproxyServerRecord
from .spec import config_url


class ObproxyClusterNotFound(NotFound):
    what = "OBProxy cluster"


def hold(cluster_id: int) -> tuple[str, str]:
    """The resource a task changing this cluster holds (``engine.states.holds``), and its name."""
    return f"obproxy_cluster:{cluster_id}", f"OBProxy cluster {cluster_id}"


def list_clusters(engine: Engine, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    engine.store.ensure_schema()
    with engine.store.read() as session:
        total = session.exec(select(func.count()).select_from(ObproxyClusterRecord)).one()
        query = select(ObproxyClusterRecord).order_by(col(ObproxyClusterRecord.id))
        rows = list(session.exec(query.offset(offset).limit(limit)).all())
    return [_view(engine, row) for row in rows], int(total)


def get_cluster(engine: Engine, cluster_id: int) -> dict[str, Any]:
    return _view(engine, cluster_row(engine, cluster_id))


def cluster_row(engine: Engine, cluster_id: int) -> ObproxyClusterRecord:
    """The cluster's record; ObproxyClusterNotFound (404) when there is none."""
    engine.store.ensure_schema()
    row = None
    if is_row_id(cluster_id):
        with engine.store.read() as session:
            row = session.get(ObproxyClusterRecord, cluster_id)
    return found(row, ObproxyClusterNotFound, cluster_id)


def servers(engine: Engine, cluster_id: int) -> list[ObproxyServerRecord]:
    with engine.store.read() as session:
        query = select(ObproxyServerRecord).where(ObproxyServerRecord.cluster_id == cluster_id)
        return list(session.exec(query.order_by(col(ObproxyServerRecord.id))).all())


def _view(engine: Engine, row: ObproxyClusterRecord) -> dict[str, Any]:
    assert row.id is not None
    proxies = [
        {
            "id": s.id,
            "clusterId": s.cluster_id,
            "hostId": s.host_id,
            "idcName": None,
            "lastActiveTime": ocp_time(s.update_time),
            "parameterVersion": 0,
            "ip": s.ip,
            "sqlPort": s.sql_port,
            "exporterPort": s.exporter_port,
            "version": shown_version(s.version),
            "status": s.status,
            "operateStatus": "NORMAL",
            "architecture": "x86_64",
        }
        for s in servers(engine, row.id)
    ]
    versions = Counter(p["version"] for p in proxies)
    return {
        "id": row.id,
        "name": row.name,
        "parameterVersion": 0,
        "creatorId": None,  # the API knows its users' ids (api.auth.users.with_creator_id)
        "creatorName": row.creator,
        "createTime": ocp_time(row.create_time),
        "updateTime": ocp_time(row.create_time),
        "configUrl": config_url(row.name) if row.work_mode == "CONFIG_URL" else None,
        "address": row.address,
        "port": row.port,
        "workMode": row.work_mode,
        "obLinks": [
            {
                "clusterName": link["clusterName"],
                "obClusterId": link["obClusterId"],
                "username": link["username"],
                "clusterType": "PRIMARY",
            }
            for link in row.ob_links
        ],
        "versions": [{"version": v, "count": n} for v, n in sorted(versions.items())],
        "topo": [{"idcName": None, "count": len(proxies)}] if proxies else [],
        "obproxies": proxies,
    }
