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


def finish_all(source: Backend, tasks: list[Task], wait: bool) -> None:
    """``finish`` for the tasks of one per-host call (takeOver), run side by side: with
    ``wait`` each to its end, then on a terminal a recap of each, elsewhere their final records
    as a JSON array. Exit 1 if one ended FAILED."""
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


def print_recap(source: Backend, task: Task) -> None:
    from .recap import recap

    table, notes = recap(source, task)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, markup=False)
