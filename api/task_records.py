"""OCP's task list records: the engine's record with what OCP adds to it, for the API's list
and the CLI's alike (stdlib only: the CLI reads without FastAPI or SQLAlchemy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import concerns

if TYPE_CHECKING:
    from engine.task import Task


def ob_links(task: Task) -> list[dict[str, Any]]:
    """The OceanBase clusters a task's request links (its obLinks); [] for other tasks."""
    return concerns.ob_links(task.payload)


def cluster_of(task: Task) -> dict[str, Any] | None:
    """OCP's ``cluster`` of a task: the OceanBase cluster it is about (its request's first
    obLink; ocptask registers a cluster under its obClusterId). None for a task about none."""
    links = ob_links(task)
    if not links:
        return None
    cluster_id = links[0].get("obClusterId")
    return {
        "id": cluster_id,
        "name": links[0].get("clusterName"),
        "obClusterId": cluster_id,
        "type": "PRIMARY",
    }


def basic(task: Task, creator_id: int | None) -> dict[str, Any]:
    """OCP's BasicTaskInstance: the engine's record with the cluster it is about and its
    tenant (none: ocptask has no tenants)."""
    return {**task.to_basic(creator_id), "cluster": cluster_of(task), "tenant": None}


def wrapped(task: Task, creator_id: int | None) -> dict[str, Any]:
    """OCP's WrappedTaskInstance (detail, retry, rollback): the engine's record with the
    ``cluster`` and ``tenant`` the pages' tables list (their samples leave them out)."""
    return {**task.to_wrapped(creator_id), "cluster": cluster_of(task), "tenant": None}


def per_host(task: Task) -> dict[str, Any]:
    """A started task as OCP answers a per-host call (batchCreate, batchAdd, takeOver): one task
    per host, each naming its ``hostId`` (its ``stringMap.host_id``). A task that covers a batch
    (a chain per host) names its host when it has one, else null."""
    host_ids = task.host_ids
    host_id = int(host_ids[0]) if len(host_ids) == 1 else None
    return {**task.to_instance(), "hostId": host_id}


def in_43_shape(task: Task) -> dict[str, Any]:
    """A started task as OCP 4.3's online pages answer their calls (servers/stop,
    servers/delete): the task's ``prohibitRollback`` and each subtask's ``prohibitSkip`` and
    ``taskId`` beside 4.2's keys (every subtask may be skipped in ocptask: false)."""
    data = task.to_instance()
    data["prohibitRollback"] = task.context.string_map.get("prohibit_rollback") == "true"
    for sub in data["subtasks"]:
        sub["prohibitSkip"] = False
        sub["taskId"] = task.id
    return data
