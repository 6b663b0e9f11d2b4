"""What every ``ocptask`` command shares: the console, the ``--db`` option, one Engine per
command whose refusals become one-line messages (exit code 2), and secrets read safely."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from engine import Engine, OcpTaskError, Task

console = Console()
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $OCPTASK_DB).")
]
ParallelismOption = Annotated[int, typer.Option(help="Subtasks run at once.", min=1)]
NameOption = Annotated[str | None, typer.Option(help="Executor identity (default <ip>:<pid>).")]
GraceOption = Annotated[float, typer.Option(help="Seconds running steps get on SIGTERM.", min=0)]


def log_to_stderr() -> None:
    """Long-running commands log to stderr (the scheduler's routine chatter left out)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@contextmanager
def open_engine(db: str | None) -> Iterator[Engine]:
    """An Engine for one command; a refusal becomes a one-line message and exit code 2."""
    # Their tables, and their steps by their OCP class names:
    import tasks.hosts
    import tasks.obproxy  # noqa: F401

    with Engine(db) as engine:
        try:
            yield engine
        except OcpTaskError as exc:
            code = f" (code {exc.code})" if exc.code else ""
            console.print(f"[red]error{code}:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None


def read_secret(what: str, password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(what, hide_input=True, confirmation_prompt=True)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def print_task(task: Task) -> None:
    console.print_json(json.dumps(task.to_ocp()))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] cannot read {path}: {exc}", highlight=False)
        raise typer.Exit(2) from None
