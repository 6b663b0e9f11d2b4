"""What a task is about: the hosts it works on and the clusters it concerns.

One rule for the records (a task's hosts, the cluster OCP shows it about) and for the index that
task lists, host checks and retention read (``engine.db.subjects``). It reads only a task's
context and request as JSON, as they were at submit, and the standard library: the command
line's quick reads use it without SQLAlchemy.
- hosts: ``stringMap.host_id`` (a task per host, as OCP's per-host calls make them), otherwise
  ``listMap.host_ids`` (the hosts its chains are split over);
- OceanBase clusters: the ``obLinks`` of its request (``obClusterId``, ``clusterName``);
- OBProxy clusters: ``stringMap.obproxy_cluster_id`` (tasks on an existing cluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HOST = "host"
OB_CLUSTER = "ob_cluster"
OBPROXY_CLUSTER = "obproxy_cluster"
_ROW_ID_MAX = 2**31 - 1  # engine.db.row_ids' bound: ids beyond it are no row of ours


def ob_links(payload: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The OceanBase clusters a task's request links (its obLinks); [] for other tasks."""
    request = (payload or {}).get("request")
    links = request.get("obLinks") if isinstance(request, dict) else None
    return [link for link in links or () if isinstance(link, dict)]


def host_ids(context: Mapping[str, Any] | None) -> list[str]:
    """The hosts a task works on, by id as its context holds them (text)."""
    strings = (context or {}).get("stringMap") or {}
    own = strings.get("host_id")
    if own is not None:
        return [own]
    return list(((context or {}).get("listMap") or {}).get("host_ids") or [])


def _int(value: Any) -> int | None:
    """An id as a row id, or None (text ids as contexts hold them; anything else is no id)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= _ROW_ID_MAX else None


def subjects(
    context: Mapping[str, Any] | None, payload: Mapping[str, Any] | None
) -> list[tuple[str, int | None, str | None]]:
    """(kind, key, name) of everything the task is about, each once; a host or a cluster id is
    in one row of a task at most (task lists count them without DISTINCT)."""
    found: dict[tuple[str, int | None, str | None], None] = {}
    for host in host_ids(context):
        key = _int(host)
        if key is not None:
            found[(HOST, key, None)] = None
    clusters: set[int] = set()  # a cluster is one row, under its first link's name: lists
    for link in ob_links(payload):  # by cluster id walk one row per task, without DISTINCT
        key, name = _int(link.get("obClusterId")), link.get("clusterName")
        name = name if isinstance(name, str) and name else None
        if key in clusters:
            continue
        if key is not None:
            clusters.add(key)
        if key is not None or name is not None:
            found[(OB_CLUSTER, key, name)] = None
    proxy = _int(((context or {}).get("stringMap") or {}).get("obproxy_cluster_id"))
    if proxy is not None:
        found[(OBPROXY_CLUSTER, proxy, None)] = None
    return list(found)
