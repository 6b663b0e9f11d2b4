"""A create's plan: the task ``POST /api/v2/obproxy/clusters`` would submit, shown without
submitting it. The request is validated exactly as for the create (the same function), hosts
and OceanBase clusters are resolved, and the template is expanded; no row is written and no
host is contacted."""

from __future__ import annotations

from typing import Any

from engine import Context, Engine, Node

from .create import validated
from .templates import INSTALL_OBPROXY


def plan_cluster(engine: Engine, request: Any) -> dict[str, Any]:
    """The planned task: per subtask its seriesId, name, host, timeout, upstreams (seriesIds)
    and what it would change."""
    parsed = validated(engine, request, busy=True)
    args = {"host_ids": [str(h) for h in parsed.host_ids]} if parsed.host_ids else {}
    hosts = {h.id: h for h in engine.hosts.list()}
    subtasks = []
    for planned in INSTALL_OBPROXY.expand(Context.of(args)):
        host = None
        if planned.parallel_idx >= 0:
            found = hosts[parsed.host_ids[planned.parallel_idx]]
            host = {
                "id": found.id,
                "name": found.name,
                "address": found.inner_ip_address,
                "sshPort": found.ssh_port,
            }
        subtasks.append(
            {
                "seriesId": planned.series_id,
                "name": planned.node.name,
                "parallelIdx": planned.parallel_idx,
                "host": host,
                "timeout": planned.node.timeout,
                "upstreams": list(planned.upstreams),
                "changes": _changes(planned.node),
            }
        )
    return {
        "name": INSTALL_OBPROXY.name,
        "cluster": parsed.name,
        "workMode": parsed.workMode,
        "subtasks": subtasks,
    }


def _changes(node: Node) -> str:
    return getattr(node.step, "plan", "") if isinstance(node.step, type) else ""
