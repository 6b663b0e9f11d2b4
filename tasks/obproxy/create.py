"""``POST /api/v2/obproxy/clusters`` as an embedded call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from engine import Engine, FieldError, RequestInvalid, Task, Template
from engine.clock import utcnow
from engine.states import holds
from tasks.obclusters.registry import ObClusters
from tasks.validation import parse

from . import audit_events
from .checks import busy_hosts, claim_hosts, missing_package, unknown_hosts
from .config_url import first_config_url, no_public_url
from .records import ObproxyClusterRecord, hold
from .request import CreateObproxyClusterRequest, InstallPayload, ObLink, ObproxyParameter
from .secret_parameters import PARAMETER_LISTS, masked, masked_errors, sealed
from .spec import new_mark
from .templates import INSTALL_OBPROXY


@audit_events.create
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
    parsed = validated(engine, request)
    payload = InstallPayload(
        request=_masked(parsed),
        creator=creator,
        mark=new_mark(),
    ).model_dump(mode="json")
    seal = engine.store.secrets.seal  # the key is read (or made) before the submit's transaction
    url = first_config_url(engine, parsed.workMode, parsed.name)
    # Only when there are hosts: OCP's record for a cluster without hosts has an empty listMap.
    args = {"host_ids": [str(h) for h in parsed.host_ids]} if parsed.host_ids else {}

    def record_cluster(conn: Connection, task_id: int) -> None:
        """The name is taken in the submit's own transaction: of two creates racing for one
        name, in one process or several, exactly one is accepted and the other refused now,
        not failed later at Prepare."""
        try:
            with conn.begin_nested():
                row = _cluster_row(parsed, creator, task_id, seal) | {"config_url": url}
                cluster_id = conn.execute(_INSERT_CLUSTER, row).scalar_one()
        except IntegrityError:
            # Asked on this connection: another from the pool could wait on a busy pool.
            query = sql_select(CLUSTERS.c.id).where(CLUSTERS.c.name == parsed.name)
            taken = _name_taken(parsed.name, conn.execute(query).scalar())
            raise RequestInvalid([taken]) from None
        resource, what = hold(cluster_id)
        holds.take(conn, resource, task_id, what)  # the cluster's own create holds it first
        claim_hosts(conn, parsed.host_ids, task_id, "obproxyInstallParam.hostIds")

    return engine.submit(template, args, creator, payload=payload, also=record_cluster)


def validated(engine: Engine, request: Any, *, busy: bool = False) -> CreateObproxyClusterRequest:
    """The request, checked as far as it can be without writing: fields, the name still free,
    hosts known, the package there, every obLink a registered cluster (the links' root servers
    filled in); with ``busy``, also no host running an OBProxy already (a plan's check: a
    submit checks that under the hosts' holds, and names the task holding one first).
    RequestInvalid names each field at fault."""
    try:
        parsed = parse(CreateObproxyClusterRequest, request)
    except RequestInvalid as exc:
        raise RequestInvalid(masked_errors(request, exc.errors)) from None
    problems = parsed.problems()
    if problems:
        raise RequestInvalid(masked_errors(request, problems))
    engine.store.ensure_schema()
    existing = _cluster_named(engine, parsed.name)
    if existing is not None:
        raise RequestInvalid([_name_taken(parsed.name, existing)])
    problems = _host_problems(engine, parsed)
    if parsed.host_ids:
        problems += resolve_links(engine, parsed.obLinks)
        if parsed.workMode == "CONFIG_URL" and engine.public_url is None:
            problems.append(no_public_url("workMode", parsed.workMode))
    if busy and parsed.host_ids and not problems:  # every host id known: a valid row id
        with engine.store.read() as session:
            field = "obproxyInstallParam.hostIds"
            problems += busy_hosts(session.connection(), parsed.host_ids, field)
    if problems:
        raise RequestInvalid(problems)
    return parsed


CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]
_INSERT_CLUSTER = insert(CLUSTERS).returning(CLUSTERS.c.id)


def _masked(request: CreateObproxyClusterRequest) -> CreateObproxyClusterRequest:
    """The request as its task's payload keeps it: secret values masked."""
    update = {}
    for field in PARAMETER_LISTS:
        shown = masked(p.model_dump() for p in getattr(request, field))
        update[field] = [ObproxyParameter(**p) for p in shown]
    return request.model_copy(update=update)


def _cluster_row(
    request: CreateObproxyClusterRequest,
    creator: str,
    task_id: int,
    seal: Callable[[str], str | None],
) -> dict:
    """The cluster's record, its secret parameters sealed."""
    now = utcnow()
    return {
        "name": request.name,
        "address": request.address,
        "port": request.port,
        "work_mode": request.workMode,
        "ob_links": [link.model_dump() for link in request.obLinks],
        "startup_parameters": sealed([p.model_dump() for p in request.startupParameters], seal),
        "parameters": sealed([p.model_dump() for p in request.parameters], seal),
        "creator": creator,
        "task_id": task_id,
        "create_time": now,
        "update_time": now,
        # The create's parameters are the cluster's first version of them; none, version 0.
        "parameter_version": 1 if request.startupParameters or request.parameters else 0,
    }


def _cluster_named(engine: Engine, name: str) -> int | None:
    with engine.store.read() as session:
        query = select(ObproxyClusterRecord.id).where(ObproxyClusterRecord.name == name)
        return session.exec(query).first()


def _name_taken(name: str, existing: int | None) -> FieldError:
    which = f" (id {existing})" if existing is not None else ""
    return FieldError("name", f"an OBProxy cluster named {name!r} already exists{which}", name)


def resolve_links(engine: Engine, links: list[ObLink]) -> list[FieldError]:
    """OCP knows each linked cluster's root servers and proxyro password from its metadb; we
    know them from the registry. An install needs them, so every obLink must name a registered
    cluster, by id and name; its root servers go into the task (an ``rsList`` given on the link
    overrides them) and the password stays in the registry until the step that uses it."""
    found = []
    for i, link in enumerate(links):
        cluster = ObClusters(engine).find(link.obClusterId)
        if cluster is None:
            found.append(
                FieldError(
                    f"obLinks[{i}].obClusterId",
                    f"no OceanBase cluster with id {link.obClusterId} is registered "
                    "(register it with 'ocptask obcluster add')",
                    link.obClusterId,
                )
            )
        elif cluster.name != link.clusterName:
            found.append(
                FieldError(
                    f"obLinks[{i}].clusterName",
                    f"OceanBase cluster {cluster.id} is named {cluster.name!r}, "
                    f"not {link.clusterName!r}",
                    link.clusterName,
                )
            )
        elif not link.rsList:
            link.rsList = cluster.proxy_rs_list
    return found


def _host_problems(engine: Engine, request: CreateObproxyClusterRequest) -> list[FieldError]:
    found = unknown_hosts(engine, request.host_ids, "obproxyInstallParam.hostIds")
    install = request.obproxyInstallParam
    if request.host_ids and install is not None and install.version:
        missing = missing_package("obproxyInstallParam.version", install.version)
        found += [missing] if missing else []
    return found
