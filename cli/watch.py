"""Watching a task run: on a terminal, a live table with a row per host chain (its current
step, a mark per step, elapsed time, the last log line of a running step) under a progress
bar; anywhere else, one plain line per change of a subtask's status. Either way it ends when
nothing of the task runs any more, and the caller prints the recap (``recap``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.clock import seconds_between, utcnow

from .common import ACTIVE, settled

if TYPE_CHECKING:
    from engine import Subtask, Task

    from .backend import Backend

MARKS = {
    "PENDING": ("·", "dim"),
    "READY": ("○", "yellow"),
    "RUNNING": ("▶", "bold cyan"),
    "CANCELING": ("▶", "bold magenta"),
    "SUCCESSFUL": ("✓", "green"),
    "FAILED": ("✗", "bold red"),
}


def watch(source: Backend, task_id: int, console: Console, *, poll: float = 0.3) -> Task:
    """Follow the task until nothing of it is READY or RUNNING; its last record."""
    if console.is_terminal:
        return _live(source, task_id, console, poll)
    return _lines(source, task_id, console.print, poll)


def _lines(source: Backend, task_id: int, say: Callable[..., None], poll: float) -> Task:
    seen: dict[int, str] = {}
    labels = source.host_labels(source.get(task_id))  # a task's hosts never change
    while True:
        task = source.get(task_id)
        for sub in task.subtasks:
            if seen.get(sub.id) != sub.status.value and sub.status.value != "PENDING":
                seen[sub.id] = sub.status.value
                stamp = (sub.finish_time or sub.start_time or utcnow()).strftime("%H:%M:%S")
                where = labels.get(sub.id, "(task)")
                say(
                    f"{stamp} {sub.status.value:<10} #{sub.id} {sub.name} [{where}]",
                    highlight=False,
                    markup=False,
                )
        if settled(task):
            say(f"task {task.id} {task.name}: {task.status.value}", highlight=False, markup=False)
            return task
        time.sleep(poll)


def _live(source: Backend, task_id: int, console: Console, poll: float) -> Task:
    labels = source.host_labels(source.get(task_id))
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            task = source.get(task_id)
            live.update(_screen(source, task, labels))
            if settled(task):
                return task
            time.sleep(poll)


def _screen(source: Backend, task: Task, labels: dict[int, str]) -> Group:
    done = sum(s.status.value in ("SUCCESSFUL", "FAILED") for s in task.subtasks)
    total = len(task.subtasks) or 1
    width = 30
    filled = round(width * done / total)
    bar = Text.assemble(
        (f"task {task.id} {task.name} ", "bold"),
        (task.status.value + " ", "cyan"),
        ("█" * filled, "green"),
        ("░" * (width - filled), "dim"),
        f" {done}/{total} {_since(task.start_time)}",
    )
    chains: dict[int, list[Subtask]] = {}
    for sub in task.subtasks:
        chains.setdefault(sub.parallel_idx, []).append(sub)
    rows = [
        _row(source, subs, labels.get(subs[0].id, "(task)"))
        for idx, subs in sorted(chains.items())
        if idx >= 0
    ]
    # One line per host chain, whatever the width: every column but the log line keeps its
    # width, and the log line is cut to what is left.
    table = Table(box=None, pad_edge=False)
    for i, name in enumerate(("host", "step", "", "took")):
        widest = max([len(str(r[i])) for r in rows] + [len(name)])
        table.add_column(name, no_wrap=True, min_width=widest)
    table.add_column("last log line", no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    ends = chains.get(-1, [])
    head = [_plain(source, s) for s in ends[:1]]
    foot = [_plain(source, s) for s in ends[1:]]
    middle = [table] if table.row_count else []
    return Group(bar, *head, *middle, *foot)


def _row(source: Backend, subs: list[Subtask], where: str) -> tuple[str | Text, ...]:
    current = next((s for s in subs if s.status.value in (*ACTIVE, "FAILED")), None)
    current = current or next((s for s in subs if s.status.value == "PENDING"), subs[-1])
    marks = Text()
    for sub in subs:
        mark, style = MARKS.get(sub.status.value, ("?", ""))
        marks.append(mark, style)
    starts = [s.start_time for s in subs if s.start_time]
    line = ""
    if current.status.value in ACTIVE or current.status.value == "FAILED":
        line = _last_line(source.log(current.task_id, current.id))
    step = Text(f"{current.name} {current.status.value}")
    step.stylize(MARKS.get(current.status.value, ("", ""))[1])
    return where, step, marks, _since(min(starts) if starts else None), line


def _plain(source: Backend, sub: Subtask) -> Text:
    mark, style = MARKS.get(sub.status.value, ("?", ""))
    return Text.assemble((f"{mark} ", style), f"{sub.name} {sub.status.value}")


def _since(start: datetime | None) -> str:
    if start is None:
        return ""
    return f"{seconds_between(start, utcnow()):.1f} s"


def _last_line(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("#")]
    text = lines[-1] if lines else ""
    return text[30:110] if len(text) > 30 else text  # without the time stamp
