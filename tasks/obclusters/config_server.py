"""OceanBase's config server protocol, answered from the registry: what obproxy asks in CONFIG_URL
mode and what observers register. The shapes are those of OceanBase's own config server
(``oceanbase/ob-configserver``: ``model/obproxy_config.go``, ``model/ob_rootservice_info.go``,
``model/ob_idc_region_info.go``); the HTTP wrapper around them is ``api.routes.config_server``.

Nothing here carries a secret: the meta database's user and password are ob-configserver's
``***``, and the proxyro password never leaves the registry (obproxy gets it from the step that
sets it, over its admin login).

Where the registry knows less than OceanBase: a root server registered as ``ip:sql_port`` has
OceanBase's default RPC port (2882) in its ``address``, and one registered without a role is a
FOLLOWER. obproxy refuses any role but LEADER or FOLLOWER (``ob_proxy_json_config_info.cpp``),
and naming a leader would be a guess; obproxy finds the leader itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from engine import OcpTaskError

from .cluster import ObCluster, RootServer

DEFAULT_RPC_PORT = 2882
UNKNOWN_ROLE = "FOLLOWER"
ROLES = ("LEADER", "FOLLOWER")
TRUE, FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")
REGISTER_ACTIONS = ("ObRootServiceInfo", "ObRootServiceRegister")
"""POST actions that register root servers: ob-configserver's, and OCP's (which obd calls)."""


class ConfigServerRefusal(OcpTaskError):
    """A config-server request refused: ``status`` is the HTTP status and the answer's Code,
    ``message`` its Message, worded as ob-configserver words them (``server/response.go``)."""

    def __init__(self, status: int, message: str) -> None:
        prefix = {
            400: "illegal argument",
            403: "forbidden",
            404: "resource not found",
            501: "request not implemented",
        }.get(status, "got internal error")
        super().__init__(f"{prefix}: {message}")
        self.status = status


def go_json(value: Any) -> str:
    """What Go's ``json.Marshal`` writes for ``value`` (compact, ``<>&`` escaped): the bytes
    ob-configserver hashes into ``Version``."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def services_url(base: str, action: str, **params: str) -> str:
    """A config-server URL (every one ocptask hands out is made here): the values quoted, but a
    template's ``${…}`` placeholder kept for obproxy to fill in."""
    pairs = [("Action", action), *params.items()]
    query = "&".join(f"{k}={v if v.startswith('${') else quote(v, safe='')}" for k, v in pairs)
    return f"{base}/services?{query}"


def _meta_database(base: str) -> dict[str, str]:
    """ob-configserver's placeholder meta database: no user, no password."""
    meta = services_url(base, "ObRootServiceInfo", User_ID="alibaba", UID="admin", ObRegion="obdv1")
    return {"DataBase": "***", "MetaDataBase": meta, "Password": "***", "User": "***"}


def _bin_url(base: str) -> str:
    return f"{base}/client?Action=GetObProxy"


def root_service_url(base: str, cluster: ObCluster) -> str:
    """Where obproxy reads a cluster's root servers: by name, as ob-configserver links them, and
    by id (the registry's key; two clusters may share a name)."""
    return services_url(
        base, "ObRootServiceInfo", ObCluster=cluster.name, ObClusterId=str(cluster.id)
    )


def _one_per_name(clusters: Sequence[ObCluster]) -> list[ObCluster]:
    """The clusters by name, the lowest id of a name only: obproxy refuses a whole answer that
    names a cluster twice (``OB_INVALID_CONFIG``), and ob-configserver keeps one per name."""
    first: dict[str, ObCluster] = {}
    for cluster in sorted(clusters, key=lambda c: (c.name, c.id)):
        first.setdefault(cluster.name, cluster)
    return list(first.values())


