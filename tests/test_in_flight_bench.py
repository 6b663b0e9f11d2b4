"""bench/in_flight.py: its checks find a node run twice or lost, and the script runs end to end
(toy size, 1 and 2 daemons on the tests' PostgreSQL) with every node run exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.in_flight import check, create_like, percentile, summary
from engine.db.subtask_log import header, line

ROOT = Path(__file__).parent.parent


def sub(sid: int, status: str = "SUCCESSFUL", run_time: int = 1) -> dict[str, Any]:
    return {"id": sid, "status": status, "run_time": run_time}


def test_check_finds_double_runs_lost_nodes_and_runs_not_on_record() -> None:
    once = header("EXECUTE") + line("INFO", "done")
    subtasks = [
        sub(1),  # ran once
        sub(2),  # two claims: two headers (in two chunks, as two runs write them)
        sub(3, run_time=2),  # re-run after a lost run that left no header
        sub(4, status="FAILED"),  # lost
        sub(5, status="RUNNING"),  # lost, still held
        sub(6),  # SUCCESSFUL without any run on record
        sub(7),  # one header, with lines that only look like one
    ]
    logs = [
        (1, once),
        (2, once),
        (2, header("RETRY")),
        (3, once),
        (4, once),
        (5, header("EXECUTE")),
        (7, once + line("INFO", "############{EXECUTE}{x}############")),
    ]
    found = check(subtasks, logs)
    assert found.double_runs == [2, 3]
    assert found.lost == [4, 5]
    assert found.unrecorded == [6]
    assert found.counts() == {"double_runs": 2, "lost": 2, "unrecorded": 1}
    assert check([sub(1), sub(7)], logs).counts() == {"double_runs": 0, "lost": 0, "unrecorded": 0}


def test_summary_adds_up_every_run_failures() -> None:
    def run(daemons: int, nodes_per_s: float, double: int) -> dict[str, Any]:
        locks = {"wait_s": 1.0, "samples": 10, "waiting_samples": 5, "max_waiting": 2}
        return {"daemons": daemons, "nodes_per_s": nodes_per_s, "claim_p50_ms": 1.0,
                "claim_p99_ms": 2.0, "daemon_cpu_ms_per_node": 1.0, "machine_busy_cores": 1.0,
                "locks": {**locks, "deadlocks": 0}, "double_runs": double,
                "lost": 0, "unrecorded": 0, "finished": True, "daemons_died": 0}  # fmt: skip

    one, three = summary([run(1, 100, 0), run(3, 90, 0), run(1, 300, 0), run(3, 95, 1)])
    assert (one["daemons"], one["nodes_per_s"], one["double_runs"]) == (1, 200, 0)
    assert (three["daemons"], three["nodes_per_s"], three["double_runs"]) == (3, 92.5, 1)


def test_shape_and_percentile() -> None:
    template = create_like(8, 3)
    assert len(template.nodes) == 26
    finish = template.nodes[-1]
    assert (finish.name, len(finish.upstreams)) == ("Finish", 8)
    assert percentile(list(range(1, 201)), 0.99) == 198
    assert percentile([5.0], 0.5) == 5.0


@pytest.mark.timeout(300)
def test_the_bench_runs_at_toy_size(postgres_server: str, tmp_path: Path) -> None:
    out = tmp_path / "in_flight.json"
    ran = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "in_flight.py"), "--tasks", "4", "--daemons",
         "1,2", "--db", postgres_server, "--json", str(out)],
        capture_output=True, text=True, timeout=280, cwd=ROOT,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    figures = json.loads(out.read_text())
    assert [r["daemons"] for r in figures["runs"]] == [1, 2]
    for r in figures["runs"]:
        assert r["finished"]
        assert r["nodes"] == 4 * 26
        assert sum(r["per_executor"].values()) == 4 * 26
        assert (r["double_runs"], r["lost"], r["unrecorded"]) == (0, 0, 0)
        assert r["locks"]["samples"] > 0
        assert r["daemons_died"] == 0
        assert r["daemon_cpu_ms_per_node"] > 0  # the daemons were the ones measured
    assert figures["ratio"] is not None
    assert "double runs 0, lost nodes 0, unrecorded runs 0, daemons died 0: ok" in ran.stdout
