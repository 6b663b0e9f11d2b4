"""A database as a command's backend: the embedded calls on an Engine, the tasks run in this
process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tasks.obproxy as obproxy
from api.auth.users import Users, with_creator_id
from engine import Engine, Task
from engine.audit import AuditEvents, EventFilter, acting_as

from .common import CREATOR, TaskListing
from .reads import basic

"""Who tasks made from the command line are recorded as (OCP's default user)."""


class Local:
    """The database itself: the tasks run in this process."""

    def __init__(self, engine: Engine, db: str | None) -> None:
        self.engine = engine
        self.where = f"--db {db}" if db else ""

    @contextmanager
    def acting(self) -> Iterator[Local]:
        """The command's calls recorded as ``CREATOR``'s (its user id when that user exists),
        from no network address: the audit events of a ``--db`` command."""
        with acting_as(CREATOR, Users(self.engine.store).ids().get(CREATOR)):
            yield self

    def get(self, task_id: int) -> Task:
        return self.engine.get(task_id)

    def audit_events(self, wanted: EventFilter, limit: int) -> list[dict[str, Any]]:
        events, _ = AuditEvents(self.engine.store).page(wanted, limit=limit)
        return events

    def tasks(self, wanted: TaskListing) -> list[dict[str, Any]]:
        found, _ = self.engine.page(**wanted.page_arguments())
        return basic(found, Users(self.engine.store).ids())

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

    # -- OBProxy clusters: tasks.obproxy's embedded calls on this database --------------------

    def create_cluster(self, request: Any) -> Task:
        return obproxy.create_cluster(self.engine, request, CREATOR)

    def plan_cluster(self, request: Any) -> dict[str, Any]:
        return obproxy.plan_cluster(self.engine, request)

    def edit_cluster(self, cluster_id: int, body: Any) -> dict[str, Any]:
        edited = obproxy.edit_cluster(self.engine, cluster_id, body)
        return with_creator_id(edited, Users(self.engine.store).ids())

    def add_links(self, cluster_id: int, links: Any) -> None:
        obproxy.add_links(self.engine, cluster_id, links)

    def remove_link(self, cluster_id: int, ob_cluster_name: str) -> None:
        obproxy.remove_link(self.engine, cluster_id, ob_cluster_name)

    def add_obproxies(self, cluster_id: int, body: Any) -> list[Task]:
        return obproxy.add_obproxies(self.engine, cluster_id, body, CREATOR)

    def take_over_obproxies(self, cluster_id: int, body: Any) -> list[Task]:
        return obproxy.take_over_obproxies(self.engine, cluster_id, body, CREATOR)

    def delete_obproxies(self, cluster_id: int, server_ids: str) -> Task:
        return obproxy.delete_obproxies(self.engine, cluster_id, server_ids, CREATOR)

    def restart_obproxies(self, cluster_id: int, server_ids: str) -> Task:
        return obproxy.restart_obproxies(self.engine, cluster_id, server_ids, CREATOR)

    def upgrade_obproxies(self, cluster_id: int, server_ids: str, body: Any) -> Task:
        return obproxy.upgrade_obproxies(self.engine, cluster_id, server_ids, body, CREATOR)

    def stop_obproxies(self, cluster_id: int, body: Any) -> Task:
        return obproxy.stop_obproxies(self.engine, cluster_id, body, CREATOR)

    def start_obproxies(self, cluster_id: int, body: Any) -> Task:
        return obproxy.start_obproxies(self.engine, cluster_id, body, CREATOR)

    def delete_cluster(self, cluster_id: int) -> Task:
        return obproxy.delete_cluster(self.engine, cluster_id, CREATOR)
