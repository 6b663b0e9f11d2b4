"""The rest of an OBProxy cluster's life as embedded calls, one per OCP endpoint: add, delete,
restart, stop, start and upgrade OBProxies, and delete the cluster. Each validates, then submits
its task; it does not run it.

Each task holds its cluster (``engine.states.holds``) from the submit's own transaction: while
another task of the cluster is RUNNING, or FAILED and not rolled back, the call is refused with
ResourceBusy naming that task. Under the hold, the submit checks again that the OBProxies it was
validated against are still as they were, so nothing validated is stale once it is held.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import select as sql_select

from engine import Engine, FieldError, RequestInvalid, Task, Template
from engine.errors import found
from engine.states import holds
from tasks.validation import parse

from . import audit_events
from .activity import described
from .bodies import AddObproxiesRequest, DeleteServersRequest, ServerIdsRequest, UpgradeRequest
from .checks import missing_package, unknown_hosts
from .clusters import ObproxyClusterNotFound, cluster_row
from .clusters import servers as servers_of
from .config_url import ensure_config_url
from .packages import PACKAGE_NAME, edition, package_version, running_version, upgrade_package
from .payloads import OfflinePayload, ServersPayload, UpgradePayload
from .per_host import add_per_host
from .records import ObproxyClusterRecord, ObproxyServerRecord, hold
from .server_ids import ServerIds, server_ids_of
from .spec import new_mark
from .templates import (
    DELETE_OBPROXY_SERVER,
    OFFLINE_EMPTY,
    OFFLINE_OBPROXY,
    RESTART_OBPROXY,
    START_OBPROXY,
    STOP_OBPROXY,
    UPGRADE_OBPROXY,
)

SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]
CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]
# What each call may act on, by the rows' status (STOPPED: stopped by a stop, shown UNAVAILABLE):
# an OBProxy being created or deleted belongs to its task.
MAY_RESTART = {"RUNNING", "STOPPED", "UNAVAILABLE"}
MAY_STOP = {"RUNNING", "UNAVAILABLE"}
MAY_START = {"STOPPED", "UNAVAILABLE"}
STARTS = {RESTART_OBPROXY.name, UPGRADE_OBPROXY.name, START_OBPROXY.name}
"""Tasks that start obproxy processes: a CONFIG_URL cluster's need its config URL."""


@audit_events.add
def add_obproxies(engine: Engine, cluster_id: int, body: Any, creator: str = "admin") -> list[Task]:
    """``POST …/clusters/{id}/obproxies/batchAdd``: as OCP, an "Install obproxy" task per
    host (the create's chain, with the cluster's own links and parameters), each with its new
    server row written at submit. The tasks run side by side and hold the cluster together."""
    request = parse(AddObproxiesRequest, body)
    problems = request.problems() + unknown_hosts(engine, request.hostIds, "hostIds")
    missing = missing_package("version", request.version)
    problems += [missing] if missing else []
    if problems:
        raise RequestInvalid(problems)
    cluster = cluster_row(engine, cluster_id)
    return add_per_host(engine, cluster, request.hostIds, request, creator)


@audit_events.delete
def delete_obproxies(
    engine: Engine, cluster_id: int, server_ids: ServerIds, creator: str = "admin"
) -> Task:
    """``DELETE …/clusters/{id}/obproxies/{ids}``: stop, uninstall and forget each one."""
    cluster = cluster_row(engine, cluster_id)
    servers = _servers(engine, cluster, server_ids_of(server_ids, "obproxyIds"), "obproxyIds")
    return _on_servers(engine, OFFLINE_OBPROXY, cluster, servers, creator, OfflinePayload)


@audit_events.delete_listed
def delete_servers(engine: Engine, cluster_id: int, body: Any, creator: str = "admin") -> Task:
    """OCP 4.3's ``POST …/servers/delete {obproxyServerIds, skipHostOperationServerIds}``: the
    delete above, except that the hosts of the skipped ones are not touched."""
    request = parse(DeleteServersRequest, body)
    stray = [
        FieldError(f"skipHostOperationServerIds[{i}]", "is not among obproxyServerIds", sid)
        for i, sid in enumerate(request.skipHostOperationServerIds)
        if sid not in request.obproxyServerIds
    ]
    if stray:
        raise RequestInvalid(stray)
    cluster = cluster_row(engine, cluster_id)
    ids = server_ids_of(request.obproxyServerIds, "obproxyServerIds")
    servers = _servers(engine, cluster, ids, "obproxyServerIds")
    skipped = set(request.skipHostOperationServerIds)
    skip_hosts = [s.host_id for s in servers if s.id in skipped]

    def payload(**kw: Any) -> OfflinePayload:
        return OfflinePayload(skip_host_ids=skip_hosts, **kw)

    return _on_servers(engine, DELETE_OBPROXY_SERVER, cluster, servers, creator, payload)


