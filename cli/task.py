"""``ocptask task``: read and operate on tasks. Reads print compact tables; ``--json`` prints
OCP's records exactly (what the HTTP API returns as TaskInstance)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.clock import seconds_between, utcnow

from .backend import Backend, TaskReads, on_backend
from .common import (
    EXIT_FAILED,
    EXIT_REFUSED,
    DbOption,
    TaskListing,
    acting_on,
    console,
    fail,
    moment,
)
from .follow import finish, print_recap

if TYPE_CHECKING:
    from engine import PurgeReport

task_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Inspect and operate on tasks."
)
JsonOption = Annotated[bool, typer.Option("--json", help="OCP's records, as JSON.")]


@task_app.command("list")
@on_backend(reads=True)
def task_list(
    source: TaskReads,
    status: Annotated[str | None, typer.Option(help="RUNNING, FAILED or SUCCESSFUL.")] = None,
    name: Annotated[str | None, typer.Option(help="Part of the task's name.")] = None,
    type: Annotated[str | None, typer.Option("--type", help="MANUAL, SCHEDULED, ...")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            # parsed (and refused) before the command opens its database
            parser=lambda text: _since(text) if text.strip() else None,
            metavar="WHEN",
            help="Created since: 30m, 2h, 1d, or an ISO time.",
        ),
    ] = None,
    host_id: Annotated[int | None, typer.Option(min=1, help="Tasks on this host.")] = None,
    cluster_id: Annotated[
        int | None, typer.Option(min=1, help="Tasks about this OceanBase cluster.")
    ] = None,
    cluster_name: Annotated[
        str | None, typer.Option(help="Part of an OceanBase cluster's name.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=2000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest tasks, one line each (``--json``: OCP's BasicTaskInstance, as the API lists)."""
    from rich.table import Table

    statuses = status.split(",") if status else []
    about = {"host_id": host_id, "cluster_id": cluster_id, "cluster_name": cluster_name}
    tasks = source.tasks(TaskListing(statuses, name, type, since, limit, **about))
    if as_json:
        typer.echo(json.dumps(tasks, indent=2))
        return
    table = Table("id", "name", "status", "operation", "creator", "created", "took", "done")
    for task in tasks:
        done = sum(s["status"] == "SUCCESSFUL" for s in task["subtasks"])
        start, end = _time(task["startTime"]), _time(task["finishTime"])
        table.add_row(
            str(task["id"]),
            task["name"],
            task["status"],
            task["operation"],
            task["creator"]["name"],
            _when(_time(task["createTime"])),
            _took(start, end),
            f"{done}/{len(task['subtasks'])}",
        )
    console.print(table)


@task_app.command("show")
@on_backend(reads=True)
def task_show(
    source: TaskReads,
    task_id: int,
    as_json: JsonOption = False,
) -> None:
    """A task: its header and one line per subtask (``--json``: OCP's record)."""
    from rich.table import Table

    task = source.get(task_id)
    hosts = source.host_labels(task)
    if as_json:
        typer.echo(json.dumps(task.to_ocp(), indent=2))
        return
    console.print(
        f"task {task.id} [bold]{task.name}[/bold]: {task.status.value} "
        f"({task.operation.value}), by {task.creator}, created {_when(task.create_time)}, "
        f"took {_took(task.start_time, task.finish_time)}",
        highlight=False,
    )
    table = Table("id", "name", "host", "status", "runTime", "start", "took")
    for sub in task.subtasks:
        table.add_row(
            str(sub.id),
            sub.name,
            hosts.get(sub.id, ""),
            sub.status.value,
            str(sub.run_time),
            _when(sub.start_time),
            _took(sub.start_time, sub.finish_time),
        )
    console.print(table)


@task_app.command("log")
@on_backend()
def task_log(
    source: Backend,
    task_id: int,
    subtask_id: int,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing while the subtask runs.")
    ] = False,
) -> None:
    """A subtask's log (``-f`` follows it until the subtask stops running)."""
    text = source.log(task_id, subtask_id)  # TaskNotFound (exit 3) for an unknown one
    printed = 0
    while True:
        # The status first: what was logged before it changed is in the read that follows.
        running = source.get(task_id).subtask(subtask_id).status.value in (
            "READY",
            "RUNNING",
            "CANCELING",
        )
        text = source.log(task_id, subtask_id)
        typer.echo(text[printed:], nl=False)
        printed = len(text)
        if not follow or not running:
            break
        time.sleep(0.5)