def obproxy_config(base: str, clusters: Sequence[ObCluster]) -> dict[str, Any]:
    """``GetObProxyConfig``'s Data; ``Version`` is the md5 of its content, as ob-configserver
    makes it, so it changes exactly when the list of clusters or their addresses change (the
    root servers themselves are in each cluster's own answer)."""
    urls = [
        {"ObRegion": c.name, "ObRootServiceInfoUrl": root_service_url(base, c)}
        for c in _one_per_name(clusters)
    ]
    bin_url = _bin_url(base)
    meta = _meta_database(base)
    version = hashlib.md5((go_json(urls) + go_json(meta) + bin_url).encode()).hexdigest()
    return {
        "ObProxyBinUrl": bin_url,
        "ObProxyDatabaseInfo": meta,
        "ObRootServiceInfoUrlList": urls,
        "Version": version,
    }


def obproxy_config_template(base: str, clusters: Sequence[ObCluster]) -> dict[str, Any]:
    """``GetObRootServiceInfoUrlTemplate``'s Data (ob-configserver's template variant)."""
    names = [c.name for c in _one_per_name(clusters)]
    v1 = services_url(base, "ObRootServiceInfo", ObRegion="${ObRegion}")
    v2 = services_url(
        base,
        "ObRootServiceInfo",
        version="2",
        ObCluster="${ObCluster}",
        ObClusterId="${OBClusterId}",
    )
    bin_url = _bin_url(base)
    meta = _meta_database(base)
    content = go_json(names) + go_json(v1) + go_json(v2) + go_json(meta) + bin_url
    return {
        "ObProxyBinUrl": bin_url,
        "ObProxyDatabaseInfo": meta,
        "Version": hashlib.md5(content.encode()).hexdigest(),
        "ObClusterList": names,
        "ObRootServiceInfoUrlTemplate": v1,
        "ObRootServiceInfoUrlTemplateV2": v2,
    }


def version_only_asked(query: Mapping[str, str]) -> bool:
    """``VersionOnly``, parsed as Go's ``strconv.ParseBool`` parses it (ob-configserver)."""
    value = query.get("VersionOnly", "false")
    if value not in (
        "1",
        "t",
        "T",
        "TRUE",
        "true",
        "True",
        "0",
        "f",
        "F",
        "FALSE",
        "false",
        "False",
    ):
        raise ConfigServerRefusal(400, "VersionOnly must be true or false")
    return value in ("1", "t", "T", "TRUE", "true", "True")


