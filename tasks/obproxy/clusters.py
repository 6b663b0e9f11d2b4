"""OBProxy clusters as OCP shows them (``800.obproxy-management/300`` and ``400``, OCP 4.2.2):
the cluster row, its links, and its servers' rows.

What ocptask cannot know is present with OCP's empty value: ``idcName`` (hosts have no IDC)
and an obLink's ``connections`` are null, ``creatorId`` is null here (the API fills it in from
its users). An obLink's ``status`` and ``clusterType`` are those of the registered OceanBase
cluster it names (null when that cluster is no longer registered).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from engine import Engine, NotFound
from engine.clock import ocp_time
from engine.db.row_ids import is_row_id
from engine.errors import found
from tasks.obclusters.cluster import ObCluster
from tasks.obclusters.registry import ObClusters

from .activity import IDLE, Activity, activities
from .packages import shown_version
from .records import ObproxyClusterRecord, ObproxyServerRecord

_C = ObproxyClusterRecord
# The documented fields a list sorts by (``sort=field,asc|desc``), and what each sorts on: rows
# of an older database have no update time or parameter version yet (NULL).
_ORDER = {
    "id": col(_C.id),
    "name": col(_C.name),
    "parameterVersion": func.coalesce(col(_C.parameter_version), 0),
    "creatorName": col(_C.creator),
    "createTime": col(_C.create_time),
    "updateTime": func.coalesce(col(_C.update_time), col(_C.create_time)),
    "address": col(_C.address),
    "port": col(_C.port),
    "workMode": col(_C.work_mode),
}
SORTABLE = {field: field for field in _ORDER}
"""For ``Paging.order``: each sortable field of OCP's obproxyCluster, by itself."""


class ObproxyClusterNotFound(NotFound):
    what = "OBProxy cluster"


def list_clusters(
    engine: Engine,
    offset: int,
    limit: int,
    *,
    order_by: str = "id",
    descending: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """A page of clusters ordered by a ``SORTABLE`` field (then by id), and the total."""
    engine.store.ensure_schema()
    key = _ORDER[order_by]
    with engine.store.read() as session:
        total = session.exec(select(func.count()).select_from(ObproxyClusterRecord)).one()
        query = select(ObproxyClusterRecord).order_by(
            key.desc() if descending else key.asc(), col(_C.id).desc() if descending else col(_C.id)
        )
        rows = list(session.exec(query.offset(offset).limit(limit)).all())
    return _views(engine, rows), int(total)


def get_cluster(engine: Engine, cluster_id: int) -> dict[str, Any]:
    return _views(engine, [cluster_row(engine, cluster_id)])[0]


def cluster_row(engine: Engine, cluster_id: int) -> ObproxyClusterRecord:
    """The cluster's record; ObproxyClusterNotFound (404) when there is none."""
    engine.store.ensure_schema()
    row = None
    if is_row_id(cluster_id):
        with engine.store.read() as session:
            row = session.get(ObproxyClusterRecord, cluster_id)
    return found(row, ObproxyClusterNotFound, cluster_id)


def servers(engine: Engine, cluster_id: int) -> list[ObproxyServerRecord]:
    return _servers(engine, [cluster_id])[cluster_id]


def _servers(engine: Engine, cluster_ids: list[int]) -> dict[int, list[ObproxyServerRecord]]:
    by_cluster: dict[int, list[ObproxyServerRecord]] = {i: [] for i in cluster_ids}
    if not cluster_ids:
        return by_cluster
    with engine.store.read() as session:
        query = select(ObproxyServerRecord).where(
            col(ObproxyServerRecord.cluster_id).in_(cluster_ids)
        )
        for server in session.exec(query.order_by(col(ObproxyServerRecord.id))).all():
            by_cluster[server.cluster_id].append(server)
    return by_cluster


def _views(engine: Engine, rows: list[ObproxyClusterRecord]) -> list[dict[str, Any]]:
    """The rows as OCP's obproxyCluster, with what is read for them read once for them all."""
    ids = [row.id for row in rows if row.id is not None]
    proxies = _servers(engine, ids)
    doing = activities(engine, ids)
    linked = {link["obClusterId"] for row in rows for link in row.ob_links}
    registered = ObClusters(engine).found(linked) if linked else {}
    return [
        _view(row, proxies[row.id], doing.get(row.id, IDLE), registered)  # type: ignore[index]
        for row in rows
    ]


def _view(
    row: ObproxyClusterRecord,
    rows: list[ObproxyServerRecord],
    activity: Activity,
    registered: dict[int, ObCluster],
) -> dict[str, Any]:
    proxies = [_server(s, activity) for s in rows]
    versions = Counter(p["version"] for p in proxies)
    return {
        "id": row.id,
        "name": row.name,
        "parameterVersion": row.parameter_version or 0,
        "creatorId": None,  # the API knows its users' ids (api.auth.users.with_creator_id)
        "creatorName": row.creator,
        "createTime": ocp_time(row.create_time),
        "updateTime": ocp_time(row.update_time or row.create_time),
        "configUrl": row.config_url,
        "address": row.address,
        "port": row.port,
        "workMode": row.work_mode,
        "obLinks": [_link(link, registered.get(link["obClusterId"])) for link in row.ob_links],
        "versions": [{"version": v, "count": n} for v, n in sorted(versions.items())],
        "topo": _topo(proxies),
        "obproxies": proxies,
    }


def _server(s: ObproxyServerRecord, activity: Activity) -> dict[str, Any]:
    return {
        "id": s.id,
        "clusterId": s.cluster_id,
        "hostId": s.host_id,
        "idcName": None,
        "lastActiveTime": ocp_time(s.update_time),
        "parameterVersion": s.parameter_version or 0,
        "ip": s.ip,
        "sqlPort": s.sql_port,
        "exporterPort": s.exporter_port,
        "version": shown_version(s.version),
        "status": activity.status(s.host_id, s.status),
        "operateStatus": activity.operate_status,
        "architecture": s.architecture,
    }


def _link(link: dict[str, Any], cluster: ObCluster | None) -> dict[str, Any]:
    """OCP's ObLink: ``clusterId`` is OCP's id of the OceanBase cluster, which in ocptask's
    registry is its obClusterId."""
    return {
        "clusterId": link["obClusterId"],
        "clusterName": link["clusterName"],
        "username": link["username"],
        "status": cluster.status if cluster is not None else None,
        "connections": None,  # OCP counts them from its monitoring; ocptask has none
        "obClusterId": link["obClusterId"],
        "clusterType": cluster.type if cluster is not None else None,
    }


def _topo(proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OBProxies counted by IDC (OCP's IdcStatInfo): all under null, as hosts have no IDC."""
    by_idc: dict[str | None, int] = defaultdict(int)
    for proxy in proxies:
        by_idc[proxy["idcName"]] += 1
    return [{"idcName": idc, "count": n} for idc, n in by_idc.items()]