@task_app.command("watch")
@on_backend()
def task_watch(
    source: Backend,
    task_id: int,
) -> None:
    """Follow a task until nothing of it runs: live on a terminal (a row per host chain),
    one line per change otherwise; then its recap. Exit 1 if it ended FAILED."""
    from .watch import watch

    final = watch(source, task_id, console)
    print_recap(source, final)
    if final.status.value == "FAILED":
        raise typer.Exit(EXIT_FAILED)


@task_app.command("graph")
@on_backend()
def task_graph(
    source: Backend,
    task_id: int,
    format: Annotated[
        str, typer.Option("--format", "-f", help="mermaid, dot, svg or png.")
    ] = "mermaid",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (png needs one).")
    ] = None,
) -> None:
    """A picture of the task's DAG: nodes named and coloured by status, host chains in columns."""
    from engine import render_dag

    picture = render_dag(source.get(task_id), format)
    if output is not None:
        try:
            output.write_bytes(picture)
        except OSError as exc:
            fail(EXIT_REFUSED, f"cannot write {output}: {exc.strerror or exc}")
        console.print(f"task {task_id} as {format}: {output}")
    elif format == "png":
        fail(EXIT_REFUSED, "--format png needs --output FILE")
    else:
        typer.echo(picture.decode(), nl=False)


@task_app.command("run")
@on_backend()
def task_run(
    source: Backend,
    task_id: int,
) -> None:
    """Drive a task until nothing can progress (through a server: follow it while the server
    drives it)."""
    finish(source, source.get(task_id), wait=True)


@task_app.command("retry")
@on_backend()
def task_retry(
    source: Backend,
    task_id: int,
    run: bool = True,
) -> None:
    """Retry every failed subtask of a failed task."""
    finish(source, source.retry(task_id), run)


@task_app.command("rollback")
@on_backend()
def task_rollback(
    source: Backend,
    task_id: int,
    run: bool = True,
) -> None:
    """Undo a failed task in reverse order."""
    finish(source, source.rollback(task_id), run)


@task_app.command("purge")
def task_purge(
    finished_before: Annotated[
        str,
        typer.Option(
            "--finished-before",
            metavar="AGE|DATE",
            help="Tasks that finished before this: an age (90d, 12h) or an ISO date/time (UTC "
            "unless it says otherwise).",
        ),
    ],
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="SUCCESSFUL or FAILED (repeat it; default: both)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Remove old finished tasks with their subtasks and logs (audit events stay). Never a
    running task, one holding a cluster or host, one a record points at, nor the last task
    about a host or cluster that still exists. On a database only (--db): OCP's API has no call
    for it, so it is an administrator's command, not a server's."""
    if not db and not os.environ.get("OCPTASK_DB") and os.environ.get("OCPTASK_SERVER"):
        fail(EXIT_REFUSED, "task purge works on a database: give --db (OCP's API has no purge)")
    cutoff = _finished_before(finished_before)
    statuses = [v.strip().upper() for text in status or () for v in text.split(",") if v.strip()]
    from engine.errors import RequestInvalid
    from engine.retention import checked

    try:
        checked(cutoff, statuses)
    except RequestInvalid as exc:
        option = {"finishedBefore": f"--finished-before {finished_before}", "status": "--status"}
        fail(EXIT_REFUSED, "; ".join(f"{option[e.field]}: {e.message}" for e in exc.errors))
    with acting_on(db) as engine:
        report = engine.purge(cutoff, statuses or None, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_purge(report)


def _finished_before(text: str) -> datetime:
    return moment(text, "--finished-before", "an age (90d, 12h) or an ISO date")


def _print_purge(report: PurgeReport) -> None:
    from engine.text import byte_size

    verb = "would remove" if report.dry_run else "removed"
    console.print(
        f"{verb} {report.tasks} tasks ({report.subtasks} subtasks, {report.log_rows} log rows) "
        f"{' or '.join(report.statuses)}, finished before {_when(report.finished_before)} UTC",
        highlight=False,
    )
    if report.first_ids:
        more = report.tasks - len(report.first_ids)
        ids = ", ".join(map(str, report.first_ids)) + (f" and {more} more" if more else "")
        console.print(f"  tasks {ids}", highlight=False)
    for why, count in sorted(report.kept.items()):
        console.print(f"  kept {count}: {why}", highlight=False)
    if report.size_before is not None and report.size_after is not None:
        console.print(
            f"  database {byte_size(report.size_before)} before, "
            f"{byte_size(report.size_after)} after",
            highlight=False,
        )
    if report.dry_run:
        console.print("nothing removed (--dry-run)", highlight=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = seconds_between(start, end or utcnow())
    running = "" if end else "+"
    if seconds < 60:
        return f"{seconds:.1f} s{running}"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s{running}"


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _since(text: str) -> datetime:
    return moment(text, "--since", "30m, 2h, 1d or an ISO time")
