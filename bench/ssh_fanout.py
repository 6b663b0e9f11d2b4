"""The create fanned out over N sandbox hosts, against the machine's CPU limit, and one command
on a pooled SSH connection.

For each N (each create in a fresh process, so its peak RSS is its own): wall time, the CPU
seconds the whole machine spent (sshd, shells, stand-ins and ocptask), ocptask's own CPU per
host chain, and ``wall / (machine CPU s / cores)``: 1.0 means the fan-out never waited on
anything but CPU. The controller's peak RSS, open fds and SSH connections before the create and
after the engine closed (no leak: after = before). With ``--profile`` the 16-host create runs
once more under py-spy: a flame graph (SVG) and the functions with the most samples.

Targets (issue 13): 16 hosts within 1.15 x the CPU limit; ocptask's own CPU <= 60 ms per host;
64 hosts: per-host wall <= 1.5 x the 16-host figure, peak RSS <= 200 MB, no fd or SSH
connection leak; median pooled command <= 3 ms. Needs root (sandbox hosts).

    python bench/ssh_fanout.py [--hosts 1,4,16,64] [--repeat 3] [--profile DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import hosts as bench_hosts
from bench.profile_summary import summarize
from engine.remote.ssh import SshPool, SshTarget

HERE = Path(__file__).resolve()


def command_latency(host: dict[str, Any], count: int) -> tuple[list[float], list[float]]:
    """``true`` on a warm pooled connection, as steps run it (in its own killable process
    group, output streamed), and bare: one exec on the same SSH transport, the floor that
    sshd's fork and exec of the login shell sets on this machine."""
    target = SshTarget(
        host["name"],
        host["innerIpAddress"],
        host["sshPort"],
        host["username"],
        host["privateKeyPath"],
        host_key=host["hostKey"],
    )
    pool = SshPool()
    conn = pool.connection(target)
    conn.run("true")  # connect and warm up
    transport = conn._connected().get_transport()  # the bench reaches in for the floor
    assert transport is not None

    def bare() -> None:
        channel = transport.open_session()
        channel.exec_command("true")
        channel.recv_exit_status()
        channel.close()

    ours, floor = [], []
    for _ in range(count):  # interleaved, so that both meet the same machine
        started = time.perf_counter()
        conn.run("true")
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare()
        floor.append(time.perf_counter() - started)
    pool.close()
    return ours, floor


def child(count: int, inventory: Path, out: Path) -> None:
    """One create on the first ``count`` hosts, in this process; its figures as JSON."""
    hosts = json.loads(inventory.read_text())["hosts"][:count]
    with tempfile.TemporaryDirectory() as tmp:
        made = bench_hosts.create(hosts, Path(tmp) / "bench.db")
    out.write_text(json.dumps(asdict(made)))


def measured(count: int, inventory: Path, folder: Path, prefix: list[str] | None = None) -> dict:
    out = folder / f"create-{count}.json"
    command = [
        sys.executable,
        str(HERE),
        "--child",
        str(count),
        "--inventory",
        str(inventory),
        "--json",
        str(out),
    ]
    ran = subprocess.run([*(prefix or []), *command], capture_output=True, text=True)
    bench_hosts.reset()
    if ran.returncode:
        raise SystemExit(f"create on {count} hosts failed: {ran.stderr.strip()[-3000:]}")
    return json.loads(out.read_text())


def profile(inventory: Path, folder: Path, out: Path) -> dict[str, Any]:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return {"missing": "py-spy is not installed (pip install py-spy)"}
    out.mkdir(parents=True, exist_ok=True)
    svg, raw = out / "create16-flame.svg", out / "create16-stacks.raw"
    for fmt, path in (("flamegraph", svg), ("raw", raw)):
        measured(
            16,
            inventory,
            folder,
            [str(spy), "record", "--gil", "-r", "250", "-f", fmt, "-o", str(path), "--"],
        )
    return {"svg": str(svg), "stacks": str(raw), **summarize(raw)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,16,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="folder for the 16-host flame graph")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inventory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.inventory, args.json)
    sizes = [int(n) for n in args.hosts.split(",")]
    cores = os.cpu_count() or 1
    runs: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inventory = folder / "inventory.json"
        try:
            hosts = bench_hosts.up(max(sizes), inventory)
            for run in range(args.repeat):
                for n in sizes if run % 2 == 0 else reversed(sizes):
                    runs.setdefault(n, []).append(measured(n, inventory, folder))
            latency, floor = command_latency(hosts[0], args.commands)
            spied = profile(inventory, folder, args.profile) if args.profile else None
        finally:
            bench_hosts.down()
    rows = []
    for n in sizes:
        med = {k: statistics.median(r[k] for r in runs[n]) for k in runs[n][0] if k != "hosts"}
        med |= {
            "hosts": n,
            "own_ms_per_host": med["own_cpu"] / n * 1e3,
            "cpu_limit_ratio": med["wall"] / (med["machine_cpu"] / cores),
            "wall_per_host": med["wall"] / n,
        }
        med["fd_leak"] = max(r["fds_after"] - r["fds_before"] for r in runs[n])
        med["ssh_leak"] = max(r["ssh_after"] - r["ssh_before"] for r in runs[n])
        rows.append(med)
    print(
        f"create on N sandbox hosts ({cores} cores shared with the hosts), median of {args.repeat}"
    )
    print(
        f"{'hosts':>5} {'wall s':>7} {'machine CPU s':>14} {'own ms/host':>12} "
        f"{'wall/limit':>11} {'peak RSS MB':>12} {'fds':>9} {'ssh':>7}"
    )
    for r in rows:
        print(
            f"{r['hosts']:>5} {r['wall']:>7.2f} {r['machine_cpu']:>14.2f} "
            f"{r['own_ms_per_host']:>12.0f} {r['cpu_limit_ratio']:>11.2f} "
            f"{r['peak_rss_mb']:>12.0f} {r['fds_before']:>4.0f}>{r['fds_after']:<4.0f} "
            f"{r['ssh_before']:>3.0f}>{r['ssh_after']:<3.0f}"
        )
    median, p95 = statistics.median(latency) * 1e3, sorted(latency)[int(len(latency) * 0.95)] * 1e3
    bare = statistics.median(floor) * 1e3
    print(
        f"one command on a pooled connection: median {median:.2f} ms, p95 {p95:.2f} ms "
        f"(a bare exec of the same on the same connection: median {bare:.2f} ms)"
    )
    if spied and "centres" in spied:
        print(
            f"profile of the 16-host create: {spied['svg']}; {spied['samples']} samples, "
            f"imports {spied['imports']:.0%} and no Python frame {spied['no_frame']:.0%} set "
            "apart, the rest by cost centre:"
        )
        for name, share in spied["centres"]:
            print(f"  {share:6.1%}  {name}")
    if args.json:
        result = {
            "cores": cores,
            "rows": rows,
            "command_ms": {"median": median, "p95": p95, "bare": bare},
            "profile": spied,
        }
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
