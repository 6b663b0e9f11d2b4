"""What every ``ocptask`` command shares: the console, the ``--db`` option, one Engine per
command whose errors become one line on stderr and an exit code, request files and secrets
read safely, and what "a task has settled" means (the server options are ``backend``'s).

Exit codes: 0 done, 1 the task ended FAILED (or an unexpected error), 2 refused input or an
operation illegal now, 3 not found, 4 the database or server cannot be reached or used (a
refused password among them). ``--debug`` (before the command) shows the traceback of an
unexpected error instead of its one line.

Modules load when a command needs them: ``--help`` and a read through a server never import
SQLAlchemy, paramiko or the scheduler.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from engine.clock import utcnow
from engine.errors import NotFound, OcpTaskError
from engine.public_url import VARIABLE as PUBLIC_URL_VARIABLE
from engine.public_url import checked_public_url

if TYPE_CHECKING:
    from engine import Engine, Task

# On a terminal, its width; piped, wide enough that a table's rows stay whole lines.
console = Console(width=None if sys.stdout.isatty() else 200)
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $OCPTASK_DB).")
]
ParallelismOption = Annotated[int, typer.Option(help="Subtasks run at once.", min=1)]
NameOption = Annotated[str | None, typer.Option(help="Executor identity (default <ip>:<pid>).")]
GraceOption = Annotated[float, typer.Option(help="Seconds running steps get on SIGTERM.", min=0)]


def _public_url(value: str | None) -> str | None:
    try:
        return checked_public_url(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


PublicUrlOption = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        envvar=PUBLIC_URL_VARIABLE,
        callback=_public_url,
        help="The URL at which the hosts reach this ocptask serve (e.g. http://10.0.0.5:8080): "
        "CONFIG_URL OBProxies fetch their OceanBase clusters from it.",
    ),
]


_AGE = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


_OLDEST = timedelta(days=36_600)
"""The longest age an option takes (100 years): anything longer reaches before any task, and
past year 1 it could not even be a date."""


def age(text: str) -> timedelta | None:
    """``90d``, ``12h``, ``30m``, ``45s`` as a duration; None for anything else, or longer than
    100 years."""
    found = _AGE.match(text.strip())
    if found is None:
        return None
    ago = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    return ago if ago <= _OLDEST else None


def moment(text: str, option: str, hint: str) -> datetime:
    """An age ago (``age``), or an ISO date/time (UTC unless it says otherwise); exit 2 naming
    ``option`` and saying what it takes (``hint``) for anything else."""
    ago = age(text)
    if ago is not None:
        return utcnow() - ago
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(EXIT_REFUSED, f"{option} {text!r}: give {hint} (ages up to 100 years)")
    return when if when.tzinfo else when.replace(tzinfo=UTC)


PurgeAfterOption = Annotated[
    str | None,
    typer.Option(
        "--purge-finished-after",
        envvar="OCPTASK_PURGE_FINISHED_AFTER",
        metavar="AGE",
        help="Purge, on a schedule, the finished tasks older than this (e.g. 90d), as "
        "'ocptask task purge' does: never a running or held one, nor the last record of a host "
        "or cluster that exists. Unset: nothing is purged.",
    ),
]
PurgeEveryOption = Annotated[
    float,
    typer.Option(
        "--purge-every",
        envvar="OCPTASK_PURGE_EVERY",
        help="Seconds between scheduled purges (with --purge-finished-after).",
        min=0.1,
    ),
]


def purge_after(value: str | None) -> timedelta | None:
    """``--purge-finished-after`` as a duration (None: no scheduled purge); exit 2 naming the
    option for anything that is not an age."""
    if value is None or not value.strip():
        return None
    found = age(value)
    if found is None or found <= timedelta(0):
        fail(EXIT_REFUSED, f"--purge-finished-after {value!r}: give an age such as 90d, 12h or 30m")
    return found


def log_to_stderr() -> None:
    """Long-running commands log to stderr (the scheduler's routine chatter left out)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


EXIT_FAILED, EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 1, 2, 3, 4
errors = Console(stderr=True, soft_wrap=True, highlight=False)  # one line per error, unwrapped
DEBUG = {"on": False}


def fail(code: int, message: str) -> NoReturn:
    """One line on stderr naming what was wrong, then the exit code."""
    errors.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def refusal(exc: OcpTaskError) -> NoReturn:
    code = f" (code {exc.code})" if exc.code else ""
    fail(EXIT_NOT_FOUND if isinstance(exc, NotFound) else EXIT_REFUSED, f"{exc}{code}")


@contextmanager
def open_engine(db: str | None) -> Iterator[Engine]:
    """An Engine for one command: a refusal, a missing record, a database that cannot be used
    and anything unexpected each end the command with one line and its exit code."""
    from sqlalchemy.exc import SQLAlchemyError

    from engine import Engine
    from engine.packages import TaskPackageError

    where = db or os.environ.get("OCPTASK_DB") or "the default database"
    public_url = os.environ.get(PUBLIC_URL_VARIABLE)
    try:
        _public_url(public_url)
    except typer.BadParameter as exc:
        fail(EXIT_REFUSED, f"${PUBLIC_URL_VARIABLE}: {exc}")
    try:
        engine = Engine(db, public_url=public_url)
        engine.store.ensure_schema()
    except (SQLAlchemyError, OSError, ValueError, TaskPackageError) as exc:
        fail(EXIT_UNREACHABLE, f"cannot open {where}: {_reason(exc)}")
    with engine:
        try:
            with reported():
                yield engine
        except SQLAlchemyError as exc:
            fail(EXIT_UNREACHABLE, f"database {where}: {_reason(exc)}")


CREATOR = "admin"
"""Who a ``--db`` command acts as: the creator of its tasks, the operator of its audit events."""


@contextmanager
def acting_on(db: str | None) -> Iterator[Engine]:
    """``open_engine``, for a command that changes a registry (users, OceanBase clusters): its
    changes recorded as every ``--db`` command's are, ``CREATOR``'s."""
    from api.auth.users import Users
    from engine.audit import acting_as

    with open_engine(db) as engine, acting_as(CREATOR, Users(engine.store).ids().get(CREATOR)):
        yield engine


def read_secret_from(variable: str, what: str, option: str) -> str:
    """From the environment, else asked on a terminal; never an option (it would show in ps)."""
    found = os.environ.get(variable)
    if found is not None:
        return found
    if not sys.stdin.isatty():
        fail(EXIT_REFUSED, f"{option} needs ${variable} (or a terminal to ask on)")
    return str(typer.prompt(what, hide_input=True))


@contextmanager
def reported() -> Iterator[None]:
    """A refusal is exit 2 (3 if something is not found); anything unexpected is one line and
    exit 1, or its traceback under ``--debug``."""
    try:
        yield
    except OcpTaskError as exc:
        if type(exc).__module__ == "cli.client":  # the server's state, for open_backend
            raise
        refusal(exc)
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if DEBUG["on"] or is_database_error(exc):
            raise
        fail(EXIT_FAILED, f"unexpected {type(exc).__name__}: {exc} (--debug shows where)")


def is_database_error(exc: Exception) -> bool:
    """SQLAlchemy's or sqlite3's, for the caller to name the database (without importing
    SQLAlchemy)."""
    return type(exc).__module__.startswith(("sqlalchemy", "sqlite3"))


def _reason(exc: BaseException) -> str:
    """The cause in one line: the driver's own words, without SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return text


def read_secret(what: str, password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(what, hide_input=True, confirmation_prompt=True)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def json_file(path: str) -> Any:
    """A file argument read as JSON while the command line is parsed: a bad file is refused
    before the command opens its database or asks for a password."""
    return read_json(Path(path))


def read_json(path: Path) -> Any:
    """A request file's JSON; exit 2 naming the file and what is wrong with it."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        fail(EXIT_REFUSED, f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        fail(EXIT_REFUSED, f"{path} is not UTF-8 text (byte {exc.start})")
    except RecursionError:
        fail(EXIT_REFUSED, f"{path}: JSON nested too deeply")
    except ValueError as exc:
        fail(EXIT_REFUSED, f"{path} is not JSON: {exc}")


ACTIVE = ("READY", "RUNNING", "CANCELING")


def settled(task: Task) -> bool:
    """Nothing of the task runs or is about to: what a watch or a remote wait waits for."""
    return task.status.value != "RUNNING" or not any(
        s.status.value in ACTIVE for s in task.subtasks
    )


@dataclass(frozen=True)
class TaskListing:
    """What ``task list`` asks a backend for: newest first, at most ``limit``."""

    statuses: list[str]
    name: str | None
    task_type: str | None
    after: datetime | None
    limit: int
    host_id: int | None = None
    cluster_id: int | None = None
    cluster_name: str | None = None

    def page_arguments(self) -> dict[str, Any]:
        """As ``page`` (an Engine's, the SQLite reader's) takes them."""
        return {
            "statuses": self.statuses,
            "name": self.name,
            "task_type": self.task_type,
            "after": self.after,
            "host_id": self.host_id,
            "cluster_id": self.cluster_id,
            "cluster_name": self.cluster_name,
            "limit": self.limit,
        }
