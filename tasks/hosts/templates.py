"""The "Prepare host" task a batchCreate starts for each host: OCP's five nodes, in a chain,
with OCP's names and timeouts (its "Add hosts in batches" page). The host is the task's
``stringMap.host_id``."""

from __future__ import annotations

from engine import Node, Template

from . import prepare_steps as p

PREPARE_HOST = "Prepare host"

CHAIN = [
    # (step, OCP's name, OCP's timeout in seconds)
    (p.PreCheckForCreateHost, "Pre check for create host", 1800),
    (p.UninstallLegacyObAgent, "Uninstall legacy obagent", 2100),
    (p.UninstallLegacyOcpAgent, "Uninstall legacy ocp agent", 600),
    (p.InstallOcpAgent, "Install ocp agent", 5400),
    (p.UpdateHostStatus, "Update host status", 1800),
]

PREPARE_HOSTS = Template(
    PREPARE_HOST,
    [
        Node(
            step,
            name,
            description=name,
            timeout=timeout,
            upstreams=[CHAIN[i - 1][1]] if i else [],
        )
        for i, (step, name, timeout) in enumerate(CHAIN)
    ],
)
