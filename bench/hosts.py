"""The benchmarks' sandbox hosts and the measured create that several benchmarks share.

The hosts are real sshd processes on 127.0.0.150 and up (users ``ocpbn1``...), a range of
their own: the demo's sandbox (127.0.0.11...) and the tests' (127.0.0.111...) can run beside
them. Needs root.
"""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import Engine, TaskStatus
from fixtures import install_request, register_ob_cluster, sandbox
from tasks.obproxy import create_cluster

STATE = Path("/var/tmp/ocptask-sandbox-bench")
FIRST_ADDRESS, USER_PREFIX = 150, "ocpbn"
PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"
OB_PASSWORD = "bench-password"


def up(count: int, inventory: Path) -> list[dict[str, Any]]:
    """Start ``count`` hosts; their inventory entries, each with its home folder added."""
    started = sandbox.up(
        count, inventory, STATE, first_address=FIRST_ADDRESS, user_prefix=USER_PREFIX
    )
    entries = json.loads(inventory.read_text())["hosts"]
    for entry, host in zip(entries, started, strict=True):
        entry["home"] = host.home
    return entries


def down() -> None:
    sandbox.down(STATE)


def reset() -> None:
    """Between runs: stop every obproxy the run left and clear the hosts' homes."""
    sandbox.reset(STATE)


def busy_seconds() -> float:
    """Machine-wide CPU time spent so far (every process: sshd, shells, stand-ins, us)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ssh_connections() -> int:
    """This process's TCP sockets that are connected to a port 2222 (the sandbox's sshd)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[2].endswith(":08AE") and cols[3] == "01" and cols[9] in inodes:
                count += 1
    return count


@dataclass
class Create:
    """One measured create: wall seconds, machine and own CPU seconds, and the controller's
    resources (peak RSS so far in MB; fds and SSH connections before the engine and after it
    closed, and the most SSH connections open at once while it ran)."""

    hosts: int
    wall: float
    machine_cpu: float
    own_cpu: float
    peak_rss_mb: float
    fds_before: int
    fds_after: int
    ssh_before: int
    ssh_after: int
    ssh_during: int


def create(hosts: list[dict[str, Any]], db: Path) -> Create:
    """Create an OBProxy cluster on ``hosts`` (the demo's request: RS_LIST, one startup and one
    non-startup parameter), checked to end SUCCESSFUL."""
    os.environ["OCPTASK_PACKAGE_DIR"] = str(PACKAGES)
    fds, ssh_before = open_fds(), ssh_connections()
    with Engine(str(db), parallelism=max(10, len(hosts))) as engine:
        ids = [engine.hosts.add(h).id for h in hosts]
        register_ob_cluster(engine, OB_PASSWORD)
        request = install_request(ids)
        started, busy, own = time.perf_counter(), busy_seconds(), os.times()
        task = create_cluster(engine, request)
        final = engine.run(task.id, timeout=900)
        wall, machine = time.perf_counter() - started, busy_seconds() - busy
        mine = sum(os.times()[:2]) - sum(own[:2])
        during = ssh_connections()
        if final.status is not TaskStatus.SUCCESSFUL:
            failed = [s for s in final.subtasks if s.status.value == "FAILED"]
            why = "\n".join(
                f"{s.name} (#{s.parallel_idx}):\n{engine.log(task.id, s.id)[-1200:]}"
                for s in failed[:2]
            )
            raise SystemExit(
                f"ocptask's create on {len(hosts)} hosts ended {final.status.value}:\n{why}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Create(
        len(hosts),
        wall,
        machine,
        mine,
        peak,
        fds,
        open_fds(),
        ssh_before,
        ssh_connections(),
        during,
    )
