"""How long an ``ocptask`` command takes from exec to exit, for the commands an operator types
most: ``--help``, ``task list`` on an empty SQLite database, ``task show`` of a task, and
``task list`` through a server. Target (issue 11): a median of at most 0.4 s for ``--help`` and
``task list``.

Each command runs once first with bytecode caching on (as Python does on a user's machine, even
where this sandbox sets PYTHONDONTWRITEBYTECODE), then RUNS times; the median, min and max wall
times are printed. Usage: ``python -m bench.cli_startup [RUNS]``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures import REQUESTS, api_server

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.4
USER, PASSWORD = "bench", "bench-Passw0rd"


def timed(args: list[str], env: dict[str, str], runs: int) -> list[float]:
    command = [sys.executable, "-m", "cli", *args]
    warm = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if warm.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {warm.stderr.strip()}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def main(runs: int = 9) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPTASK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        empty, one = f"{tmp}/empty.db", f"{tmp}/one.db"
        subprocess.run(  # an empty database: its schema, no task
            [sys.executable, "-m", "cli", "task", "list", "--db", empty],
            env=env, cwd=ROOT, capture_output=True, check=True,
        )  # fmt: skip
        created = subprocess.run(
            [sys.executable, "-m", "cli", "obproxy", "create", "--db", one,
             str(REQUESTS / "create-obproxy-cluster.json")],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        task_id = str(json.loads(created.stdout)["id"])
        subprocess.run(
            [sys.executable, "-m", "cli", "user", "add", USER, "--password-stdin",
             "--db", one],
            input=PASSWORD, env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        server = api_server.start(one, Path(tmp, "serve.log"), "--no-run")
        try:
            remote = {**env, "OCPTASK_PASSWORD": PASSWORD}
            through = ["--server", server.url, "--user", USER]
            cases = [
                ("ocptask --help", ["--help"], env, True),
                ("ocptask task list (empty SQLite)", ["task", "list", "--db", empty], env, True),
                (
                    "ocptask task show ID (SQLite)",
                    ["task", "show", task_id, "--db", one],
                    env,
                    False,
                ),
                ("ocptask task list --server URL", ["task", "list", *through], remote, False),
            ]
            print(f"ocptask start-up, {runs} runs each after one warm-up, wall seconds")
            print(f"{'command':<36} {'median':>7} {'min':>6} {'max':>6}  target")
            for label, args, where, targeted in cases:
                times = timed(args, where, runs)
                median = statistics.median(times)
                verdict = (
                    f"<= {TARGET} s: {'holds' if median <= TARGET else 'MISSED'}"
                    if targeted
                    else "-"
                )
                print(f"{label:<36} {median:7.3f} {min(times):6.3f} {max(times):6.3f}  {verdict}")
        finally:
            server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
