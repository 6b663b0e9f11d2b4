"""Where a task or obproxy command does its work: a database (``Local``: the embedded calls on an
Engine; ``Reads``: a SQLite file read without one, for ``task list`` and ``task show``) or a
server (``Remote``: the same calls through OCP's HTTP API). All hand the commands the same things
(``Task`` snapshots, OCP's BasicTaskInstance for lists, log text, host labels), so a command
prints the same either way and keeps no rule of its own.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from api.client import Client
    from engine import Engine
    from engine.reads.sqlite_reader import SqliteReader
    from engine.task import Task

ACTIVE = ("READY", "RUNNING", "CANCELING")
POLL_SECONDS = 0.5


def settled(task: Task) -> bool:
    """Nothing of the task runs or is about to: what a watch or a remote wait waits for."""
    return task.status.value != "RUNNING" or not any(
        s.status.value in ACTIVE for s in task.subtasks
    )


class Backend(Protocol):
    where: str
    """The option that names it, for commands printed to the operator (``--db x``), or ''."""

    def get(self, task_id: int) -> Task: ...
    def tasks(
        self,
        statuses: list[str],
        name: str | None,
        task_type: str | None,
        after: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]: ...
    def log(self, task_id: int, subtask_id: int) -> str: ...
    def host_labels(self, task: Task) -> dict[int, str]: ...
    def start(self, task_id: int) -> None: ...
    def wait(self, task_id: int) -> Task: ...
    def run(self, task_id: int) -> Task: ...
    def retry(self, task_id: int) -> Task: ...
    def rollback(self, task_id: int) -> Task: ...
    def obproxy(self, call: str, *args: Any) -> Any: ...


class Reads:
    """A SQLite database read without an Engine (``engine.sqlite_reader``): what ``task list``
    and ``task show`` need, started in a fraction of the time an Engine takes to import."""

    def __init__(self, reader: SqliteReader, db: str | None) -> None:
        self.reader = reader
        self.where = f"--db {db}" if db else ""

    def get(self, task_id: int) -> Task:
        from engine.errors import TaskNotFound, found

        return found(self.reader.get(task_id), TaskNotFound, task_id)

    def tasks(
        self,
        statuses: list[str],
        name: str | None,
        task_type: str | None,
        after: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        found = self.reader.page(**_filters(statuses, name, task_type, after, limit))
        from api.auth.user_ids import sqlite_user_ids

        return _basic(found, sqlite_user_ids(self.reader.connection))

    def host_labels(self, task: Task) -> dict[int, str]:
        def label(host_id: str) -> str:
            host = self.reader.host(int(host_id)) if host_id.isdigit() else None
            return f"host {host_id}" if host is None else f"{host[0]} ({host[1]})"

        return task.host_labels(label)


class Local:
    """The database itself: the tasks run in this process."""

    def __init__(self, engine: Engine, db: str | None) -> None:
        self.engine = engine
        self.where = f"--db {db}" if db else ""

    def get(self, task_id: int) -> Task:
        return self.engine.get(task_id)

    def tasks(
        self,
        statuses: list[str],
        name: str | None,
        task_type: str | None,
        after: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        found, _ = self.engine.page(**_filters(statuses, name, task_type, after, limit))
        from api.auth.users import Users

        return _basic(found, Users(self.engine.store).ids())

    def log(self, task_id: int, subtask_id: int) -> str:
        return self.engine.log(task_id, subtask_id)

    def host_labels(self, task: Task) -> dict[int, str]:
        return task.host_labels(self.engine.hosts.label)

    def start(self, task_id: int) -> None:
        self.engine.start(task_id)

    def wait(self, task_id: int) -> Task:
        return self.engine.wait(task_id)

    def run(self, task_id: int) -> Task:
        return self.engine.run(task_id)

    def retry(self, task_id: int) -> Task:
        return self.engine.retry(task_id)

    def rollback(self, task_id: int) -> Task:
        return self.engine.rollback(task_id)

    def obproxy(self, call: str, *args: Any) -> Any:
        """``tasks.obproxy``'s embedded call of that name, on this database."""
        import tasks.obproxy

        return getattr(tasks.obproxy, call)(self.engine, *args)


class Remote:
    """An ``ocptask serve`` (or OCP): the server runs the tasks, the command follows them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.where = f"--server {client.url}"

    def get(self, task_id: int) -> Task:
        return _task(self.client.get(f"/api/v2/tasks/instances/{_task_id(task_id)}"))

    def tasks(
        self,
        statuses: list[str],
        name: str | None,
        task_type: str | None,
        after: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first; with ``after``, pages are read until a task older than it."""
        found: list[dict[str, Any]] = []
        page = 1
        while len(found) < limit:
            data = self.client.get(
                "/api/v2/tasks/instances",
                status=",".join(statuses) or None,
                name=name,
                type=task_type,
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

    def obproxy(self, call: str, *args: Any) -> Any:
        """The HTTP call for ``tasks.obproxy``'s embedded call of that name; a task it starts
        is read back whole (an operation's answer omits contexts and times)."""
        method, path, *rest = _ROUTES[call](*args)
        query = {"plan": "true"} if call == "plan_cluster" else None
        body = rest[0] if rest else None
        data = self.client.call(method, _CLUSTERS + path, query=query, body=body)
        if call == "add_obproxies":
            data = data["contents"][0]
        if isinstance(data, dict) and "subtasks" in data and call != "plan_cluster":
            return self.get(int(data["id"]))
        return _times_here(data)


_CLUSTERS = "/api/v2/obproxy/clusters"
_ROUTES: dict[str, Any] = {
    "create_cluster": lambda body: ("POST", "", body),
    "plan_cluster": lambda body: ("POST", "", body),
    "edit_cluster": lambda c, body: ("PATCH", f"/{c}", body),
    "add_links": lambda c, links: ("POST", f"/{c}/obLinks/batchAdd", links),
    "remove_link": lambda c, name: ("DELETE", f"/{c}/obLinks/{name}"),
    "add_obproxies": lambda c, body: ("POST", f"/{c}/obproxies/batchAdd", body),
    "delete_obproxies": lambda c, ids: ("DELETE", f"/{c}/obproxies/{ids}"),
    "restart_obproxies": lambda c, ids: ("POST", f"/{c}/obproxies/{ids}/restart"),
    "upgrade_obproxies": lambda c, ids, body: ("POST", f"/{c}/obproxies/{ids}/upgrade", body),
    "stop_obproxies": lambda c, body: ("POST", f"/{c}/servers/stop", body),
    "start_obproxies": lambda c, body: ("POST", f"/{c}/servers/start", body),
    "delete_cluster": lambda c: ("DELETE", f"/{c}"),
}


def _filters(
    statuses: list[str], name: str | None, task_type: str | None, after: datetime | None, limit: int
) -> dict[str, Any]:
    """A list's filters as ``page`` takes them; "since" is a match on the snapshot."""

    def recent(task: Task) -> bool:
        return after is None or task.create_time >= after

    match = recent if after else None
    return {
        "statuses": statuses,
        "name": name,
        "task_type": task_type,
        "match": match,
        "limit": limit,
    }


def _basic(tasks: list[Task], creator_ids: dict[str, int]) -> list[dict[str, Any]]:
    """OCP's BasicTaskInstance of each, as the API's list shows them."""
    return [t.to_basic(creator_ids.get(t.creator)) for t in tasks]


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
