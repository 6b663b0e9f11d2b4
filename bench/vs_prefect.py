"""ocptask beside Prefect 3 on the same no-op shapes: a chain and a fan-out that ends in a join.

Prefect runs in its own venv under the bench cache (``$OCPTASK_BENCH_CACHE``, default
``~/.cache/ocptask-bench``), installed there when missing, never into the project's venv; with
its default local setup (a fresh ``PREFECT_HOME``: its ephemeral server and SQLite database,
the thread-pool task runner). ocptask runs the same shapes on SQLite with parallelism 10
(``bench/engine_overhead.py``'s). Both are timed from submitting to the flow or task's end, per
node, beside a plain in-memory loop. Equal work: every ocptask task ends SUCCESSFUL with N
subtasks; every Prefect flow returns only once its last task run (which waits on all others)
has finished. Target (issue 13): ocptask at least 20 x lighter per node than Prefect.

    python bench/vs_prefect.py [--nodes 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine_overhead import chain, engine_run, join, plain_loop
from bench.peer_venv import PeerMissing, peer_python, version

HERE = Path(__file__).resolve().parent
PREFECT = "prefect>=3,<4"
TARGET = 20.0


def prefect_runs(nodes: int, repeat: int) -> dict[str, list[float]]:
    python = peer_python("prefect", [PREFECT], "import prefect")
    with tempfile.TemporaryDirectory() as home:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            # Its ephemeral server imports the whole of Prefect in a process of its own: on a
            # loaded 2-core machine that can pass Prefect's 20 s default, and the run fails.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            "PREFECT_HOME": home,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no network here, and none wanted
            "DO_NOT_TRACK": "1",
        }
        ran = subprocess.run(
            [python, HERE / "peers" / "prefect_shapes.py", str(nodes), str(repeat)],
            capture_output=True, text=True, env=env, timeout=3600,
        )  # fmt: skip
    if ran.returncode:
        raise SystemExit(f"Prefect's run failed: {ran.stderr.strip()[-500:]}")
    times: dict[str, list[float]] = {}
    for line in ran.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row["nodes"] != nodes:
                raise SystemExit(f"Prefect's {row['shape']} ran {row['nodes']} nodes, not {nodes}")
            times.setdefault(row["shape"], []).append(row["seconds"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    n = args.nodes
    result: dict[str, Any] = {"nodes": n, "target": TARGET, "rows": []}
    try:
        peer: dict[str, list[float]] | str = prefect_runs(n, args.repeat)
        result["prefect_version"] = version(
            peer_python("prefect", [PREFECT], "import prefect"), "prefect"
        )
    except (SystemExit, PeerMissing) as why:
        peer = result["prefect_missing"] = str(why)
    print(f"{n} no-op nodes per shape, median of {args.repeat}, ms per node (wall)")
    print(f"{'shape':<7} {'ocptask':>9} {'Prefect 3':>10} {'loop':>9} {'Prefect/ocptask':>16}")
    engine_run(chain(3), 10)  # a warm-up, as Prefect's side runs one before it is timed
    for template in (chain(n), join(n)):
        ours = statistics.median(sum(engine_run(template, 10)) for _ in range(args.repeat))
        loop = statistics.median(plain_loop(template) for _ in range(args.repeat))
        ours_ms, loop_us = ours / n * 1e3, loop / n * 1e6
        row = {"shape": template.name, "ocptask_ms": ours_ms, "loop_us": loop_us}
        result["rows"].append(row)
        if isinstance(peer, str):
            print(f"{template.name:<7} {ours_ms:>7.3f}ms {'-':>10} {loop_us:>7.2f}us  {peer}")
            continue
        theirs_ms = statistics.median(peer[template.name]) / n * 1e3
        ratio = theirs_ms / ours_ms
        row["prefect_ms"] = theirs_ms
        verdict = "holds" if ratio >= TARGET else "MISSED"
        print(
            f"{template.name:<7} {ours_ms:>7.3f}ms {theirs_ms:>8.3f}ms {loop_us:>7.2f}us "
            f"{ratio:>14.1f}x  target >= {TARGET:.0f}x: {verdict}"
        )

    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
