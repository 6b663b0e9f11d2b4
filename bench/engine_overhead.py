"""Per-node engine overhead: a 1,000-node no-op chain, fan-out, and fan-out that ends in a join
(one root, N-2 children, one node waiting on all of them: the shape of every install).

Prints, for each shape, the engine's wall time per node (submit, and run until SUCCESSFUL) beside
the same no-op functions called in a plain in-memory topological loop, and the ratio; on SQLite
(WAL), and with ``--postgres`` (a private PostgreSQL 15 started for the run, as root; hold
``/tmp/ocptask-services.lock`` meanwhile, as the tests do) or ``--db-url`` (a PostgreSQL server
of your own: each run creates a database there and drops it) on PostgreSQL too.
Target (issue 25): at most 0.5 ms per node on every shape at 1,000 nodes on SQLite (was 0.8 ms,
issue 13); PostgreSQL's figure is shown beside it, without a target.

    python bench/engine_overhead.py [--nodes 1000] [--repeat 3] [--postgres | --db-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import networkx as nx

from bench.noop import noop
from engine import Engine, Node, TaskStatus, Template
from fixtures import postgres

STEP = "bench.noop.Noop"
TARGET_MS = 0.5
PG_PORT = 54338  # not the tests' 54330 nor daemon_latency's 54339


def chain(n: int) -> Template:
    nodes = [Node(STEP, f"n{i}", upstreams=[f"n{i - 1}"] if i else []) for i in range(n)]
    return Template("chain", nodes)


def fan_out(n: int) -> Template:
    nodes = [Node(STEP, "root")] + [
        Node(STEP, f"leaf{i}", upstreams=["root"]) for i in range(n - 1)
    ]
    return Template("fan-out", nodes)


def join(n: int) -> Template:
    children = [f"child{i}" for i in range(n - 2)]
    nodes = [Node(STEP, "root")] + [Node(STEP, c, upstreams=["root"]) for c in children]
    return Template("join", [*nodes, Node(STEP, "join", upstreams=children)])


def plain_loop(template: Template) -> float:
    graph = nx.DiGraph()
    for node in template.nodes:
        graph.add_node(node.name)
        graph.add_edges_from((up, node.name) for up in node.upstreams)
    started = time.perf_counter()
    for _name in nx.topological_sort(graph):
        noop(None)
    return time.perf_counter() - started


@contextmanager
def fresh_database(server: str | None) -> Iterator[str]:
    """An empty database for one run: a SQLite file in a temporary directory, or (``server``: a
    PostgreSQL URL) a database created on that server, dropped after."""
    if server is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"{tmp}/bench.db"
        return
    with postgres.scratch_database(server, "bench") as url:
        yield url


def engine_run(
    template: Template, parallelism: int, db_url: str | None = None
) -> tuple[float, float]:
    """(submit, run) seconds of one task on a fresh database (SQLite unless ``db_url``)."""
    with fresh_database(db_url) as url, Engine(url, parallelism) as engine:
        started = time.perf_counter()
        task = engine.submit(template)
        submitted = time.perf_counter()
        final = engine.run(task.id)
        finished = time.perf_counter()
        if final.status is not TaskStatus.SUCCESSFUL:
            raise SystemExit(f"{template.name}: task ended {final.status}")
    return submitted - started, finished - submitted


def measure(database: str, db_url: str | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each shape's medians on one database, printed as a table and returned as rows."""
    rows = []
    n = args.nodes
    print(f"{n} no-op nodes, {database}, parallelism {args.parallelism}, median of {args.repeat}")
    target = f"target <= {TARGET_MS} ms" if db_url is None else "no target (SQLite's is the one)"
    print(
        f"{'shape':<8} {'submit/node':>12} {'run/node':>10} {'plain/node':>11} "
        f"{'overhead/node':>14} {'ratio':>9}  {target}"
    )
    for template in (chain(n), fan_out(n), join(n)):
        submits, runs, plains = [], [], []
        for _ in range(args.repeat):
            submit_s, run_s = engine_run(template, args.parallelism, db_url)
            submits.append(submit_s)
            runs.append(run_s)
            plains.append(plain_loop(template))
        submit_ms = statistics.median(submits) / n * 1e3
        run_ms = statistics.median(runs) / n * 1e3
        plain_ms = statistics.median(plains) / n * 1e3
        overhead = run_ms - plain_ms
        verdict = "" if db_url is not None else "ok" if run_ms <= TARGET_MS else "OVER"
        rows.append({"shape": template.name, "submit_ms": submit_ms, "run_ms": run_ms,
                     "loop_ms": plain_ms, "nodes": n, "database": database,
                     "runs_ms": [r / n * 1e3 for r in runs]})  # fmt: skip
        print(
            f"{template.name:<8} {submit_ms:>10.3f}ms {run_ms:>8.3f}ms {plain_ms * 1e3:>9.3f}us "
            f"{overhead:>12.3f}ms {run_ms / plain_ms:>8.0f}x  {verdict}"
        )
    return rows


@contextmanager
def postgres_server(args: argparse.Namespace) -> Iterator[str | None]:
    """The PostgreSQL server to measure on: ``--db-url``'s, a private one (``--postgres``), or
    none."""
    if args.db_url:
        yield args.db_url
        return
    if not args.postgres:
        yield None
        return
    if os.geteuid() != 0:
        print("PostgreSQL: skipped (the private cluster is started as root)")
        yield None
        return
    data_dir = Path(f"/var/tmp/ocptask-postgres-bench-{os.getpid()}")
    try:
        yield postgres.up(data_dir, port=PG_PORT)
    finally:
        postgres.down(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="also on a private PostgreSQL")
    parser.add_argument("--db-url", help="also on this PostgreSQL server (a database per run)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = measure("SQLite (WAL)", None, args)
    with postgres_server(args) as server:
        if server is not None:
            print()
            rows += measure("PostgreSQL", server, args)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "target_ms": TARGET_MS}, indent=1))


if __name__ == "__main__":
    main()
