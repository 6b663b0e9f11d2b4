"""The "Install obproxy" template, with OCP's node names, descriptions and timeouts.

With no hosts it is OCP's sample exactly: Prepare obproxy install (300 s) → Finish node (0 s, no
limit): the per-host chain between them is split over an empty ``host_ids`` and vanishes.
"""

from __future__ import annotations

from engine import Node, Split, Template

from . import host_steps as h
from .steps import FinishObproxyInstall, PrepareObproxyInstall

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


def _chain() -> list[Node]:
    nodes, previous = [], PREPARE
    for step, name, timeout in CHAIN:
        nodes.append(
            Node(step, name, description=name, timeout=timeout, upstreams=[previous], split=HOSTS)
        )
        previous = name
    return nodes


INSTALL_OBPROXY = Template(
    "Install obproxy",
    [
        Node(PrepareObproxyInstall, PREPARE, description=PREPARE, timeout=300),
        *_chain(),
        Node(FinishObproxyInstall, FINISH, description=FINISH, timeout=0, upstreams=[CHAIN[-1][1]]),
    ],
    prohibit_rollback=False,
)
