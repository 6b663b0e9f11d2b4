"""``make bench``: run every benchmark once on this machine and write ``bench/REPORT.md`` with
its plots (``bench/plots/*.png``, matplotlib) and the 16-host flame graph (py-spy).

Each benchmark runs in a process of its own and leaves its figures as JSON; a benchmark that
fails (a peer that cannot be installed, say) makes its section say so and the rest still runs.
Every figure of issue 13 is set beside its target with "holds" or "MISSED".

    python bench/report.py [--quick]      # --quick: fewer runs and hosts, to try the report
    python bench/report.py --only history,engine   # those again, the rest from the last run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLOTS = HERE / "plots"
RESULTS = ROOT / "build" / "bench"


def run(script: str, *args: str, timeout: float = 3600) -> tuple[dict[str, Any] | None, str]:
    """Run ``bench/<script>`` with ``--json``; its figures (None if it wrote none) and its output.

    A script that failed a check of its own (``in_flight.py``: a node run twice) exits non-zero
    but still writes its figures: they are kept, so the report says which target was missed."""
    out = RESULTS / (Path(script).stem + ".json")
    out.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"-- {script} {' '.join(args)}", flush=True)
    ran = subprocess.run(
        [sys.executable, str(HERE / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    text = ran.stdout + (
        f"\n(exit {ran.returncode})\n{ran.stderr[-2000:]}" if ran.returncode else ""
    )
    print(text, f"({time.monotonic() - started:.0f} s)", flush=True)
    return (json.loads(out.read_text()) if out.exists() else None), text


def plain(script: str, *args: str) -> str:
    """A benchmark that prints its figures only (kept as printed, in the appendix)."""
    print(f"-- {script} {' '.join(args)}", flush=True)
    ran = subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, timeout=1800
    )
    text = ran.stdout + (
        f"\n(exit {ran.returncode})\n{ran.stderr[-2000:]}" if ran.returncode else ""
    )
    print(text, flush=True)
    return text


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "?",
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
    }


def history_step(quick: bool) -> tuple[str, str, list[str]]:
    """Reads over a long history (issue 25); it takes the tests' services lock itself for its
    PostgreSQL (on the tests' port)."""
    if quick:
        return "history", "history.py", ["--sizes", "1000,10000", "--pg-sizes", "1000"]
    return "history", "history.py", []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only",
        help="re-run only these steps (comma-separated: engine, prefect, fanout, ansible, "
        "inflight, history, or a plain script's name such as api_load.py) and keep the other "
        "figures of the last run (build/bench)",
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    PLOTS.mkdir(parents=True, exist_ok=True)
    repeat = "1" if args.quick else "3"
    figures: dict[str, Any] = {}
    outputs: dict[str, str] = {}
    if only is not None:  # the last run's figures, those named re-measured below
        figures = json.loads((RESULTS / "figures.json").read_text())
        outputs = json.loads((RESULTS / "outputs.json").read_text())
    figures["machine"] = machine()
    steps = [
        # Beside SQLite, a private PostgreSQL (as root; skipped, and said so, otherwise).
        ("engine", "engine_overhead.py", ["--repeat", repeat, "--postgres"]),
        ("prefect", "vs_prefect.py", ["--repeat", repeat]),
        (
            "fanout",
            "ssh_fanout.py",
            [
                "--repeat",
                repeat,
                "--profile",
                str(PLOTS),
                "--hosts",
                "1,4,16" if args.quick else "1,4,16,64",
            ],
        ),
        (
            "ansible",
            "vs_ansible.py",
            ["--repeat", repeat, "--hosts", "1,4" if args.quick else "1,4,16,64"],
        ),
        ("inflight", "in_flight.py", ["--repeat", repeat]),
    ]
    steps.append(history_step(args.quick))
    for key, script, extra in steps:
        if only is None or key in only:
            figures[key], outputs[script] = run(script, *extra)
    for script, extra in (
        ("cli_startup.py", []),
        ("daemon_latency.py", []),
        ("api_load.py", []),
        ("api_load.py", ["--workers", "2"]),
    ):
        if only is None or script in only:
            outputs[" ".join([script, *extra])] = plain(script, *extra)
    (RESULTS / "figures.json").write_text(json.dumps(figures, indent=1))
    (RESULTS / "outputs.json").write_text(json.dumps(outputs, indent=1))
    from bench.report_writer import write  # matplotlib is imported only once figures exist

    write(figures, outputs, HERE / "REPORT.md", PLOTS)
    print(f"wrote {HERE / 'REPORT.md'} and {PLOTS}/")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
