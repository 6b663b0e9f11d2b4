"""Where a task or obproxy command does its work, and the four options that choose it.

A command works on a database (``--db``, $OCPTASK_DB: ``local.Local``, the embedded calls on an
Engine; ``reads.Reads``, a SQLite file read without one, for ``task list`` and ``task show``) or
on a server (``--server``, $OCPTASK_SERVER: ``remote.Remote``, the same calls through OCP's HTTP
API, as ``--user`` or ``--access-key``). Each backend has one typed method per call and hands
the commands the same things (``Task`` snapshots, OCP's BasicTaskInstance for lists, log text,
host labels), so a command prints the same either way and keeps no rule of its own.

``on_backend`` gives a command the four options once, for every command that takes them: the
command itself names only its own options and receives the backend.
"""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from .common import (
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    DbOption,
    TaskListing,
    fail,
    is_database_error,
    open_engine,
    read_secret_from,
    reported,
)

if TYPE_CHECKING:
    from engine.task import Task

    from .client import Client


class TaskReads(Protocol):
    """What ``task list`` and ``task show`` need: every backend has it."""

    where: str
    """The option that names it, for commands printed to the operator (``--db x``), or ''."""

    def get(self, task_id: int) -> Task: ...
    def tasks(self, wanted: TaskListing) -> list[dict[str, Any]]: ...
    def host_labels(self, task: Task) -> dict[int, str]: ...


class Backend(TaskReads, Protocol):
    """Everything the task and obproxy commands call; ``tasks.obproxy``'s embedded calls by
    their own names and arguments (less the Engine and the creator)."""

    def log(self, task_id: int, subtask_id: int) -> str: ...
    def start(self, task_id: int) -> None: ...
    def wait(self, task_id: int) -> Task: ...
    def run(self, task_id: int) -> Task: ...
    def retry(self, task_id: int) -> Task: ...
    def rollback(self, task_id: int) -> Task: ...

    def create_cluster(self, request: Any) -> Task: ...
    def plan_cluster(self, request: Any) -> dict[str, Any]: ...
    def edit_cluster(self, cluster_id: int, body: Any) -> dict[str, Any]: ...
    def add_links(self, cluster_id: int, links: Any) -> None: ...
    def remove_link(self, cluster_id: int, ob_cluster_name: str) -> None: ...
    def add_obproxies(self, cluster_id: int, body: Any) -> list[Task]: ...
    def take_over_obproxies(self, cluster_id: int, body: Any) -> list[Task]: ...
    def delete_obproxies(self, cluster_id: int, server_ids: str) -> Task: ...
    def restart_obproxies(self, cluster_id: int, server_ids: str) -> Task: ...
    def upgrade_obproxies(self, cluster_id: int, server_ids: str, body: Any) -> Task: ...
    def stop_obproxies(self, cluster_id: int, body: Any) -> Task: ...
    def start_obproxies(self, cluster_id: int, body: Any) -> Task: ...
    def delete_cluster(self, cluster_id: int) -> Task: ...


# -- the four options ------------------------------------------------------------------------

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Work through this ocptask serve (or OCP) URL instead of a database "
        "(default: $OCPTASK_SERVER, unless --db is given).",
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        help="User for --server; the password from $OCPTASK_PASSWORD, else asked "
        "(default: $OCPTASK_USER).",
    ),
]
AccessKeyOption = Annotated[
    str | None,
    typer.Option(
        "--access-key",
        help="Access key id for --server (OCP's AK/SK signature); the secret from "
        "$OCPTASK_ACCESS_SECRET, else asked (default: $OCPTASK_ACCESS_KEY).",
    ),
]
_OPTIONS = {
    "db": DbOption,
    "server": ServerOption,
    "user": UserOption,
    "access_key": AccessKeyOption,
}


def on_backend(*, reads: bool = False) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A command whose first parameter is its backend (``source``): typer sees the command's
    own options and the four backend options instead, and the command runs inside
    ``open_backend`` (its errors become one line and an exit code)."""

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        hints = typing.get_type_hints(command, include_extras=True)
        first, *own = inspect.signature(command).parameters.values()
        clash = _OPTIONS.keys() & {p.name for p in own}
        if first.name != "source" or clash:
            raise TypeError(
                f"{command.__name__}: an on_backend command takes its backend as 'source' first "
                f"and names no option of its own {sorted(clash) or ''} like the backend's"
            )
        params = [p.replace(annotation=hints[p.name]) for p in own] + [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
            for n, a in _OPTIONS.items()
        ]

        @functools.wraps(command)
        def run(**given: Any) -> None:
            chosen = {n: given.pop(n) for n in _OPTIONS}
            with open_backend(**chosen, reads=reads) as source:
                command(source, **given)

        del run.__wrapped__  # typer reads the signature below, not the command's
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return wrap


@contextmanager
def open_backend(
    db: str | None,
    server: str | None,
    user: str | None,
    access_key: str | None,
    *,
    reads: bool = False,
) -> Iterator[Any]:
    """The database (``--db``, $OCPTASK_DB) or the server (``--server``, $OCPTASK_SERVER) a
    command works on; an explicit ``--db`` wins over $OCPTASK_SERVER. With ``reads`` the
    command only lists or shows tasks: a SQLite file is then read without an Engine when it can
    be (``reads.Reads``)."""
    if db and server:
        fail(EXIT_REFUSED, "give --db or --server, not both")
    server = server or (None if db else os.environ.get("OCPTASK_SERVER"))
    if server:
        with _remote(server, user, access_key) as remote:
            yield remote
        return
    from .reads import Reads

    reader = Reads.open(db) if reads else None
    if reader is None:
        with open_engine(db) as engine:
            from .local import Local

            with Local(engine, db).acting() as local:
                yield local
        return
    try:
        with reported():
            yield reader
    except Exception as exc:
        if not is_database_error(exc):
            raise
        where = db or os.environ.get("OCPTASK_DB") or "the default database"
        fail(EXIT_UNREACHABLE, f"database {where}: {exc}")
    finally:
        reader.close()


@contextmanager
def _remote(server: str, user: str | None, access_key: str | None) -> Iterator[Any]:
    from .client import NotAuthenticated, ServerFault, ServerUnreachable
    from .remote import Remote

    with reported():
        client = _client(server, user, access_key)
    with client:
        try:
            with reported():
                yield Remote(client)
        except NotAuthenticated as exc:
            hint = "" if client.authenticates else " (give --user or --access-key)"
            fail(EXIT_UNREACHABLE, f"{exc}{hint}")
        except ServerUnreachable as exc:
            fail(EXIT_UNREACHABLE, str(exc))
        except ServerFault as exc:
            fail(EXIT_FAILED, str(exc))


def _client(server: str, user: str | None, access_key: str | None) -> Client:
    """Credentials given as options win; the environment's are used when none is given."""
    from .client import Client

    if user and access_key:
        fail(EXIT_REFUSED, "give --user or --access-key, not both")
    if not user and not access_key:
        user = os.environ.get("OCPTASK_USER") or None
        access_key = None if user else os.environ.get("OCPTASK_ACCESS_KEY") or None
    where = Client(server).url  # the URL checked (and shown without anything secret) first
    if user:
        password = read_secret_from("OCPTASK_PASSWORD", f"password of {user} at {where}", "--user")
        return Client(server, user=user, password=password)
    if access_key:
        secret = read_secret_from(
            "OCPTASK_ACCESS_SECRET", f"secret of {access_key}", "--access-key"
        )
        return Client(server, access_key=access_key, secret=secret)
    return Client(server)
