"""What OCP shows of an OBProxy while tasks work on its cluster: its status and operateStatus.

One source of truth, read when the record is shown: the task that holds the cluster
(``engine.states.holds``). Nothing is written for it, so nothing can be left behind: whether the
task ends well, fails, is cancelled or rolled back, or runs in a daemon of another process, the
record shows what that task's rows say now.

- ``operateStatus`` (OCP: NORMAL, OPERATING) is OPERATING while a task holds the cluster: it
  runs, or it failed and was neither retried to success nor rolled back. Meanwhile no other
  operation on any OBProxy of the cluster is accepted, so all of them show it.
- ``status`` (OCP 4.2: CREATING, RUNNING, RESTARTING, UPGRADING, REFRESHING, DELETING,
  UNAVAILABLE, TAKINGOVER) is, while the holding task RUNS, what that task does to the OBProxies
  it names whose host chain is not through (none failed, not all done): RESTARTING for a
  restart, UPGRADING for an upgrade, DELETING for an offline, CREATING for an install or add,
  TAKINGOVER for a take-over (its "Install obproxy" tasks say so in their payload).
  Otherwise it is the status the steps left on the server row. A stopped OBProxy (the row's
  STOPPED) shows UNAVAILABLE: OCP 4.2's enum has no stopped value, and no OCP 4.3 API page
  found documents one (4.3 documents the stop call, not a value for its result).
  REFRESHING (by its name and OCP's console, OCP pushing changed parameters or links to running
  OBProxies without a restart) never shows: ocptask has no such task (parameters are set at
  create, re-applied by a restart; link edits change the record only).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine import Engine, SubtaskStatus, Task, TaskStatus
from engine.states import holds

from .records import hold
from .templates import (
    ADD_OBPROXY_NAME,
    DELETE_OBPROXY_SERVER,
    INSTALL_OBPROXY,
    OFFLINE_OBPROXY,
    RESTART_OBPROXY,
    UPGRADE_OBPROXY,
)

# What a running task does to the OBProxies it names.
_TRANSIENT = {
    INSTALL_OBPROXY.name: "CREATING",
    ADD_OBPROXY_NAME: "CREATING",  # recorded before batchAdd made a task per host
    RESTART_OBPROXY.name: "RESTARTING",
    UPGRADE_OBPROXY.name: "UPGRADING",
    OFFLINE_OBPROXY.name: "DELETING",
    DELETE_OBPROXY_SERVER.name: "DELETING",
}
# A row's status OCP's enum lacks, and what stands for it.
_SHOWN = {"STOPPED": "UNAVAILABLE"}


def shown_status(stored: str) -> str:
    """OCP's value for a server row's status (STOPPED has none of its own in OCP 4.2)."""
    return _SHOWN.get(stored, stored)


def described(stored: str) -> str:
    """A row's status for a message: OCP's value, and ours beside it where they differ."""
    shown = shown_status(stored)
    return shown if shown == stored else f"{shown} ({stored.lower()})"


@dataclass(frozen=True)
class Activity:
    """The task holding a cluster (the first of its batch still holding it), and the transient
    status of each host its tasks work on now."""

    holder: int | None = None
    doing: dict[int, str] = field(default_factory=dict)  # host id -> OCP's transient status

    @property
    def operate_status(self) -> str:
        return "OPERATING" if self.holder is not None else "NORMAL"

    def status(self, host_id: int, stored: str) -> str:
        return self.doing.get(host_id) or shown_status(stored)


IDLE = Activity()


def activities(engine: Engine, cluster_ids: Iterable[int]) -> dict[int, Activity]:
    """Each held cluster's activity, by cluster id (a cluster absent is IDLE)."""
    resources = {hold(cluster_id)[0]: cluster_id for cluster_id in cluster_ids}
    with engine.store.read() as session:
        held = holds.holders(session.connection(), list(resources))
    # Every holding task of every cluster, read at once.
    tasks = {t.id: t for t in engine.get_many([i for ids in held.values() for i in ids])}
    return {
        resources[r]: Activity(ids[0], _doing([tasks[i] for i in ids if i in tasks]))
        for r, ids in held.items()
    }


def _doing(tasks: list[Task]) -> dict[int, str]:
    doing: dict[int, str] = {}
    for task in tasks:
        status = "TAKINGOVER" if task.payload.get("take_over") else _TRANSIENT.get(task.name)
        if task.status is TaskStatus.RUNNING and status is not None:
            doing.update((host_id, status) for host_id in _unfinished_hosts(task))
    return doing


def _unfinished_hosts(task: Task) -> list[int]:
    """Hosts whose chain (the copies split over ``host_ids``, or the whole task of a per-host
    task, whose context names its ``host_id``) neither failed nor finished."""
    chains: dict[str, list[SubtaskStatus]] = defaultdict(list)
    own = task.context.string_map.get("host_id")
    for sub in task.subtasks:
        host = sub.item("host_ids") or own
        if host is not None:
            chains[host].append(sub.status)
    return [
        int(host)
        for host, states in chains.items()
        if SubtaskStatus.FAILED not in states
        and any(s is not SubtaskStatus.SUCCESSFUL for s in states)
    ]
