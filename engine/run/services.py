"""What a running step may use of its engine, besides its context and log.

Steps are handed these, not the store: the host registry, SSH connections from the engine's one
pool, and transactions (and the secret box) for a task package's own tables.
So what a step can touch is named in one place, and the SSH pool has an owner that closes it
(``Engine.close``) instead of living in a module global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.db.store import Store
from engine.remote.hosts import HostRegistry
from engine.remote.ssh import SshPool


@dataclass
class Services:
    store: Store
    hosts: HostRegistry
    ssh_pool: SshPool = field(default_factory=SshPool)

    def close(self) -> None:
        self.ssh_pool.close()
