"""REPORT.md's part of ``bench/history.py``: its targets and its table (issue 25)."""

from __future__ import annotations

from typing import Any

READ_MS, GROWTH, CLI_S = 20.0, 1.5, 0.4
NAMES = ["reads at 100,000 tasks (SQLite), each < 20 ms and ≤ 1.5x of 1,000",
         "ocptask task list at 100,000 tasks (SQLite), whole process < 0.4 s"]  # fmt: skip
"""Its targets, as REPORT.md names them (said not measured when the benchmark did not run)."""


def _ends(history: dict[str, Any], backend: str) -> tuple[str, str] | None:
    columns = [c for c in history if c.startswith(backend)]
    return (columns[0], columns[-1]) if len(columns) > 1 else None


def history_targets(history: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None, str]]:
    """(figure, measured, target, holds, meaning) rows for the Targets table."""
    ends = _ends(history or {}, "SQLite")
    if history is None or ends is None:
        why = "the benchmark did not run: its output is at the end"
        return [(name, "-", "", None, why) for name in NAMES]
    small, big = history[ends[0]], history[ends[1]]
    reads = [r for r in big if r != "database MB" and not r.startswith("cli")]
    worst_ms = max(big[r] for r in reads)
    worst_growth = max(big[r] / small[r] for r in reads)
    slowest = max(reads, key=lambda r: big[r] / small[r])
    cli = next(r for r in big if r.startswith("cli"))
    return [
        (
            f"reads at {ends[1].split()[-1]} tasks (SQLite), each < 20 ms and ≤ 1.5x of "
            f"{ends[0].split()[-1]}",
            f"worst {worst_ms:.1f} ms, {worst_growth:.2f}x ({slowest})",
            "< 20 ms, ≤ 1.5x",
            worst_ms < READ_MS and worst_growth <= GROWTH,
            "no read walks the history it does not show: filters, counts and the last page "
            "through indexes",
        ),
        (
            f"ocptask task list at {ends[1].split()[-1]} tasks (SQLite), whole process",
            f"{big[cli]:.3f} s",
            "< 0.4 s",
            big[cli] < CLI_S,
            "a command that reads a page and exits, started and answered",
        ),
    ]


def history_section(history: dict[str, Any] | None) -> list[str]:
    """The section's lines: every read at every size, and the growth of each backend."""
    lines = ["## Reads over a long history", ""]
    if not history:
        return [*lines, "The benchmark did not run: see its output below.", ""]
    columns = list(history)
    reads = list(history[columns[0]])
    header = ["read (median of 7, ms)", *columns]
    growth = [b for b in ("SQLite", "PostgreSQL") if _ends(history, b)]
    header += [f"growth {b}" for b in growth]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for read in reads:
        cells = [f"{history[c][read]:.3g}" for c in columns]
        for backend in growth:
            small, big = _ends(history, backend)  # type: ignore[misc]
            cells.append(f"{history[big][read] / history[small][read]:.2f}x")
        lines.append(f"| {read} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`bench/history.py`: a real `ocptask serve --no-run` over a database of a realistic mix "
        "(installs, batchAdds, a take-over, restarts, Prepare host; run once through the engine, "
        "then multiplied with SQL). `name=` matches most tasks; `clusterId=` and `hostId=` "
        "some (30% and 10%) and none; the CLI row is `ocptask task list --db` as a whole "
        "process, in seconds. A count is over index entries (it grows with what matches); a "
        "page in the middle of a long list steps over its offset in an index.",
        "",
    ]
    return lines
