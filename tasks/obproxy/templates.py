"""The templates of an OBProxy cluster's tasks, with OCP's node names and timeouts where OCP
documents them (ocp-task-api.md §4-5) and names of ours in the same style where it does not.

"Install obproxy" with no hosts is OCP's sample exactly: Prepare obproxy install (300 s) →
Finish node (0 s, no limit): the per-host chain between them is split over an empty
``host_ids`` and vanishes. With hosts, each gets OCP's batchAdd chain (Prepare create obproxy →
… → Update obproxy status). batchAdd makes a task per host of the same 12 nodes, unsplit
(``INSTALL_ONE_OBPROXY``). "Offline obproxy" is OCP's 8 nodes, or, for a cluster without
OBProxies, OCP's Start node → Finish node. Restart and upgrade go host by host (SERIAL): the
cluster keeps serving while one of its OBProxies is down. Restart, upgrade and start are
ocptask's own DAGs (OCP's pages for restart and upgrade show another task's sample), in the
same style.
"""

from __future__ import annotations

from engine import Node, Split, Template

from . import install_steps as h
from . import lifecycle_steps as s
from . import offline_steps as o
from . import uninstall_steps as u
from .cluster_steps import FinishObproxyInstall, PrepareObproxyInstall
from .prepare_steps import PrepareCreateObproxy, PrepareObproxyInstallOne, RefreshAgentConfig

PREPARE = "Prepare obproxy install"
FINISH = "Finish node"

# PARALLEL: one chain per host, parallelIdx = the host's index; no hostIds, no chain.
HOSTS = Split("host_ids", required=False)
CHAIN = [
    # (step, OCP's name, OCP's timeout in seconds)
    (PrepareCreateObproxy, "Prepare create obproxy", 1800),
    (h.CheckProcessNotExist, "Check if process not exist", 300),
    (h.CheckCommandExists, "Check if command exists", 300),
    (h.InstallRpmByPackageAndVersion, "Install rpm by package and version", 3600),
    (h.StartObproxy, "Start obproxy process", 600),
    (h.SyncObproxyParameter, "Sync obproxy parameter", 30),
    (h.SetObproxyUserPassword, "Set obproxy user and password for connect", 30),
    (RefreshAgentConfig, "Refresh ocp agent config", 3600),
    (h.RegisterObproxyExporter, "Register obproxy exporter", 30),
    (h.UpdateObproxyStatus, "Update obproxy status", 300),
]


def _chain(
    chain: list[tuple[type, str, int]], first: str, split: Split | None = HOSTS
) -> list[Node]:
    """``first`` → the chain (one copy per host with a ``split``, else once); a node whose
    step cannot be undone (a deletion), or that OCP does not roll back, prohibits rollback."""
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


# batchAdd (and takeOver): OCP answers a task per host, its 12 nodes one after another.
INSTALL_ONE_OBPROXY = Template(
    "Install obproxy",
    [
        Node(PrepareObproxyInstallOne, PREPARE, description=PREPARE, timeout=300),
        *_chain(CHAIN, PREPARE, None),
        Node(FinishObproxyInstall, FINISH, description=FINISH, timeout=0, upstreams=[CHAIN[-1][1]]),
    ],
)

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
    first = first or Node(s.StartNode, START, description=START, timeout=30)
    return Template(
        name,
        [
            first,
            *_chain(chain, first.name, split),
            Node(finish, FINISH, description=FINISH, timeout=0, upstreams=[chain[-1][1]]),
        ],
    )


# The tasks "Add obproxy" recorded before batchAdd made a task per host (their rows still show it).
ADD_OBPROXY_NAME = "Add obproxy"
STOP = (s.StopObproxy, "Stop obproxy process", 300)
START_PROCESS = (h.StartObproxy, "Start obproxy process", 600)
CHECK = (s.CheckObproxy, "Check obproxy status", 60)
MARK_RUNNING = (s.MarkObproxyRunning, "Update obproxy status", 300)
SYNC = (h.SyncObproxyParameter, "Sync obproxy parameter", 30)
# OCP 4.3's stop: Start node → Stop obproxy (1800 s, per host, no rollback) → Finish node.
STOP_OBPROXY = _task("Stop obproxy", [(s.StopObproxyServer, "Stop obproxy", 1800)])
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


def in_line(name: str, entries: list[tuple[type, str, int, Split | None]]) -> Template:
    """A template of nodes one after another: (step, OCP's name, timeout, split); a node whose
    step cannot be undone prohibits rollback, as in ``_chain``."""
    nodes: list[Node] = []
    for step, node_name, timeout, split in entries:
        nodes.append(
            Node(
                step,
                node_name,
                description=node_name,
                timeout=timeout,
                upstreams=[nodes[-1].name] if nodes else [],
                split=split,
                prohibit_rollback=getattr(step, "irreversible", False),
            )
        )
    return Template(name, nodes)


def _offline(name: str) -> Template:
    """OCP's "Offline obproxy", for deleting OBProxies and (with the payload's delete_cluster)
    their cluster (OCP 4.3's servers/delete names it "Delete obproxy server")."""
    return in_line(
        name,
        [
            (s.StartNode, START, 30, None),
            (u.PrepareOfflineObproxy, "Prepare offline obproxy", 1800, HOSTS),
            (o.WaitNode, "Wait node", 30, None),
            (u.StopAndUninstallObproxy, "Stop and uninstall obproxy", 1800, HOSTS),
            (o.DeleteObproxyInfos, "Delete obproxy info", 300, None),
            (o.OfflineObproxyExporter, "Offline obproxy exporter", 30, HOSTS),
            (o.UnreserveHost, "Unreserve host", 1800, None),
            (u.FinishOfflineObproxy, FINISH, 0, None),
        ],
    )


OFFLINE_OBPROXY = _offline("Offline obproxy")
DELETE_OBPROXY_SERVER = _offline("Delete obproxy server")
# A cluster without OBProxies: OCP's sample of its delete, Start node → Finish node.
OFFLINE_EMPTY = in_line(
    "Offline obproxy", [(s.StartNode, START, 30, None), (u.FinishOfflineObproxy, FINISH, 0, None)]
)
