"""``ocptask``: the operator's command line, a thin layer over the embedded API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine import OcpTaskError

from .cli_access import accesskey_app, credential_app, obcluster_app, user_app
from .cli_common import (
    DEBUG,
    EXIT_REFUSED,
    DbOption,
    GraceOption,
    NameOption,
    ParallelismOption,
    console,
    fail,
    log_to_stderr,
    open_engine,
    read_json,
)
from .cli_obproxy import obproxy_app
from .cli_task import task_app

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: typer's rich help costs 0.1 s of start-up (issue 11)
    help="OCP tasks, for real: records, DAGs, operations.",
    pretty_exceptions_enable=False,  # errors are one line (see cli_common); --debug for more
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    DEBUG["on"] = debug


app.add_typer(task_app, name="task")
host_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Hosts tasks can run on.")
app.add_typer(obproxy_app, name="obproxy")
app.add_typer(host_app, name="host")
definition_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Scheduled task definitions."
)
app.add_typer(definition_app, name="definition")
app.add_typer(user_app, name="user")
app.add_typer(accesskey_app, name="accesskey")
app.add_typer(obcluster_app, name="obcluster")
app.add_typer(credential_app, name="credential")


@app.command("daemon")
def daemon(
    db: DbOption = None,
    parallelism: ParallelismOption = 10,
    name: NameOption = None,
    grace: GraceOption = 30.0,
    lease: Annotated[
        float,
        typer.Option(help="Seconds a claim holds unless renewed (every quarter of it).", min=2),
    ] = 30.0,
    sweep: Annotated[
        float, typer.Option(help="Seconds between looks for subtasks of lost executors.", min=0.1)
    ] = 5.0,
) -> None:
    """Run tasks from the database until SIGTERM; several daemons may share one PostgreSQL."""
    from engine import Engine
    from engine.daemon import Daemon

    log_to_stderr()
    # Their tables and steps, for the tasks it will run:
    import tasks.hosts
    import tasks.obproxy  # noqa: F401

    engine = Engine(db, parallelism, executor=name, lease_seconds=lease)
    served = Daemon(engine, grace_seconds=grace, sweep_seconds=sweep)
    raise typer.Exit(served.run())


@host_app.command("import")
def host_import(
    inventory: Annotated[
        Path, typer.Argument(help='JSON: {"hosts": [{name, innerIpAddress, ...}]}')
    ],
    db: DbOption = None,
) -> None:
    """Register (or update, by name) every host of an inventory file."""
    data = read_json(inventory)
    entries = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        fail(EXIT_REFUSED, f'{inventory}: expected {{"hosts": [...]}}')
    with open_engine(db) as engine:
        for i, entry in enumerate(entries):
            try:
                host = engine.hosts.add(entry)
            except OcpTaskError as exc:
                fail(EXIT_REFUSED, f"hosts[{i}]: {exc}")
            console.print(f"host {host.id}: {host.name} {host.inner_ip_address}:{host.ssh_port}")


@host_app.command("list")
def host_list(db: DbOption = None) -> None:
    """Registered hosts (credentials are never shown)."""
    from rich.table import Table

    with open_engine(db) as engine:
        table = Table("id", "name", "address", "user", "host key", "status")
        for host in engine.hosts.list():
            pinned = host.host_key.split()[1] if host.host_key else "not pinned"
            table.add_row(
                str(host.id),
                host.name,
                f"{host.inner_ip_address}:{host.ssh_port}",
                host.username,
                pinned,
                host.status.value,
            )
        console.print(table)


@definition_app.command("add")
def definition_add(
    name: str,
    template: Annotated[
        str, typer.Argument(help="module:attribute of a Template (or a callable returning one)")
    ],
    interval: Annotated[float | None, typer.Option(help="Fire every this many seconds.")] = None,
    cron: Annotated[str | None, typer.Option(help="Fire on a 5-field crontab line (UTC).")] = None,
    args: Annotated[
        str | None, typer.Option(help='The tasks\' context as JSON: {"stringMap": {...}}')
    ] = None,
    db: DbOption = None,
) -> None:
    """Store a definition; running daemons create its SCHEDULED tasks."""
    try:
        context = json.loads(args) if args else None
    except json.JSONDecodeError as exc:
        fail(EXIT_REFUSED, f"--args: not JSON ({exc})")
    with open_engine(db) as engine:
        made = engine.definitions.add(name, template, interval=interval, cron=cron, args=context)
        console.print(f"definition {made.id}: {made.name}, next fire {made.next_fire_time}")


@definition_app.command("list")
def definition_list(db: DbOption = None) -> None:
    """Stored definitions, their triggers and next fire times."""
    from rich.table import Table

    with open_engine(db) as engine:
        table = Table("id", "name", "template", "trigger", "enabled", "next fire", "last task")
        for d in engine.definitions.list():
            table.add_row(
                str(d.id),
                d.name,
                d.template,
                f"{d.trigger} {d.expression}",
                "yes" if d.enabled else "no",
                str(d.next_fire_time or "-"),
                str(d.last_task_id or "-"),
            )
        console.print(table)


@definition_app.command("enable")
def definition_enable(definition_id: int, db: DbOption = None) -> None:
    with open_engine(db) as engine:
        made = engine.definitions.enable(definition_id)
        console.print(f"definition {made.id} enabled, next fire {made.next_fire_time}")


@definition_app.command("disable")
def definition_disable(definition_id: int, db: DbOption = None) -> None:
    """Stop creating tasks from it (tasks already created are not touched)."""
    with open_engine(db) as engine:
        engine.definitions.disable(definition_id)
        console.print(f"definition {definition_id} disabled")


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    parallelism: ParallelismOption = 10,
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="Also run tasks, as 'ocptask daemon' does.")
    ] = True,
    name: NameOption = None,
    grace: GraceOption = 30.0,
    workers: Annotated[
        int, typer.Option(help="Processes serving requests (the daemon stays one).", min=1)
    ] = 1,
) -> None:
    """Serve OCP's HTTP API (and run tasks) until SIGTERM."""
    from api.server import serve as serve_api

    log_to_stderr()
    code = serve_api(
        db,
        host=host,
        port=port,
        parallelism=parallelism,
        run=run,
        name=name,
        grace=grace,
        workers=workers,
    )
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
