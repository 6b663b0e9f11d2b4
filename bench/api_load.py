"""HTTP API under load: one ``ocptask serve --no-run`` on SQLite, many concurrent clients.

Sets up a 32-subtask "Install obproxy" task record (3 hosts that nothing listens on: --no-run
never runs them) and 49 more like it, then per scenario runs ``--clients`` keep-alive clients
for ``--seconds`` with HTTP Basic (the server caches a verified password: scrypt is a one-off):
- get: GET /api/v2/tasks/instances/{id} (the 32-subtask task). Target: >= 1,000 requests/s
  with p99 <= 50 ms on a 2-core machine.
- list: GET /api/v2/tasks/instances (default page: 10 tasks of 32 subtasks each).
- create: POST /api/v2/obproxy/clusters, OCP's sample request (no hosts), a unique name each.
Prints requests/s, p50 and p99 latency (ms) per scenario, errors (a non-200 answer or an
envelope that is not successful; must be 0), and the CPU the server and the clients used, per
request and in cores. The clients share the machine's cores with the server: what they use, the
server cannot. So the load comes from one asyncio process speaking plain HTTP/1.1 over kept-alive
sockets (``--httpx`` for httpx.AsyncClient instead, which costs the clients several times more
CPU per request than the server spends answering a task's detail).

    python bench/api_load.py [--seconds 30] [--clients 50] [--workers 1] [--only get] [--httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import uvloop

import tasks.obproxy
from api.auth.users import Users
from engine import Engine
from fixtures import api_server, install_request, register_ob_cluster, sample_request

PACKAGES = Path(__file__).resolve().parent.parent / "fixtures" / "packages"
USER, PASSWORD = "bench", "bench-Passw0rd"
GET_P99_MS, GET_RATE = 50.0, 1000.0

Request = tuple[str, str, bytes | None]  # method, path, JSON body
"""What a scenario asks, one request at a time."""


def prepare(engine: Engine, tasks_total: int) -> int:
    """The hosts, the OceanBase cluster and ``tasks_total`` install tasks; the first's id."""
    Users(engine.store).add(USER, PASSWORD)
    register_ob_cluster(engine, "pw")

    def three_hosts(task: int) -> list[int]:
        """Hosts of their own for each task: a host is held by one install at a time."""
        return [
            engine.hosts.add(
                {
                    "name": f"bench-host-{task}-{i}",
                    "innerIpAddress": f"127.1.{task // 250}.{task % 250 + 1 + i * 0}",
                    "sshPort": 2200 + i,
                    "username": "root",
                    "privateKeyPath": "/nonexistent",
                }
            ).id
            for i in range(3)
        ]

    first = tasks.obproxy.create_cluster(engine, install_request(three_hosts(0)), USER)
    if len(first.subtasks) != 32:
        raise SystemExit(f"the install task has {len(first.subtasks)} subtasks, not 32")
    for i in range(1, tasks_total):
        request = install_request(three_hosts(i), name=f"bench{i}")
        tasks.obproxy.create_cluster(engine, request, USER)
    return first.id


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process and its live children (``--workers``) so far."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return found + [g for c in found for g in _children(c)]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client(Protocol):
    async def send(self, request: Request) -> tuple[int, bytes]: ...
    async def close(self) -> None: ...


