"""HTTP API under load: one ``ocptask serve --no-run`` on SQLite, many concurrent clients.

Sets up a 26-subtask "Install obproxy" task record (3 hosts that nothing listens on: --no-run
never runs them) and 49 more like it, then per scenario runs ``--clients`` keep-alive clients
for ``--seconds`` with HTTP Basic (the server caches a verified password: scrypt is a one-off):
- get: GET /api/v2/tasks/instances/{id} (the 26-subtask task). Target: >= 1,000 requests/s
  with p99 <= 50 ms on a 2-core machine.
- list: GET /api/v2/tasks/instances (default page: 10 tasks of 26 subtasks each).
- create: POST /api/v2/obproxy/clusters, OCP's sample request (no hosts), a unique name each.
Prints requests/s, p50 and p99 latency (ms) per scenario, errors (a non-200 answer or an
envelope that is not successful; must be 0), and the CPU the server and the clients used. The
clients share the machine's cores with the server, so they take CPU the server could use.

    python bench/api_load.py [--seconds 30] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

import tasks.obproxy
from engine import Engine
from fixtures import api_server, install_request, register_ob_cluster, sample_request

PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"
USER, PASSWORD = "bench", "bench-Passw0rd"
GET_P99_MS, GET_RATE = 50.0, 1000.0

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def prepare(engine: Engine, tasks_total: int) -> int:
    """The hosts, the OceanBase cluster and ``tasks_total`` install tasks; the first's id."""
    engine.users.add(USER, PASSWORD)
    hosts = [
        engine.hosts.add(
            {
                "name": f"bench-host-{i}",
                "innerIpAddress": f"127.0.0.{201 + i}",
                "username": "root",
                "privateKeyPath": "/nonexistent",
            }
        )
        for i in range(3)
    ]
    register_ob_cluster(engine, "pw")
    host_ids = [h.id for h in hosts]
    first = tasks.obproxy.create_cluster(engine, install_request(host_ids), USER)
    if len(first.subtasks) != 26:
        raise SystemExit(f"the install task has {len(first.subtasks)} subtasks, not 26")
    for i in range(1, tasks_total):
        tasks.obproxy.create_cluster(engine, install_request(host_ids, name=f"bench{i}"), USER)
    return first.id


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(url: str, call: Call, clients: int, seconds: float) -> tuple[list[float], list[str]]:
    """``clients`` coroutines, each one request at a time on its own kept-alive connection."""
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, auth=(USER, PASSWORD), limits=limits, timeout=30
    ) as client:
        await call(client)  # the one scrypt, and a warm connection

        async def worker(deadline: float) -> None:
            while (started := time.perf_counter()) < deadline:
                try:
                    response = await call(client)
                    problem = None
                    if response.status_code != 200:
                        problem = f"HTTP {response.status_code}: {response.text[:300]}"
                    elif json.loads(response.content).get("successful") is not True:
                        problem = f"unsuccessful envelope: {response.text[:300]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                latencies.append(time.perf_counter() - started)
                if problem is not None:
                    errors.append(problem)

        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(worker(deadline) for _ in range(clients)))
    return latencies, errors


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def scenario(name: str, server: api_server.Server, call: Call, args: argparse.Namespace) -> int:
    server_cpu, client_cpu, wall = cpu_of(server.proc.pid), own_cpu(), time.perf_counter()
    latencies, errors = asyncio.run(load(server.url, call, args.clients, args.seconds))
    wall = time.perf_counter() - wall
    server_cpu = cpu_of(server.proc.pid) - server_cpu
    client_cpu = own_cpu() - client_cpu
    ordered = sorted(latencies)
    rate = len(ordered) / args.seconds
    p50, p99 = percentile(ordered, 0.50) * 1e3, percentile(ordered, 0.99) * 1e3
    print(
        f"  {name:<7} {rate:7.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"errors {len(errors)}  ({len(ordered)} requests; CPU: server "
        f"{server_cpu / wall:.2f} cores, clients {client_cpu / wall:.2f} cores)"
    )
    if name == "get":
        verdict = "ok" if rate >= GET_RATE and p99 <= GET_P99_MS else "MISSED"
        print(f"          target >= {GET_RATE:.0f} req/s with p99 <= {GET_P99_MS:.0f} ms: {verdict}")
    for problem in errors[:3]:
        print(f"          error: {problem}")
    return len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections")
    parser.add_argument("--tasks", type=int, default=50, help="task records for the list")
    args = parser.parse_args()
    os.environ["OCPTASK_PACKAGE_DIR"] = str(PACKAGES)
    tmp = Path(tempfile.mkdtemp(prefix="ocptask-api-load-"))
    server = None
    try:
        db = str(tmp / "bench.db")
        with Engine(db) as engine:
            task_id = prepare(engine, args.tasks)
        server = api_server.start(db, tmp / "server.log", "--no-run")
        print(
            f"ocptask serve --no-run on SQLite; {os.cpu_count()} cores, shared by the server and "
            f"the load generator (one asyncio process, httpx); {args.clients} clients, "
            f"{args.seconds:.0f} s per scenario"
        )
        names = (f"bench-{os.getpid()}-{n}" for n in itertools.count())
        sample = sample_request()

        async def get(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get(f"/api/v2/tasks/instances/{task_id}")

        async def page(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get("/api/v2/tasks/instances")

        async def create(client: httpx.AsyncClient) -> httpx.Response:
            body = sample | {"name": next(names)}
            return await client.post("/api/v2/obproxy/clusters", json=body)

        failed = 0
        for name, call in (("get", get), ("list", page), ("create", create)):
            failed += scenario(name, server, call, args)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
