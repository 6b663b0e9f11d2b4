"""Where the controller's CPU goes during a create, from py-spy's collapsed stacks (``-f raw``).

Each sample is given to one cost centre by what its stack was doing: the engine's own work
(recording a step's end, submitting, the watchdog, paramiko's thread), else inside a step what
the step was using (SSH, PyMySQL, HTTP, the database). Samples inside imports and samples with
no Python frame (py-spy saw the GIL held but no stack) are counted apart.

    python bench/profile_summary.py STACKS.raw
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# What a sample was for: first the engine's own work (by the frames anywhere in its stack),
# then, inside a step, what the step was doing. (centre, substrings of a frame), in order.
ENGINE: list[tuple[str, tuple[str, ...]]] = [
    ("paramiko's transport thread: packets, crypto", ("Transport.run (paramiko",)),
    ("runner: recording ends, claiming (compiled)", ("Runner._record_end", "Runner.claim (")),
    ("submit: the task's records", ("Engine.submit",)),
    ("watchdog: leases, log flushes", ("Watchdog",)),
]
IN_STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("steps: SSH connect (handshake, auth, host key)", ("SshConnection._connect",)),
    ("steps: SFTP upload", ("SshConnection.put",)),
    ("steps: SSH commands (channels, output)", ("SshConnection.run",)),
    ("steps: SQL to obproxy (PyMySQL)", ("pymysql/",)),
    ("steps: HTTP GET /metrics", ("metrics_url",)),
    ("steps: database (their rows, host lookups)", ("sqlalchemy/", "sqlmodel/", "RowRead")),
    ("steps: their own Python", ("run_step",)),
]


def centre(frames: list[str]) -> str:
    stack = ";".join(frames)
    for name, keys in ENGINE + (IN_STEPS if "run_step" in stack else []):
        if any(k in stack for k in keys):
            return name
    return "runner: threads, slots, hand-offs" if "engine/" in stack else "other"


def summarize(raw: Path) -> dict[str, object]:
    centres: Counter[str] = Counter()
    total = imports = blank = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames:
            blank += n
            continue
        if any("_find_and_load" in f for f in frames):
            imports += n
            continue
        centres[centre(frames)] += n
    counted = sum(centres.values()) or 1
    return {
        "samples": total,
        "imports": imports / total if total else 0.0,
        "no_frame": blank / total if total else 0.0,
        "centres": [(c, n / counted) for c, n in centres.most_common()],
    }


if __name__ == "__main__":
    found = summarize(Path(sys.argv[1]))
    print(f"{found['samples']} samples; imports {found['imports']:.0%}, no Python frame "
          f"{found['no_frame']:.0%} (set apart); the rest by cost centre:")  # fmt: skip
    for centre, share in found["centres"]:  # type: ignore[attr-defined]
        print(f"  {share:6.1%}  {centre}")
