"""Per-node engine overhead on SQLite: a 1,000-node no-op chain, fan-out, and fan-out that ends in
a join (one root, N-2 children, one node waiting on all of them: the shape of every install).

Prints, for each shape, the engine's wall time per node (submit, and run until SUCCESSFUL) beside
the same no-op functions called in a plain in-memory topological loop, and the ratio.
Target (issue 13): at most 0.8 ms per node on every shape at 1,000 nodes.

    python bench/engine_overhead.py [--nodes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import networkx as nx

from bench.noop import noop
from engine import Engine, Node, TaskStatus, Template

STEP = "bench.noop.Noop"
TARGET_MS = 0.8


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


def engine_run(template: Template, parallelism: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, Engine(f"{tmp}/bench.db", parallelism) as engine:
        started = time.perf_counter()
        task = engine.submit(template)
        submitted = time.perf_counter()
        final = engine.run(task.id)
        finished = time.perf_counter()
        if final.status is not TaskStatus.SUCCESSFUL:
            raise SystemExit(f"{template.name}: task ended {final.status}")
    return submitted - started, finished - submitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    n = args.nodes
    print(
        f"{n} no-op nodes, SQLite (WAL), parallelism {args.parallelism}, "
        f"median of {args.repeat} runs"
    )
    print(
        f"{'shape':<8} {'submit/node':>12} {'run/node':>10} {'plain/node':>11} "
        f"{'overhead/node':>14} {'ratio':>9}  target <= {TARGET_MS} ms"
    )
    for template in (chain(n), fan_out(n), join(n)):
        submits, runs, plains = [], [], []
        for _ in range(args.repeat):
            submit_s, run_s = engine_run(template, args.parallelism)
            submits.append(submit_s)
            runs.append(run_s)
            plains.append(plain_loop(template))
        submit_ms = statistics.median(submits) / n * 1e3
        run_ms = statistics.median(runs) / n * 1e3
        plain_ms = statistics.median(plains) / n * 1e3
        overhead = run_ms - plain_ms
        verdict = "ok" if run_ms <= TARGET_MS else "OVER"
        rows.append({"shape": template.name, "submit_ms": submit_ms, "run_ms": run_ms,
                     "loop_ms": plain_ms, "nodes": n})  # fmt: skip
        print(
            f"{template.name:<8} {submit_ms:>10.3f}ms {run_ms:>8.3f}ms {plain_ms * 1e3:>9.3f}us "
            f"{overhead:>12.3f}ms {run_ms / plain_ms:>8.0f}x  {verdict}"
        )

    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "target_ms": TARGET_MS}, indent=1))


if __name__ == "__main__":
    main()
