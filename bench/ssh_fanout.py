"""Create-cluster wall time on 1, 4 and 16 sandbox hosts, and one command on a pooled connection.

Targets: 16 hosts in at most 1.3 x the time of one host (the chains run in parallel), and a
median of at most 5 ms per command on a warm pooled connection. Needs root (sandbox hosts).

    python bench/ssh_fanout.py [--hosts 1,4,16] [--commands 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Engine, TaskStatus
from engine.ssh import SshPool, SshTarget
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy import create_cluster

STATE = Path("/var/tmp/ocptask-sandbox-bench")
PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"


def busy_seconds() -> float:
    """Machine-wide CPU time spent so far (all processes: sshd, shells, stand-ins, us)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def create_on(hosts: list[dict], tmp: Path) -> tuple[float, float, float]:
    db = tmp / f"bench-{len(hosts)}.db"
    with Engine(str(db), parallelism=max(10, len(hosts))) as engine:
        ids = [engine.hosts.add(h).id for h in hosts]
        register_ob_cluster(engine, "bench-password")
        request = install_request(ids, startupParameters=[], parameters=[])
        started, busy, own = time.perf_counter(), busy_seconds(), os.times()
        final = engine.run(create_cluster(engine, request).id, timeout=600)
        elapsed, cpu = time.perf_counter() - started, busy_seconds() - busy
        mine = sum(os.times()[:2]) - sum(own[:2])
        if final.status is not TaskStatus.SUCCESSFUL:
            raise SystemExit(f"create on {len(hosts)} hosts ended {final.status.value}")
    sandbox_hosts.reset(STATE)
    return elapsed, cpu, mine


def command_latency(host: dict, count: int) -> list[float]:
    target = SshTarget(
        host["name"],
        host["innerIpAddress"],
        host["sshPort"],
        host["username"],
        host["privateKeyPath"],
        host_key=host["hostKey"],
    )
    conn = SshPool().connection(target)
    conn.run("true")  # connect and warm up
    times = []
    for _ in range(count):
        started = time.perf_counter()
        conn.run("true")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,16")
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    os.environ["OCPTASK_PACKAGE_DIR"] = str(PACKAGES)
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.json"
        sandbox_hosts.up(max(counts), inventory, STATE)
        try:
            hosts = json.loads(inventory.read_text())["hosts"]
            times = {n: create_on(hosts[:n], Path(tmp)) for n in counts}
            latency = command_latency(hosts[0], args.commands)
        finally:
            sandbox_hosts.down(STATE)
    base = times[counts[0]][0]
    cores = os.cpu_count() or 1
    print("create an OBProxy cluster (RS_LIST, full per-host chain) on sandbox hosts")
    print(
        f"(sandbox hosts share this machine's {cores} cores: CPU use shows when that is the limit)"
    )
    for n, (seconds, cpu, mine) in times.items():
        print(
            f"  {n:>3} host(s): {seconds:6.2f} s   {seconds / base:4.2f} x one host   "
            f"CPU busy {cpu:5.2f} s = {cpu / seconds / cores:4.0%} of {cores} cores "
            f"(ocptask's own process {mine:4.2f} s)"
        )
    if 16 in times and 1 in times:
        verdict = "ok" if times[16][0] <= 1.3 * times[1][0] else "OVER"
        print(f"  target: 16 hosts <= 1.3 x one host: {verdict}")
    median = statistics.median(latency) * 1e3
    p95 = sorted(latency)[int(len(latency) * 0.95)] * 1e3
    print(
        f"one command on a pooled connection: median {median:.2f} ms, p95 {p95:.2f} ms "
        f"({len(latency)} runs; target median <= 5 ms: {'ok' if median <= 5 else 'OVER'})"
    )


if __name__ == "__main__":
    main()