def version_only(config: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to ``VersionOnly=true``: obproxy asks it each refresh, and fetches the whole
    config only when it changed."""
    return {"Version": config["Version"]}


def _address(server: RootServer) -> str:
    port = server.rpc_port if server.rpc_port is not None else DEFAULT_RPC_PORT
    return f"{server.bracketed_host}:{port}"


def root_service_info(cluster: ObCluster) -> dict[str, Any]:
    """A cluster's ObRootServiceInfo; ``timestamp`` (µs) moves with every change of its entry."""
    return {
        "ObClusterId": cluster.id,
        "ObRegionId": cluster.id,
        "ObCluster": cluster.name,
        "ObRegion": cluster.name,
        "ReadonlyRsList": [],
        "RsList": [
            {"address": _address(rs), "role": role or UNKNOWN_ROLE, "sql_port": rs.sql_port}
            for rs, role in cluster.root_servers_with_roles
        ],
        "Type": cluster.type,
        "timestamp": int(cluster.update_time.timestamp() * 1_000_000),
    }


def idc_region_info(cluster: ObCluster) -> dict[str, Any]:
    """``ObIDCRegionInfo``: no IDCs (ob-configserver answers the same, for compatibility)."""
    return {"ObRegion": cluster.name, "ObRegionId": cluster.id, "IDCList": [], "ReadonlyRsList": ""}


def cluster_query(query: Mapping[str, str]) -> tuple[str, int, int]:
    """The cluster a request names: ``ObCluster`` or ``ObRegion`` (the older name wins, as in
    ob-configserver), ``ObClusterId`` or ``ObRegionId`` (0: any), and the protocol ``version``."""
    name = query.get("ObRegion") or query.get("ObCluster") or ""
    if not name:
        raise ConfigServerRefusal(400, "no ObCluster or ObRegion")
    if not plain_name(name):
        raise ConfigServerRefusal(404, f"no OceanBase cluster {name[:64]!r} is registered")
    raw_id = query.get("ObRegionId") or query.get("ObClusterId") or "0"
    return name, _number(raw_id, "ObClusterId"), _number(query.get("version") or "0", "version")


def _number(text: str, field: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise ConfigServerRefusal(400, f"{field} must be a whole number, not {text[:40]!r}")
    return int(text)


def plain_name(name: str) -> bool:
    """A name worth looking up: no registered name (nor OBProxy cluster name) is longer or holds
    a control character, and a NUL would be refused by PostgreSQL."""
    return len(name) <= 128 and not any(ord(c) < 32 or ord(c) == 127 for c in name)


def matching(clusters: Sequence[ObCluster], name: str, cluster_id: int) -> list[ObCluster]:
    """The clusters a request names (the registry's clusters of that name, ``cluster_id`` 0
    for any), or 404 as ob-configserver answers."""
    found = [c for c in clusters if c.name == name and cluster_id in (0, c.id)]
    if not found:
        which = f"{name[:64]!r}" + (f" with id {cluster_id}" if cluster_id else "")
        raise ConfigServerRefusal(404, f"no OceanBase cluster {which} is registered")
    return found


def answer_for(found: Sequence[ObCluster], cluster_id: int, version: int, shape: Any) -> Any:
    """One cluster (``version`` < 2, or an id given), else all of that name (ob-configserver's
    version 2); the registry holds primary clusters only, so "one" is the lowest id."""
    if version < 2 or cluster_id > 0:
        return shape(min(found, key=lambda c: c.id))
    return [shape(c) for c in found]


def registration(body: Any, query: Mapping[str, str]) -> tuple[int, str, list[tuple[Any, str]]]:
    """What an observer registers (ob-configserver's ObRootServiceInfo body, with the query's
    ObCluster/ObClusterId as a fallback): the id, the name, each root server with its role.
    Refusals name the field at fault."""
    if not isinstance(body, dict):
        raise ConfigServerRefusal(400, "the body must be a JSON ObRootServiceInfo object")
    name = body.get("ObCluster") or body.get("ObRegion") or query.get("ObCluster") or ""
    if not isinstance(name, str) or not name:
        raise ConfigServerRefusal(400, "ObCluster: ob cluster name is required")
    cluster_id = body.get("ObClusterId") or body.get("ObRegionId")
    if cluster_id is None:
        cluster_id = _number(query.get("ObClusterId") or "0", "ObClusterId")
    if not isinstance(cluster_id, int) or isinstance(cluster_id, bool) or cluster_id < 1:
        raise ConfigServerRefusal(400, "ObClusterId: must be a whole number >= 1")
    kind = body.get("Type")
    if kind not in (None, "", "PRIMARY"):
        raise ConfigServerRefusal(400, f"Type: only PRIMARY clusters are registered, not {kind!r}")
    servers = body.get("RsList")
    if not isinstance(servers, list) or not servers:
        raise ConfigServerRefusal(400, "RsList: at least one root server is required")
    return cluster_id, name, [_root_server(i, s) for i, s in enumerate(servers)]


def _root_server(i: int, server: Any) -> tuple[RootServer, str]:
    where = f"RsList[{i}]"
    if not isinstance(server, dict):
        raise ConfigServerRefusal(400, f"{where}: must be {{address, role, sql_port}}")
    address, role, sql_port = server.get("address"), server.get("role"), server.get("sql_port")
    if role not in ROLES:
        raise ConfigServerRefusal(400, f"{where}.role: must be LEADER or FOLLOWER")
    if not isinstance(sql_port, int) or isinstance(sql_port, bool) or not 1 <= sql_port <= 65535:
        raise ConfigServerRefusal(400, f"{where}.sql_port: must be a port number")
    try:
        parsed = RootServer.parse(f"{address}:{sql_port}") if isinstance(address, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.rpc_port is None:
        raise ConfigServerRefusal(400, f"{where}.address: must be ip:rpc_port")
    return parsed, role
