"""A finished task in a few lines, as Ansible's PLAY RECAP puts a play: per host chain its
steps ok / failed / skipped and how long it took, then what failed and how to read its log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from engine.clock import seconds_between

if TYPE_CHECKING:
    from engine import Subtask, Task

    from .backend import Backend


def recap(source: Backend, task: Task) -> tuple[Table, list[str]]:
    """The per-host table and, for each failed subtask, a line with its error and the command
    that shows its log (with the ``--db`` or ``--server`` it was read from)."""
    chains: dict[int, list[Subtask]] = {}
    for sub in task.subtasks:
        chains.setdefault(sub.parallel_idx, []).append(sub)
    labels = source.host_labels(task)
    table = Table("host", "ok", "failed", "skipped", "took", title=f"task {task.id} recap")
    for _, subs in sorted(chains.items()):
        skipped = sum("SKIP" in s.operation.value for s in subs)
        ok = sum(s.status.value == "SUCCESSFUL" for s in subs) - skipped
        failed = sum(s.status.value == "FAILED" for s in subs)
        table.add_row(
            labels.get(subs[0].id, "(task)"), str(ok), str(failed), str(skipped), _span(subs)
        )
    notes = []
    where = f" {source.where}" if source.where else ""
    for sub in task.subtasks:
        if sub.status.value == "FAILED":
            error = _last_error(source.log(task.id, sub.id))
            notes.append(
                f"{sub.name} (#{sub.id}, {labels.get(sub.id, '(task)')}) failed: {error}"
                f"\n  see: ocptask task log {task.id} {sub.id}{where}"
            )
    return table, notes


def _span(subs: list[Subtask]) -> str:
    starts = [s.start_time for s in subs if s.start_time]
    ends = [s.finish_time for s in subs if s.finish_time]
    if not starts or not ends:
        return ""
    seconds = seconds_between(min(starts), max(ends))
    return f"{seconds:.1f} s"


def _last_error(log: str) -> str:
    """The log's last ERROR line without its time stamp (the exception's message)."""
    for line in reversed(log.splitlines()):
        if " ERROR " in line:
            return line.split(" ERROR ", 1)[1].strip()
    return "see its log"
