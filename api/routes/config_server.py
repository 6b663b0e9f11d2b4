"""``/services``: OceanBase's config server, which obproxy asks in CONFIG_URL mode and observers
register with, in the shapes of OceanBase's own (``oceanbase/ob-configserver``): every answer is
its wrapper ``{Code, Message, Success, Data, Trace, Server, Cost}`` with the HTTP status = Code.

Reads need no credentials (obproxy and observers send none) and carry no secret
(``tasks.obclusters.config_server``). Writes (observers registering root servers) are refused
with 403 unless ``ocptask serve --accept-ob-register`` was given; then they change a registry
entry's root servers only. Every request is logged, with the caller's address: the access log
of which host fetched what.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engine import Engine, RequestInvalid
from tasks.obclusters import config_server as protocol
from tasks.obclusters.config_server import ConfigServerRefusal
from tasks.obclusters.registry import ObClusters
from tasks.obproxy.config_url import served_clusters

from .tasks import engine_of

log = logging.getLogger("ocptask.config_server")
router = APIRouter(tags=["config server (OceanBase's protocol)"])
READS = {"ObRootServiceInfo", "GetObProxyConfig", "GetObRootServiceInfoUrlTemplate"}


@router.api_route(
    "/services",
    methods=["GET", "POST", "DELETE"],
    summary="OceanBase's config server: Action=GetObProxyConfig, ObRootServiceInfo, …",
    response_model=None,
    include_in_schema=False,  # not OCP's API (not its envelope): the README's table lists it
)
async def services(request: Request) -> Response:
    began = time.perf_counter()
    query = dict(request.query_params)
    action, method = query.get("Action", ""), request.method
    try:
        body = await request.body() if method == "POST" else b""
        data = await run_in_threadpool(_answer, request, method, action, query, body)
        status, message = 200, "successful"
    except ConfigServerRefusal as refused:
        status, message, data = refused.status, refused.message, None
    trace = secrets.token_hex(8)
    peer = request.client.host if request.client else "-"
    log.info(
        "%s %s from %s: %s (trace %s)",
        method,
        request.url.path + "?" + request.url.query,
        peer,
        status,
        trace,
    )
    answer = {
        "Code": status,
        "Message": message,
        "Success": status == 200,
        "Data": data,
        "Trace": trace,
        "Server": request.url.hostname or "",
        "Cost": int((time.perf_counter() - began) * 1000),
    }
    return Response(json.dumps(answer), status, media_type="application/json")


def _answer(request: Request, method: str, action: str, query: dict[str, str], body: bytes) -> Any:
    engine = engine_of(request)
    if method == "GET" and action == "ObIDCRegionInfo":
        return _root_service(engine, query, protocol.idc_region_info)
    if (method == "GET" and action in READS) or (
        method == "POST" and action in READS - {"ObRootServiceInfo"}
    ):
        if action == "ObRootServiceInfo":
            return _root_service(engine, query, protocol.root_service_info)
        return _obproxy_config(request, engine, action, query)
    writes = {"POST": protocol.REGISTER_ACTIONS, "DELETE": ("ObRootServiceInfo",)}
    if action not in writes.get(method, ()):
        raise ConfigServerRefusal(400, f"invalid action {action[:60]!r} for {method}")
    if not request.app.state.accept_ob_register:
        raise ConfigServerRefusal(
            403,
            "this server does not take registrations from observers "
            "(start it with 'ocptask serve --accept-ob-register')",
        )
    if method == "DELETE":
        raise ConfigServerRefusal(
            501, "remove an OceanBase cluster with 'ocptask obcluster remove ID'"
        )
    return _register(engine, query, body)


def _root_service(engine: Engine, query: dict[str, str], shape: Any) -> Any:
    name, cluster_id, version = protocol.cluster_query(query)
    found = protocol.matching(ObClusters(engine).named(name), name, cluster_id)
    return protocol.answer_for(found, cluster_id, version, shape)


def _obproxy_config(request: Request, engine: Engine, action: str, query: dict[str, str]) -> Any:
    only = query.get("VersionOnly", "false").lower()
    if only not in ("true", "false", "1", "0", "t", "f"):
        raise ConfigServerRefusal(400, "VersionOnly must be true or false")
    proxy_cluster = query.get("ObproxyClusterName")
    if proxy_cluster is None:  # ob-configserver's answer: every registered cluster
        clusters = ObClusters(engine).list()
    else:  # OCP's: the clusters this OBProxy cluster links to
        clusters = served_clusters(engine, proxy_cluster)
        if clusters is None:
            raise ConfigServerRefusal(404, f"no OBProxy cluster named {proxy_cluster[:64]!r}")
    base = engine.public_url or str(request.base_url).rstrip("/")
    if action == "GetObProxyConfig":
        config = protocol.obproxy_config(base, clusters)
    else:
        config = protocol.obproxy_config_template(base, clusters)
    return protocol.version_only(config) if only in ("true", "1", "t") else config


def _register(engine: Engine, query: dict[str, str], body: bytes) -> str:
    try:
        parsed = json.loads(body) if body else None
    except (UnicodeDecodeError, ValueError):
        raise ConfigServerRefusal(400, "the body is not JSON") from None
    cluster_id, name, servers = protocol.registration(parsed, query)
    try:
        cluster = ObClusters(engine).register(cluster_id, name, servers)
    except RequestInvalid as exc:
        fields = {"name": "ObCluster", "rsList": "RsList", "obClusterId": "ObClusterId"}
        problems = "; ".join(f"{fields.get(e.field, e.field)}: {e.message}" for e in exc.errors)
        raise ConfigServerRefusal(400, problems) from None
    log.info(
        "registered root servers of OceanBase cluster %s (%s): %s",
        cluster.id,
        cluster.name,
        cluster.rs_list,
    )
    return "successful"
