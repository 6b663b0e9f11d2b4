"""The host calls as audit events (``engine.audit``): OCP's ``ADD_HOSTS`` for a batchCreate, and
ours for removing hosts (``DELETE_HOST``, ``DELETE_HOSTS``: OCP 4.2 lists no event for them).
The resource is the host by its address, as OCP names hosts in its events.

An event's ``eventInfo`` is the request's declared fields only (the model's own names, the
hosts' entries likewise): a field the call does not take, whatever a client put there, is not
kept. None of the declared ones is a secret; the login is referenced by ``credentialId``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from engine.audit import Operation, Resource
from engine.audit_calls import Arguments, audited

MANAGEMENT, HOST = "COMPUTE_HOST_MANAGEMENT", "COMPUTE_HOST"
ADD_HOSTS = Operation("ADD_HOSTS", MANAGEMENT, HOST)
DELETE_HOST = Operation("DELETE_HOST", MANAGEMENT, HOST)  # ours
DELETE_HOSTS = Operation("DELETE_HOSTS", MANAGEMENT, HOST)  # ours


def declared(model: type[BaseModel], value: Any) -> Any:
    """``value`` with only the fields ``model`` declares, nested models likewise."""
    if not isinstance(value, dict):
        return value if isinstance(value, (int, float, str, bool)) or value is None else None
    kept = {}
    for name, field in model.model_fields.items():
        if name not in value:
            continue
        inner = _model_in(field.annotation)
        item = value[name]
        if inner is not None and isinstance(item, list):
            kept[name] = [declared(inner, v) for v in item]
        elif inner is not None:
            kept[name] = declared(inner, item)
        elif isinstance(item, list):
            kept[name] = [v for v in item if isinstance(v, (int, float, str, bool))]
        else:
            kept[name] = declared(BaseModel, item) if isinstance(item, dict) else item
    return kept


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself, in a list, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _host_name(engine: Any, host_id: Any) -> str | None:
    if not isinstance(host_id, int) or isinstance(host_id, bool):
        return None
    try:
        return str(engine.hosts.get(host_id).inner_ip_address)
    except Exception:  # unknown (or past the column's range): nothing of that id
        return None


def _added(arguments: Arguments, result: Any) -> Resource:
    body = arguments.get("body")
    entries = body.get("hostBasicDataList") if isinstance(body, dict) else None
    ips = [e.get("innerIpAddress") for e in entries or [] if isinstance(e, dict)]
    name = ",".join(str(ip) for ip in ips if ip is not None) or None
    ids = [int(h) for task in result or [] for h in task.host_ids]
    return Resource(ids[0] if len(ids) == 1 else None, name)


def _one(arguments: Arguments, _result: Any) -> Resource:
    host_id = arguments.get("host_id")
    return Resource(host_id, _host_name(arguments["engine"], host_id))


def _several(arguments: Arguments, _result: Any) -> Resource:
    body = arguments.get("body")
    ids = body.get("hostIdList") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        return Resource()
    names = [_host_name(arguments["engine"], i) or str(i) for i in ids]
    return Resource(ids[0] if len(ids) == 1 and isinstance(ids[0], int) else None, ",".join(names))


def _body_of(model: type[BaseModel]) -> Any:
    return lambda arguments: declared(model, arguments.get("body"))


def add_hosts(model: type[BaseModel]) -> Any:
    return audited(ADD_HOSTS, info=_body_of(model), resource=_added)


def delete_hosts(model: type[BaseModel]) -> Any:
    return audited(DELETE_HOSTS, info=_body_of(model), resource=_several)


delete_host = audited(
    DELETE_HOST, info=lambda arguments: {"hostId": arguments.get("host_id")}, resource=_one
)
