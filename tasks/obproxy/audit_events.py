"""The OBProxy calls as audit events (``engine.audit``): OCP's operation events for an OBProxy
cluster's life, and what each event shows of its request.

OCP's names where OCP has the call (``CREATE_OB_PROXY_CLUSTER``, ``ADD_OB_PROXIES``,
``DELETE_OB_PROXIES``, ``RESTART_OB_PROXIES``, ``UPGRADE_OB_PROXIES``,
``DELETE_OB_PROXY_CLUSTER``, ``PATCH_OB_PROXY_CLUSTER``, ``ADD_OB_PROXY_OB_LINK``,
``DELETE_OB_PROXY_OB_LINK``); ours for the calls OCP 4.2 lists no event for (``STOP_OB_PROXIES``,
``START_OB_PROXIES``, ``TAKE_OVER_OB_PROXIES``). The resource is the cluster, by id and name.

An event's ``eventInfo`` is the call's parameters as OCP names them, through this package's one
rule for secrets (``secret_parameters.is_secret``): a parameter whose name says password keeps
its name and shows ``******``, and a field whose name says password is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import select

from engine.audit import Operation, Resource
from engine.audit_calls import Arguments, audited
from engine.db.subtask_log import MASK

from .records import ObproxyClusterRecord
from .secret_parameters import is_secret

MANAGEMENT, CLUSTER = "OB_PROXY_CLUSTER_MANAGEMENT", "OB_PROXY_CLUSTER"


def _operation(event: str) -> Operation:
    return Operation(event, MANAGEMENT, CLUSTER)


CREATE = _operation("CREATE_OB_PROXY_CLUSTER")
ADD = _operation("ADD_OB_PROXIES")
TAKE_OVER = _operation("TAKE_OVER_OB_PROXIES")  # ours
DELETE = _operation("DELETE_OB_PROXIES")
DELETE_CLUSTER = _operation("DELETE_OB_PROXY_CLUSTER")
RESTART = _operation("RESTART_OB_PROXIES")
STOP = _operation("STOP_OB_PROXIES")  # ours
START = _operation("START_OB_PROXIES")  # ours
UPGRADE = _operation("UPGRADE_OB_PROXIES")
PATCH = _operation("PATCH_OB_PROXY_CLUSTER")
ADD_LINK = _operation("ADD_OB_PROXY_OB_LINK")
DELETE_LINK = _operation("DELETE_OB_PROXY_OB_LINK")


def shown(value: Any) -> Any:
    """A request as an event may keep it: secret fields left out, secret parameters masked."""
    if isinstance(value, dict):
        if is_secret(_name_of(value)):
            return {k: v if str(k).lower() == "name" else MASK for k, v in value.items()}
        return {k: shown(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def _name_of(item: dict[Any, Any]) -> Any:
    return next((v for k, v in item.items() if str(k).lower() == "name"), None)


def _info(listed_as: str = "body", **path: str) -> Callable[[Arguments], Any]:
    """The call's path parameters (OCP's names for ours) and its body, as one object (a body
    that is a list under ``listed_as``)."""

    def info(arguments: Arguments) -> Any:
        given = {ocp: arguments.get(ours) for ocp, ours in path.items()}
        body = arguments.get("body", arguments.get("request"))
        if isinstance(body, dict):
            given |= body
        elif body is not None:
            given[listed_as] = body
        return shown({k: v for k, v in given.items() if v is not None})

    return info


def _cluster(arguments: Arguments, _result: Any) -> Resource:
    cluster_id = arguments.get("cluster_id")
    return Resource(cluster_id, _name(arguments["engine"], cluster_id))


def _created(arguments: Arguments, result: Any) -> Resource:
    request = arguments.get("request")
    name = request.get("name") if isinstance(request, dict) else None
    if result is None or not isinstance(name, str):
        return Resource(None, name if isinstance(name, str) else None)
    with arguments["engine"].store.read() as session:
        found = session.exec(
            select(ObproxyClusterRecord.id).where(ObproxyClusterRecord.name == name)
        ).first()
    return Resource(found, name)


def _name(engine: Any, cluster_id: Any) -> str | None:
    if not isinstance(cluster_id, int) or isinstance(cluster_id, bool):
        return None
    try:
        with engine.store.read() as session:
            row = session.get(ObproxyClusterRecord, cluster_id)
    except Exception:  # an id past the column's range: nothing of that id
        return None
    return None if row is None else row.name


def _on_cluster(operation: Operation, listed_as: str = "body", **path: str) -> Callable[[Any], Any]:
    info = _info(listed_as, id="cluster_id", **path)
    return audited(operation, info=info, resource=_cluster)


create = audited(CREATE, info=_info(), resource=_created)
add = _on_cluster(ADD)
take_over = _on_cluster(TAKE_OVER)
delete = _on_cluster(DELETE, obproxyIds="server_ids")
delete_listed = _on_cluster(DELETE)
delete_cluster = _on_cluster(DELETE_CLUSTER)
restart = _on_cluster(RESTART, obproxyIds="server_ids")
stop = _on_cluster(STOP)
start = _on_cluster(START)
upgrade = _on_cluster(UPGRADE, obproxyIds="server_ids")
patch = _on_cluster(PATCH)
add_link = _on_cluster(ADD_LINK, "obLinks")
delete_link = _on_cluster(DELETE_LINK, obClusterName="ob_cluster_name")