@audit_events.delete_cluster
def delete_cluster(engine: Engine, cluster_id: int, creator: str = "admin") -> Task:
    """``DELETE /api/v2/obproxy/clusters/{id}``: delete every OBProxy, then the cluster."""
    cluster = cluster_row(engine, cluster_id)
    servers = _servers(engine, cluster, None, "id")

    def payload(**kw: Any) -> OfflinePayload:
        return OfflinePayload(delete_cluster=True, **kw)

    template = OFFLINE_OBPROXY if servers else OFFLINE_EMPTY  # OCP's sample: Start → Finish
    return _on_servers(engine, template, cluster, servers, creator, payload, whole=True)


@audit_events.restart
def restart_obproxies(
    engine: Engine, cluster_id: int, server_ids: ServerIds, creator: str = "admin"
) -> Task:
    """``POST …/obproxies/{ids}/restart``: one host at a time, stop then start with the
    recorded startup parameters, re-apply the parameters, check SQL and /metrics."""
    cluster = cluster_row(engine, cluster_id)
    servers = _servers(
        engine, cluster, server_ids_of(server_ids, "obproxyIds"), "obproxyIds", MAY_RESTART
    )
    return _on_servers(engine, RESTART_OBPROXY, cluster, servers, creator, ServersPayload)


@audit_events.stop
def stop_obproxies(engine: Engine, cluster_id: int, body: Any, creator: str = "admin") -> Task:
    """``POST …/clusters/{id}/servers/stop {obproxyServerIds}`` (OCP 4.3): the rows' status
    STOPPED, which OCP's enum shows as UNAVAILABLE."""
    return _by_body(engine, STOP_OBPROXY, cluster_id, body, creator, MAY_STOP)


@audit_events.start
def start_obproxies(engine: Engine, cluster_id: int, body: Any, creator: str = "admin") -> Task:
    """``POST …/clusters/{id}/servers/start {obproxyServerIds}`` (ocptask's counterpart of
    stop): status RUNNING once each answers SQL and /metrics."""
    return _by_body(engine, START_OBPROXY, cluster_id, body, creator, MAY_START)


@audit_events.upgrade
def upgrade_obproxies(
    engine: Engine, cluster_id: int, server_ids: ServerIds, body: Any, creator: str = "admin"
) -> Task:
    """``POST …/obproxies/{ids}/upgrade {shortRpmName}``: host by host, stop, install the new
    package beside the old, start it on the old one's configuration, check it; a rollback
    brings every host it reached back to its old version. No body (``None``): the newest
    package, as OCP 4.0 does."""
    request = UpgradeRequest() if body is None else parse(UpgradeRequest, body)
    named = missing_package("version", request.version) if request.version else None
    if named and request.shortRpmName is None:  # the body's own fault is told first
        raise RequestInvalid([named])
    cluster = cluster_row(engine, cluster_id)
    servers = _servers(
        engine, cluster, server_ids_of(server_ids, "obproxyIds"), "obproxyIds", MAY_RESTART
    )
    arches = {s.architecture for s in servers}
    products = {edition(s.version) for s in servers if PACKAGE_NAME.match(s.version)}
    target = upgrade_package(
        request,
        arches.pop() if len(arches) == 1 else None,
        products.pop() if len(products) == 1 else None,
    )
    # The field the body named the package with (no body: OCP 4.0's, which 4.2 calls this).
    field = "version" if request.version and not request.shortRpmName else "shortRpmName"
    missing = missing_package(field, target)
    if missing:
        raise RequestInvalid([missing])
    new = package_version(target)
    same = [
        FieldError(field, f"OBProxy {s.id} on host {s.host_id} already runs {new}", new)
        for s in servers
        if running_version(s.version) == new  # one install directory per version
    ]
    if same:
        raise RequestInvalid(same)

    def payload(**kw: Any) -> UpgradePayload:
        olds = {str(s.host_id): s.version for s in servers}
        return UpgradePayload(version=target, from_versions=olds, **kw)

    return _on_servers(engine, UPGRADE_OBPROXY, cluster, servers, creator, payload)


