"""The templates of an OBProxy cluster's tasks, with OCP's node names and timeouts where OCP
documents them (ocp-task-api.md §4-5) and names of ours in the same style where it does not.

"Install obproxy" with no hosts is OCP's sample exactly: Prepare obproxy install (300 s) →
Finish node (0 s, no limit): the per-host chain between them is split over an empty
``host_ids`` and vanishes. "Offline obproxy" of a cluster without OBProxies is likewise OCP's
Start node → Finish node. Restart and upgrade go host by host (SERIAL): the cluster keeps
serving while one of its OBProxies is down.
"""

from __future__ import annotations

from engine import Node, Split, Template

from . import install_steps as h
from . import lifecycle_steps as s
from .cluster_steps import FinishObproxyInstall, PrepareObproxyInstall

PREPARE = "Prepare obproxy install"
FINISH = "Finish node"

# PARALLEL: one chain per host, parallelIdx = the host's index; no hostIds, no chain.
HOSTS = Split("host_ids", required=False)
CHAIN = [
    # (step, OCP's name, OCP's timeout in seconds)
    (h.CheckProcessNotExist, "Check if process not exist", 300),
    (h.CheckCommandExists, "Check if command exists", 300),
    (h.InstallRpmByPackageAndVersion, "Install rpm by package and version", 3600),
    (h.StartObproxy, "Start obproxy process", 600),
    (h.SyncObproxyParameter, "Sync obproxy parameter", 30),
    (h.SetObproxyUserPassword, "Set obproxy user and password for connect", 30),
    (h.RegisterObproxyExporter, "Register obproxy exporter", 30),
    (h.UpdateObproxyStatus, "Update obproxy status", 300),
]


def _chain(
    chain: list[tuple[type, str, int]], first: str, split: Split = HOSTS, *, last: str = FINISH
) -> list[Node]:
    """``first`` → the chain, one copy per host → ``last``; a node of the chain whose step
    cannot be undone (a deletion) prohibits rollback."""
    nodes, previous = [], first
    for step, name, timeout in chain:
        final = getattr(step, "irreversible", False)
        nodes.append(
            Node(
                step,
                name,
                description=name,
                timeout=timeout,
                upstreams=[previous],
                split=split,
                prohibit_rollback=final,
            )
        )
        previous = name
    return nodes


INSTALL_OBPROXY = Template(
    "Install obproxy",
    [
        Node(PrepareObproxyInstall, PREPARE, description=PREPARE, timeout=300),
        *_chain(CHAIN, PREPARE),
        Node(FinishObproxyInstall, FINISH, description=FINISH, timeout=0, upstreams=[CHAIN[-1][1]]),
    ],
    prohibit_rollback=False,
)

START = "Start node"
ONE_BY_ONE = Split("host_ids", "SERIAL", required=False)


def _task(
    name: str,
    chain: list[tuple[type, str, int]],
    *,
    split: Split = HOSTS,
    first: Node | None = None,
    finish: type = s.FinishNode,
) -> Template:
    """``first`` (a Start node) → the per-host chain → Finish node."""
    first = first or Node(s.StartNode, START, description=START, timeout=60)
    return Template(
        name,
        [
            first,
            *_chain(chain, first.name, split),
            Node(finish, FINISH, description=FINISH, timeout=0, upstreams=[chain[-1][1]]),
        ],
    )


# batchAdd: the create's per-host chain on new hosts of an existing cluster.
ADD_OBPROXY = _task(
    "Add obproxy",
    CHAIN,
    first=Node(s.PrepareObproxyAdd, PREPARE, description=PREPARE, timeout=300),
    finish=FinishObproxyInstall,
)
STOP = (s.StopObproxy, "Stop obproxy process", 300)
START_PROCESS = (h.StartObproxy, "Start obproxy process", 600)
CHECK = (s.CheckObproxy, "Check obproxy status", 60)
MARK_RUNNING = (s.MarkObproxyRunning, "Update obproxy status", 300)
SYNC = (h.SyncObproxyParameter, "Sync obproxy parameter", 30)
STOP_OBPROXY = _task("Stop obproxy", [STOP])
START_OBPROXY = _task("Start obproxy", [START_PROCESS, CHECK, MARK_RUNNING])
RESTART_OBPROXY = _task(
    "Restart obproxy",
    [STOP, START_PROCESS, SYNC, CHECK, MARK_RUNNING],
    split=ONE_BY_ONE,
)
UPGRADE_OBPROXY = _task(
    "Upgrade obproxy",
    [
        (s.StopOldObproxy, "Stop obproxy process", 300),
        (s.InstallNewObproxy, "Install rpm by package and version", 3600),
        (s.StartNewObproxy, "Start obproxy process", 600),
        CHECK,
        (s.UpdateObproxyVersion, "Update obproxy version", 300),
    ],
    split=ONE_BY_ONE,
)
# OCP's "Offline obproxy", for deleting OBProxies and (with the payload's delete_cluster) their
# cluster: Start node → per host Prepare offline → Stop and uninstall → Delete info → Finish.
OFFLINE_OBPROXY = _task(
    "Offline obproxy",
    [
        (s.PrepareOfflineObproxy, "Prepare offline obproxy", 60),
        (s.StopAndUninstallObproxy, "Stop and uninstall obproxy", 600),
        (s.DeleteObproxyInfo, "Delete obproxy info", 60),
    ],
    finish=s.FinishOfflineObproxy,
)
