"""The "Prepare host" task a batchCreate starts: one copy of its step per host, in parallel."""

from __future__ import annotations

from engine import Node, Split, Template

from .steps import PrepareHost

PREPARE_HOST = "Prepare host"

PREPARE_HOSTS = Template(
    PREPARE_HOST,
    [
        Node(
            PrepareHost,
            PREPARE_HOST,
            description="Reach the host over SSH and check the commands installs need",
            timeout=300,
            split=Split("host_ids"),
        )
    ],
)
