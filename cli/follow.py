"""Following a task to its end: on a terminal watched live, then its recap; elsewhere (a pipe, a
script) its final record as JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from .common import EXIT_FAILED, console

if TYPE_CHECKING:
    from engine import Task

    from .backend import Backend


def print_task(task: Task) -> None:
    console.print_json(json.dumps(task.to_ocp()))


def finish(source: Backend, task: Task, wait: bool) -> None:
    """Run the task to its end when ``wait`` (a server runs its own: then follow it): on a
    terminal watched live, then its recap; elsewhere (a pipe, a script) its final record as
    JSON. Exit 1 if it ended FAILED."""
    if wait and console.is_terminal:
        from .watch import watch

        source.start(task.id)
        watch(source, task.id, console)
        final = source.wait(task.id)
        print_recap(source, final)
    else:
        final = source.run(task.id) if wait else task
        print_task(final)
    if final.status.value == "FAILED":
        raise typer.Exit(EXIT_FAILED)


def print_recap(source: Backend, task: Task) -> None:
    from .recap import recap

    table, notes = recap(source, task)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, markup=False)


def finish_all(source: Backend, tasks: list[Task], wait: bool) -> None:
    """``finish`` for the tasks of one per-host call (batchAdd, takeOver: a task per host), which
    run side by side: all are started, then each is waited for; on a terminal each one's recap,
    elsewhere their final records as one JSON list. Exit 1 if any ended FAILED."""
    if len(tasks) == 1:
        finish(source, tasks[0], wait)
        return
    if wait:
        for task in tasks:
            source.start(task.id)
        tasks = [source.wait(task.id) for task in tasks]
    if wait and console.is_terminal:
        for task in tasks:
            print_recap(source, task)
    else:
        console.print_json(json.dumps([task.to_ocp() for task in tasks]))
    if any(task.status.value == "FAILED" for task in tasks):
        raise typer.Exit(EXIT_FAILED)
