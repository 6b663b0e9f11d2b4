"""A server as a command's backend: an ``ocptask serve`` (or OCP) runs the tasks; the command
makes OCP's HTTP calls (``client``) and follows them. Answers come back as a database backend
gives them (``Task`` snapshots, times in this machine's zone)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .common import settled

if TYPE_CHECKING:
    from engine.audit import EventFilter
    from engine.task import Task

    from .client import Client
    from .common import TaskListing

POLL_SECONDS = 0.5


class Remote:
    """An ``ocptask serve`` (or OCP): the server runs the tasks, the command follows them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.where = f"--server {client.url}"

    def get(self, task_id: int) -> Task:
        return _task(self.client.get(f"/api/v2/tasks/instances/{_task_id(task_id)}"))

    def tasks(self, wanted: TaskListing) -> list[dict[str, Any]]:
        """Newest first; with ``after``, pages are read until a task older than it."""
        found: list[dict[str, Any]] = []
        page = 1
        after, limit = wanted.after, wanted.limit
        while len(found) < limit:
            data = self.client.get(
                "/api/v2/tasks/instances",
                status=",".join(wanted.statuses) or None,
                name=wanted.name,
                type=wanted.task_type,
                hostId=wanted.host_id,
                clusterId=wanted.cluster_id,
                clusterName=wanted.cluster_name,
                page=page,
                size=limit,
                sort="id,desc",
            )
            contents = [_times_here(t) for t in data["contents"]]
            for task in contents:
                if after is not None and datetime.fromisoformat(task["createTime"]) < after:
                    return found
                found.append(task)
            if after is None or len(contents) < limit or page >= data["page"]["totalPages"]:
                break
            page += 1
        return found[:limit]

    def audit_events(self, wanted: EventFilter, limit: int) -> list[dict[str, Any]]:
        """Newest first, as the server records them (``GET /api/v2/audit/events``)."""
        data = self.client.get(
            "/api/v2/audit/events",
            eventType=",".join(wanted.event_types) or None,
            operationEvent=",".join(wanted.operation_events) or None,
            operatorId=",".join(str(i) for i in wanted.operator_ids) or None,
            resourceName=wanted.resource_name,
            eventInfo=wanted.event_info,
            status=wanted.status,
            startTime=wanted.start_time.isoformat() if wanted.start_time else None,
            endTime=wanted.end_time.isoformat() if wanted.end_time else None,
            size=limit,
            order="id,desc",
        )
        return list(data["contents"])

    def log(self, task_id: int, subtask_id: int) -> str:
        path = f"/api/v2/tasks/instances/{_task_id(task_id)}/subtasks/{subtask_id}/log"
        return str(self.client.get(path).get("log") or "")

    def host_labels(self, task: Task) -> dict[int, str]:
        from engine import NotFound

        def label(host_id: str) -> str:
            try:
                host = self.client.get(f"/api/v2/compute/hosts/{int(host_id)}")
            except (NotFound, ValueError):
                return f"host {host_id}"
            return f"{host['name']} ({host['innerIpAddress']})"

        return task.host_labels(label)

    def start(self, task_id: int) -> None:
        """The server runs its tasks."""

    def wait(self, task_id: int) -> Task:
        while True:
            task = self.get(task_id)
            if settled(task):
                return task
            time.sleep(POLL_SECONDS)

    def run(self, task_id: int) -> Task:
        return self.wait(task_id)

    def retry(self, task_id: int) -> Task:
        path = f"/api/v2/tasks/instances/{_task_id(task_id)}/retry"
        return _task(self.client.call("POST", path))

    def rollback(self, task_id: int) -> Task:
        path = f"/api/v2/tasks/instances/{_task_id(task_id)}/rollback"
        return _task(self.client.call("POST", path))

    # -- OBProxy clusters: OCP's calls for tasks.obproxy's embedded ones ----------------------

    def create_cluster(self, request: Any) -> Task:
        return self._started(self._cluster("POST", "", request))

    def plan_cluster(self, request: Any) -> dict[str, Any]:
        plan = self.client.call("POST", _CLUSTERS, query={"plan": "true"}, body=request)
        return _times_here(plan)  # type: ignore[no-any-return]

    def edit_cluster(self, cluster_id: int, body: Any) -> dict[str, Any]:
        return _times_here(self._cluster("PATCH", f"/{cluster_id}", body))  # type: ignore[no-any-return]

    def add_links(self, cluster_id: int, links: Any) -> None:
        self._cluster("POST", f"/{cluster_id}/obLinks/batchAdd", links)

    def remove_link(self, cluster_id: int, ob_cluster_name: str) -> None:
        self._cluster("DELETE", f"/{cluster_id}/obLinks/{ob_cluster_name}")

    def add_obproxies(self, cluster_id: int, body: Any) -> list[Task]:
        added = self._cluster("POST", f"/{cluster_id}/obproxies/batchAdd", body)
        return [self._started(task) for task in added["contents"]]

    def take_over_obproxies(self, cluster_id: int, body: Any) -> list[Task]:
        taken = self._cluster("POST", f"/{cluster_id}/takeOver", body)
        return [self._started(task) for task in taken["contents"]]

    def delete_obproxies(self, cluster_id: int, server_ids: str) -> Task:
        return self._started(self._cluster("DELETE", f"/{cluster_id}/obproxies/{server_ids}"))

    def restart_obproxies(self, cluster_id: int, server_ids: str) -> Task:
        path = f"/{cluster_id}/obproxies/{server_ids}/restart"
        return self._started(self._cluster("POST", path))

    def upgrade_obproxies(self, cluster_id: int, server_ids: str, body: Any) -> Task:
        path = f"/{cluster_id}/obproxies/{server_ids}/upgrade"
        return self._started(self._cluster("POST", path, body))

    def stop_obproxies(self, cluster_id: int, body: Any) -> Task:
        return self._started(self._cluster("POST", f"/{cluster_id}/servers/stop", body))

    def start_obproxies(self, cluster_id: int, body: Any) -> Task:
        return self._started(self._cluster("POST", f"/{cluster_id}/servers/start", body))

    def delete_cluster(self, cluster_id: int) -> Task:
        return self._started(self._cluster("DELETE", f"/{cluster_id}"))

    def _cluster(self, method: str, path: str, body: Any = None) -> Any:
        return self.client.call(method, _CLUSTERS + path, body=body)

    def _started(self, record: dict[str, Any]) -> Task:
        """The task an operation started, read back whole (its answer omits contexts and
        times)."""
        return self.get(int(record["id"]))


_CLUSTERS = "/api/v2/obproxy/clusters"


def _task_id(task_id: int) -> int:
    """An id no task can have is not found, as locally (the server would refuse it as input)."""
    from engine.db.row_ids import is_row_id
    from engine.errors import TaskNotFound, found

    return found(task_id if is_row_id(task_id) else None, TaskNotFound, task_id)


def _times_here(data: Any) -> Any:
    """OCP's times (``…Time`` fields) shown in this machine's zone, as ``--db`` shows them,
    whatever the server's zone."""
    from engine.clock import ocp_time

    if isinstance(data, list):
        return [_times_here(v) for v in data]
    if not isinstance(data, dict):
        return data
    return {
        k: ocp_time(datetime.fromisoformat(v))
        if k.endswith("Time") and isinstance(v, str) and v
        else _times_here(v)
        for k, v in data.items()
    }


def _task(record: dict[str, Any]) -> Task:
    from engine.task import Task

    return Task.from_ocp(record)
