"""The benchmark's two shapes in Prefect 3, run in Prefect's own venv by ``bench/vs_prefect.py``.

A no-op task; a chain of N (each waits for the one before) and a fan-out that ends in a join
(one root, N-2 children, one task waiting on all of them). Prefect's default local setup: its
ephemeral API server and SQLite database, the default thread-pool task runner. A warm-up flow
runs first, so that starting the server is not counted. Prints one JSON line per shape with the
wall seconds of the flow run and the number of task runs it made.

    python prefect_shapes.py N REPEAT
"""

from __future__ import annotations

import json
import sys
import time

from prefect import flow, task


@task
def noop(_: object = None) -> None:
    """Nothing: what is measured is the orchestration."""


@flow
def chain(n: int) -> int:
    last = noop.submit()
    for _ in range(n - 1):
        last = noop.submit(wait_for=[last])
    last.result()
    return n


@flow
def join(n: int) -> int:
    root = noop.submit()
    children = [noop.submit(wait_for=[root]) for _ in range(n - 2)]
    noop.submit(wait_for=children).result()
    return n


def main() -> None:
    n, repeat = int(sys.argv[1]), int(sys.argv[2])
    chain(3)  # the ephemeral server starts here, outside what is timed
    for shape in (chain, join):
        for _ in range(repeat):
            started = time.perf_counter()
            made = shape(n)
            wall = time.perf_counter() - started
            print(json.dumps({"shape": shape.name, "nodes": made, "seconds": wall}), flush=True)


if __name__ == "__main__":
    main()