def _by_body(
    engine: Engine, template: Template, cluster_id: int, body: Any, creator: str, may: set[str]
) -> Task:
    request = parse(ServerIdsRequest, body)
    if request.problems():
        raise RequestInvalid(request.problems())
    cluster = cluster_row(engine, cluster_id)
    servers = _servers(engine, cluster, request.obproxyServerIds, "obproxyServerIds", may)
    return _on_servers(engine, template, cluster, servers, creator, ServersPayload)


def _on_servers(
    engine: Engine,
    template: Template,
    cluster: ObproxyClusterRecord,
    servers: list[ObproxyServerRecord],
    creator: str,
    make: Callable[..., ServersPayload],
    *,
    whole: bool = False,
) -> Task:
    """Submit ``template`` on these OBProxies (``whole``: all of the cluster's, as they are)."""
    ids = [s.id for s in servers]
    payload = make(cluster_id=cluster.id, creator=creator, mark=new_mark(), server_ids=ids)
    seen = {s.id: (s.host_id, s.version, s.status) for s in servers}

    def unchanged(conn: Connection, task_id: int) -> None:
        """Under the hold: the OBProxies are still as validated (a task that ended between
        validation and submit may have removed, added, upgraded or stopped some)."""
        query = sql_select(SERVERS).where(SERVERS.c.cluster_id == cluster.id)
        if not whole:
            query = query.where(SERVERS.c.id.in_(ids))
        now = {r.id: (r.host_id, r.version, r.status) for r in conn.execute(query)}
        if now != seen:
            changed = ", ".join(
                str(i) for i in sorted(set(now) | set(seen)) if now.get(i) != seen.get(i)
            )
            raise RequestInvalid(
                [FieldError("obproxyIds", f"OBProxies {changed} changed meanwhile; try again")]
            )

    host_ids = [s.host_id for s in servers]
    return _submit(engine, template, cluster, host_ids, payload, unchanged)


def _submit(
    engine: Engine,
    template: Template,
    cluster: ObproxyClusterRecord,
    host_ids: list[int],
    payload: ServersPayload,
    check: Callable[[Connection, int], None],
) -> Task:
    args: dict[str, Any] = {
        "stringMap": {
            "obproxy_cluster_id": str(cluster.id),
            "obproxy_cluster_name": cluster.name,
            # OCP's keys (its samples of these tasks):
            "service_name": cluster.name,
            "service_type": "OB_PROXY",
            "obproxy_need_delete_cluster": str(getattr(payload, "delete_cluster", False)).lower(),
        },
        "listMap": {"obproxy_server_ids": [str(i) for i in payload.server_ids]},
    }
    if host_ids:  # OCP's sample of a delete without OBProxies has an empty listMap
        args["listMap"]["host_ids"] = [str(h) for h in host_ids]
    else:
        args["listMap"] = {}

    def held(conn: Connection, task_id: int) -> None:
        resource, what = hold(cluster.id)  # type: ignore[arg-type]
        holds.take(conn, resource, task_id, what)
        # A delete of the cluster that ended meanwhile took its hold row with it.
        there = sql_select(CLUSTERS.c.id).where(CLUSTERS.c.id == cluster.id)
        found(conn.execute(there).scalar(), ObproxyClusterNotFound, cluster.id)
        if template.name in STARTS:
            ensure_config_url(engine, conn, cluster.id, "configUrl")  # type: ignore[arg-type]
        check(conn, task_id)

    data = payload.model_dump(mode="json")
    return engine.submit(template, args, payload.creator, payload=data, also=held)


def _servers(
    engine: Engine,
    cluster: ObproxyClusterRecord,
    ids: list[int] | None,
    field: str,
    may: set[str] | None = None,
) -> list[ObproxyServerRecord]:
    """The cluster's OBProxies with these ids (all of them for None), in the order given, each
    in a status in ``may`` (any, for None)."""
    rows = servers_of(engine, cluster.id)  # type: ignore[arg-type]
    if ids is None:
        return rows
    by_id = {row.id: row for row in rows}
    problems = []
    for i, server_id in enumerate(ids):
        row = by_id.get(server_id)
        if row is None:
            why = f"OBProxy cluster {cluster.name!r} has no OBProxy {server_id}"
        elif may is not None and row.status not in may:
            why = f"OBProxy {server_id} on host {row.host_id} is {described(row.status)}"
        else:
            continue
        problems.append(FieldError(f"{field}[{i}]", why, server_id))
    if problems:
        raise RequestInvalid(problems)
    return [by_id[i] for i in ids]
