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
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engine import Engine, RequestInvalid
from tasks.obclusters import config_server as protocol
from tasks.obclusters.config_server import REGISTER_ACTIONS, ConfigServerRefusal
from tasks.obclusters.registry import ObClusters
from tasks.obproxy.config_url import served_clusters

from ..envelope import trace_id
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
        writes = method == "DELETE" or (method == "POST" and action in REGISTER_ACTIONS)
        if writes and not request.app.state.accept_ob_register:  # refused before any read
            raise ConfigServerRefusal(
                403,
                "this server does not take registrations from observers "
                "(start it with 'ocptask serve --accept-ob-register')",
            )
        body = await request.body() if writes else b""
        data = await run_in_threadpool(_answer, request, method, action, query, body)
        status, message = 200, "successful"
    except ConfigServerRefusal as refused:
        status, message, data = refused.status, refused.message, None
    except Exception:  # in its wrapper too, the traceback in the log only
        log.exception("%s /services (trace %s) failed", method, trace_id())
        status, data = 500, None
        message = f"got internal error: quote trace {trace_id()} to the operator"
    peer = request.client.host if request.client else "-"
    asked = request.url.path + "?" + request.url.query
    log.info("%s %s from %s: %s (trace %s)", method, asked[:300], peer, status, trace_id())
    answer = {
        "Code": status,
        "Message": message,
        "Success": status == 200,
        "Data": data,
        "Trace": trace_id(),
        "Server": request.url.hostname or "",
        "Cost": int((time.perf_counter() - began) * 1000),
    }
    return Response(json.dumps(answer), status, media_type="application/json")


def _answer(request: Request, method: str, action: str, query: dict[str, str], body: bytes) -> Any:
    """Data for a request, by method and action as ob-configserver dispatches them (reads by GET,
    and the config lists by POST too); a refusal otherwise."""
    engine = engine_of(request)
    if method == "GET" and action == "ObIDCRegionInfo":
        return _root_service(engine, query, protocol.idc_region_info)
    if (method == "GET" and action in READS) or (
        method == "POST" and action in READS - {"ObRootServiceInfo"}
    ):
        if action == "ObRootServiceInfo":
            return _root_service(engine, query, protocol.root_service_info)
        return _obproxy_config(request, engine, action, query)
    if method == "DELETE" and action == "ObRootServiceInfo":
        raise ConfigServerRefusal(
            501, "remove an OceanBase cluster with 'ocptask obcluster remove ID'"
        )
    if method == "POST" and action in REGISTER_ACTIONS:
        return _register(engine, query, body)
    raise ConfigServerRefusal(400, f"invalid action {action[:60]!r} for {method}")


def _root_service(engine: Engine, query: dict[str, str], shape: Any) -> Any:
    name, cluster_id, version = protocol.cluster_query(query)
    found = protocol.matching(ObClusters(engine).named(name), name, cluster_id)
    return protocol.answer_for(found, cluster_id, version, shape)


def _obproxy_config(request: Request, engine: Engine, action: str, query: dict[str, str]) -> Any:
    only = protocol.version_only_asked(query)
    proxy_cluster = query.get("ObproxyClusterName")
    if proxy_cluster is None:  # ob-configserver's answer: every registered cluster
        clusters = ObClusters(engine).list()
    else:  # OCP's: the clusters this OBProxy cluster links to
        known = protocol.plain_name(proxy_cluster)
        clusters = served_clusters(engine, proxy_cluster) if known else None
        if clusters is None:
            raise ConfigServerRefusal(404, f"no OBProxy cluster named {proxy_cluster[:64]!r}")
    base = engine.public_url or str(request.base_url).rstrip("/")
    if action == "GetObProxyConfig":
        config = protocol.obproxy_config(base, clusters)
    else:
        config = protocol.obproxy_config_template(base, clusters)
    return protocol.version_only(config) if only else config


def _register(engine: Engine, query: dict[str, str], body: bytes) -> str:
    try:
        parsed = json.loads(body) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ConfigServerRefusal(400, "the body is not JSON (or is nested too deeply)") from None
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
