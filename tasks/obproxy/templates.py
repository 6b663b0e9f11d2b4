"""The "Install obproxy" template, with OCP's node names, descriptions and timeouts.

With no hosts it is OCP's sample exactly: Prepare obproxy install (300 s) → Finish node (0 s, no
limit). The per-host install chain (split PARALLEL over ``host_ids``) goes between the two.
"""

from __future__ import annotations

from engine import Node, Template

from .steps import FinishObproxyInstall, PrepareObproxyInstall

PREPARE = "Prepare obproxy install"
FINISH = "Finish node"

INSTALL_OBPROXY = Template(
    "Install obproxy",
    [
        Node(PrepareObproxyInstall, PREPARE, description=PREPARE, timeout=300),
        Node(FinishObproxyInstall, FINISH, description=FINISH, timeout=0, upstreams=[PREPARE]),
    ],
    prohibit_rollback=False,
)
