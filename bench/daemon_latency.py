"""Daemon latency and throughput: 1 daemon on SQLite, then 3 daemons on one PostgreSQL.

Submits no-op tasks while the daemons run and reads the records afterwards. Prints, per setup:
- upstream-finish → downstream-start: for every subtask with upstreams, its start time minus the
  latest finish of its upstreams (median, p95, max). Target: median at most 50 ms.
- throughput: no-op nodes per second, first start to last finish.
- submit → start on idle daemons: how long new work waits to be noticed (target ≤ 1 s; SQLite
  daemons poll every 0.2 s, PostgreSQL ones also LISTEN for a NOTIFY from the submit).
The workload mixes chains (a worker claims the next node itself) and ladders (layers of four
parallel nodes joined by one node: the join's upstreams often finish on different daemons).

    python bench/daemon_latency.py [--tasks 40] [--parallelism 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from engine import Engine, Node, TaskStatus, Template
from engine.clock import as_utc
from engine.states.transitions import SUBTASKS
from fixtures import daemons, postgres

STEP = "bench.noop.Noop"
PG_PORT = 54339


def chain(n: int = 20) -> Template:
    return Template(
        "chain", [Node(STEP, f"n{i}", upstreams=[f"n{i - 1}"] if i else []) for i in range(n)]
    )


def ladder(layers: int = 4, width: int = 4) -> Template:
    nodes, join = [Node(STEP, "j0")], "j0"
    for layer in range(1, layers + 1):
        wide = [f"w{layer}.{k}" for k in range(width)]
        nodes += [Node(STEP, name, upstreams=[join]) for name in wide]
        join = f"j{layer}"
        nodes.append(Node(STEP, join, upstreams=wide))
    return Template("ladder", nodes)


def idle_pickups(engine: Engine, count: int = 10) -> list[float]:
    """Submit one-node tasks to idle daemons, one at a time: seconds until each starts."""
    waits = []
    for _ in range(count):
        task = engine.submit(Template("one", [Node(STEP, "one")]))
        deadline = time.monotonic() + 30
        while (sub := engine.get(task.id).subtasks[0]).start_time is None:
            if time.monotonic() > deadline:
                raise SystemExit("an idle daemon did not start a task within 30 s")
            time.sleep(0.005)
        waits.append((sub.start_time - task.create_time).total_seconds())
        time.sleep(0.05)
    return waits


def measure(url: str, count: int, tasks: int, parallelism: int, logs: Path) -> None:
    with Engine(url) as engine:  # creates the tables before the daemons race to
        extra = ("--parallelism", str(parallelism))
        procs = [
            daemons.start(url, f"bench-{i}", logs / f"daemon-{i}.log", *extra) for i in range(count)
        ]
        try:
            submitted: set[int] = set()
            for i in range(tasks):
                task = engine.submit(chain() if i % 2 else ladder())
                submitted.add(task.id)
                time.sleep(0.01)  # work arrives over time, not all at once
            deadline = time.monotonic() + 600
            while any(t.status is TaskStatus.RUNNING for t in engine.list(limit=tasks + 10)):
                if time.monotonic() > deadline:
                    raise SystemExit("tasks still running after 600 s")
                time.sleep(0.2)
            pickups = idle_pickups(engine)
        finally:
            daemons.stop_all(procs, gently=True)
        finals = engine.list(limit=tasks + 10)
        if any(t.status is not TaskStatus.SUCCESSFUL for t in finals):
            raise SystemExit("some task did not succeed")
        with engine.store.engine.connect() as conn:
            rows = conn.execute(
                select(
                    SUBTASKS.c.id,
                    SUBTASKS.c.task_id,
                    SUBTASKS.c.upstreams,
                    SUBTASKS.c.start_time,
                    SUBTASKS.c.finish_time,
                    SUBTASKS.c.executor,
                )
            ).all()
    rows = [r for r in rows if r.task_id in submitted]  # the load, not the idle pickups
    by_id = {r.id: r for r in rows}
    gaps = []
    for r in rows:
        if r.upstreams:
            ready_at = max(as_utc(by_id[u].finish_time) for u in r.upstreams)
            gaps.append((as_utc(r.start_time) - ready_at).total_seconds() * 1e3)
    span = (
        max(as_utc(r.finish_time) for r in rows) - min(as_utc(r.start_time) for r in rows)
    ).total_seconds()
    gaps.sort()
    p95 = gaps[int(0.95 * (len(gaps) - 1))]
    median = statistics.median(gaps)
    waits = sorted(pickups)
    executors = sorted({r.executor for r in rows})
    verdict = "ok" if median <= 50 else "OVER"
    print(
        f"  {len(rows)} nodes in {tasks} tasks on {', '.join(executors)}\n"
        f"  upstream-finish -> downstream-start: median {median:.1f} ms, p95 {p95:.1f} ms, "
        f"max {gaps[-1]:.1f} ms  (target median <= 50 ms: {verdict})\n"
        f"  throughput: {len(rows) / span:.0f} no-op nodes/s over {span:.1f} s\n"
        f"  submit -> start on idle daemons: median {statistics.median(waits) * 1e3:.0f} ms, "
        f"max {waits[-1] * 1e3:.0f} ms  (target <= 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--parallelism", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        print(f"1 daemon, SQLite (WAL), parallelism {args.parallelism}")
        measure(f"{tmp}/bench.db", 1, args.tasks, args.parallelism, logs)
        if os.geteuid() != 0:
            print("3 daemons on PostgreSQL: skipped (the private cluster is started as root)")
            return
        data_dir = Path(f"/var/tmp/ocptask-postgres-bench-{os.getpid()}")
        try:
            url = postgres.up(data_dir, port=PG_PORT)
            print(f"3 daemons, one PostgreSQL 15, parallelism {args.parallelism} each")
            measure(url, 3, args.tasks, args.parallelism, logs)
        finally:
            postgres.down(data_dir)


if __name__ == "__main__":
    main()