class RawClient:
    """One kept-alive HTTP/1.1 connection; answers are read by their Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.headers = f"Host: {host}:{port}\r\nAuthorization: Basic {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        method, path, body = request
        head = f"{method} {path} HTTP/1.1\r\n{self.headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write((head + "\r\n").encode() + (body or b""))
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = 0
        for line in answer.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class HttpxClient:
    def __init__(self, url: str) -> None:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.client = httpx.AsyncClient(base_url=url, auth=(USER, PASSWORD), limits=one, timeout=30)

    async def send(self, request: Request) -> tuple[int, bytes]:
        method, path, body = request
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await self.client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


async def load(
    server: api_server.Server, ask: Callable[[], Request], args: argparse.Namespace
) -> tuple[list[float], list[str]]:
    """``clients`` coroutines, each one request at a time on its own kept-alive connection."""
    host, port = server.url.removeprefix("http://").split(":")
    pool: list[Client] = [
        HttpxClient(server.url) if args.httpx else RawClient(host, int(port))
        for _ in range(args.clients)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    sample = itertools.cycle(range(100))

    async def worker(client: Client, deadline: float) -> None:
        while (started := time.perf_counter()) < deadline:
            try:
                status, body = await client.send(ask())
                problem = None
                if status != 200:
                    problem = f"HTTP {status}: {body[:300]!r}"
                elif not successful(body, parse=next(sample) == 0):
                    problem = f"unsuccessful envelope: {body[:300]!r}"
            except (OSError, EOFError, ValueError, httpx.HTTPError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - started)
            if problem is not None:
                errors.append(problem)

    try:
        await pool[0].send(ask())  # the one scrypt (then remembered)
        await asyncio.gather(*(c.send(ask()) for c in pool))  # every connection open
        deadline = time.perf_counter() + args.seconds
        await asyncio.gather(*(worker(c, deadline) for c in pool))
    finally:
        for client in pool:
            await client.close()
    return latencies, errors


def successful(body: bytes, *, parse: bool) -> bool:
    """Whether an answer is a successful envelope. The server writes the envelope's frame
    (successful, timestamp, …, server) after ``data``, so its last few hundred bytes tell;
    decoding a 32-subtask record on every answer would cost the clients more CPU than the server
    spends making it. One answer in a hundred is decoded in full."""
    if parse:
        return json.loads(body).get("successful") is True
    return b'"successful":true,' in body[-400:]


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def scenario(
    name: str, server: api_server.Server, ask: Callable[[], Request], args: argparse.Namespace
) -> int:
    server_cpu, client_cpu, wall = cpu_of(server.proc.pid), own_cpu(), time.perf_counter()
    latencies, errors = uvloop.run(load(server, ask, args))
    wall = time.perf_counter() - wall
    server_cpu = cpu_of(server.proc.pid) - server_cpu
    client_cpu = own_cpu() - client_cpu
    ordered = sorted(latencies)
    rate = len(ordered) / args.seconds
    p50, p99 = percentile(ordered, 0.50) * 1e3, percentile(ordered, 0.99) * 1e3
    per = 1e3 / max(1, len(ordered))
    print(
        f"  {name:<7} {rate:7.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"errors {len(errors)}  ({len(ordered)} requests; CPU per request: server "
        f"{server_cpu * per:.2f} ms, clients {client_cpu * per:.2f} ms; "
        f"{server_cpu / wall:.2f} + {client_cpu / wall:.2f} cores)"
    )
    if name == "get":
        verdict = "ok" if rate >= GET_RATE and p99 <= GET_P99_MS else "MISSED"
        target = f">= {GET_RATE:.0f} req/s with p99 <= {GET_P99_MS:.0f} ms"
        print(f"          target {target}: {verdict}")
    for problem in errors[:3]:
        print(f"          error: {problem}")
    return len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections")
    parser.add_argument("--tasks", type=int, default=50, help="task records for the list")
    parser.add_argument("--httpx", action="store_true", help="load with httpx.AsyncClient")
    parser.add_argument("--workers", type=int, default=1, help="ocptask serve --workers")
    parser.add_argument(
        "--only", choices=("get", "list", "create"), action="append", help="these scenarios"
    )
    args = parser.parse_args()
    os.environ["OCPTASK_PACKAGE_DIR"] = str(PACKAGES)
    tmp = Path(tempfile.mkdtemp(prefix="ocptask-api-load-"))
    server = None
    try:
        db = str(tmp / "bench.db")
        with Engine(db) as engine:
            task_id = prepare(engine, args.tasks)
        server = api_server.start(
            db, tmp / "server.log", "--no-run", "--workers", str(args.workers)
        )
        load_generator = "httpx.AsyncClient" if args.httpx else "plain HTTP/1.1"
        print(
            f"ocptask serve --no-run --workers {args.workers} on SQLite; {os.cpu_count()} "
            "cores, shared by the server and "
            f"the load generator (one asyncio process, {load_generator}); {args.clients} "
            f"clients, {args.seconds:.0f} s per scenario; load average "
            f"{os.getloadavg()[0]:.2f} before (other work on the machine takes cores too)"
        )
        names = (f"bench-{os.getpid()}-{n}" for n in itertools.count())
        sample = sample_request()
        scenarios: list[tuple[str, Callable[[], Request]]] = [
            ("get", lambda: ("GET", f"/api/v2/tasks/instances/{task_id}", None)),
            ("list", lambda: ("GET", "/api/v2/tasks/instances", None)),
            (
                "create",
                lambda: (
                    "POST",
                    "/api/v2/obproxy/clusters",
                    json.dumps(sample | {"name": next(names)}).encode(),
                ),
            ),
        ]
        chosen = [(n, ask) for n, ask in scenarios if not args.only or n in args.only]
        failed = sum(scenario(name, server, ask, args) for name, ask in chosen)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        raise SystemExit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
