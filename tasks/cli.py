"""``ocptask``: the operator's command line, a thin layer over the embedded API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine import Engine, OcpTaskError, Task

app = typer.Typer(no_args_is_help=True, help="OCP tasks, for real: records, DAGs, operations.")
task_app = typer.Typer(no_args_is_help=True, help="Inspect and operate on tasks.")
obproxy_app = typer.Typer(no_args_is_help=True, help="OBProxy clusters.")
app.add_typer(task_app, name="task")
host_app = typer.Typer(no_args_is_help=True, help="Hosts tasks can run on.")
app.add_typer(obproxy_app, name="obproxy")
app.add_typer(host_app, name="host")
definition_app = typer.Typer(no_args_is_help=True, help="Scheduled task definitions.")
app.add_typer(definition_app, name="definition")
user_app = typer.Typer(no_args_is_help=True, help="Users of the HTTP API.")
app.add_typer(user_app, name="user")
accesskey_app = typer.Typer(no_args_is_help=True, help="Access keys (AK/SK) of API users.")
app.add_typer(accesskey_app, name="accesskey")
obcluster_app = typer.Typer(no_args_is_help=True, help="OceanBase clusters obLinks name.")
app.add_typer(obcluster_app, name="obcluster")
credential_app = typer.Typer(no_args_is_help=True, help="SSH credentials hosts are created with.")
app.add_typer(credential_app, name="credential")

console = Console()
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $OCPTASK_DB).")
]
ParallelismOption = Annotated[int, typer.Option(help="Subtasks run at once.", min=1)]
NameOption = Annotated[str | None, typer.Option(help="Executor identity (default <ip>:<pid>).")]
GraceOption = Annotated[float, typer.Option(help="Seconds running steps get on SIGTERM.", min=0)]


def _log_to_stderr() -> None:
    """Long-running commands log to stderr (the scheduler's routine chatter left out)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
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


def _print(task: Task) -> None:
    console.print_json(json.dumps(task.to_ocp()))


@obproxy_app.command("create")
def obproxy_create(
    request_file: Annotated[
        Path, typer.Argument(help="JSON body of POST /api/v2/obproxy/clusters")
    ],
    db: DbOption = None,
    wait: Annotated[bool, typer.Option(help="Run the task and print its final record.")] = True,
) -> None:
    """Create an OBProxy cluster from a request file."""
    from tasks.obproxy import create_cluster

    try:
        request = json.loads(request_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] cannot read {request_file}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    with _engine(db) as engine:
        task = create_cluster(engine, request)
        _print(engine.run(task.id) if wait else task)


@task_app.command("list")
def task_list(db: DbOption = None, limit: int = 20) -> None:
    """The newest tasks, one line each."""
    with _engine(db) as engine:
        table = Table("id", "name", "status", "operation", "creator", "subtasks")
        for task in engine.list(limit=limit):
            done = sum(s.status.value == "SUCCESSFUL" for s in task.subtasks)
            table.add_row(
                str(task.id),
                task.name,
                task.status.value,
                task.operation.value,
                task.creator,
                f"{done}/{len(task.subtasks)}",
            )
        console.print(table)


@task_app.command("show")
def task_show(task_id: int, db: DbOption = None) -> None:
    """A task's record as OCP returns it."""
    with _engine(db) as engine:
        _print(engine.get(task_id))


@task_app.command("log")
def task_log(task_id: int, subtask_id: int, db: DbOption = None) -> None:
    """A subtask's log."""
    with _engine(db) as engine:
        typer.echo(engine.log(task_id, subtask_id), nl=False)


@task_app.command("run")
def task_run(task_id: int, db: DbOption = None) -> None:
    """Drive a task until nothing can progress."""
    with _engine(db) as engine:
        _print(engine.run(task_id))


@task_app.command("retry")
def task_retry(task_id: int, db: DbOption = None, run: bool = True) -> None:
    """Retry every failed subtask of a failed task."""
    with _engine(db) as engine:
        task = engine.retry(task_id)
        _print(engine.run(task_id) if run else task)


@task_app.command("rollback")
def task_rollback(task_id: int, db: DbOption = None, run: bool = True) -> None:
    """Undo a failed task in reverse order."""
    with _engine(db) as engine:
        task = engine.rollback(task_id)
        _print(engine.run(task_id) if run else task)


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
    from engine.daemon import Daemon

    _log_to_stderr()
    # Their tables and steps, for the tasks it will run:
    import tasks.hosts
    import tasks.obproxy  # noqa: F401

    served = Daemon(
        db,
        parallelism=parallelism,
        name=name,
        grace_seconds=grace,
        lease_seconds=lease,
        sweep_seconds=sweep,
    )
    raise typer.Exit(served.run())


@host_app.command("import")
def host_import(
    inventory: Annotated[
        Path, typer.Argument(help='JSON: {"hosts": [{name, innerIpAddress, ...}]}')
    ],
    db: DbOption = None,
) -> None:
    """Register (or update, by name) every host of an inventory file."""
    try:
        entries = json.loads(inventory.read_text())["hosts"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        console.print(
            f"[red]error:[/red] cannot read hosts from {inventory}: {exc}", highlight=False
        )
        raise typer.Exit(2) from None
    with _engine(db) as engine:
        for i, entry in enumerate(entries):
            try:
                host = engine.hosts.add(entry)
            except OcpTaskError as exc:
                console.print(f"[red]error:[/red] hosts[{i}]: {exc}", highlight=False)
                raise typer.Exit(2) from None
            console.print(f"host {host.id}: {host.name} {host.inner_ip_address}:{host.ssh_port}")


@host_app.command("list")
def host_list(db: DbOption = None) -> None:
    """Registered hosts (credentials are never shown)."""
    with _engine(db) as engine:
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
        console.print(f"[red]error:[/red] --args: not JSON ({exc})", highlight=False)
        raise typer.Exit(2) from None
    with _engine(db) as engine:
        made = engine.definitions.add(name, template, interval=interval, cron=cron, args=context)
        console.print(f"definition {made.id}: {made.name}, next fire {made.next_fire_time}")


@definition_app.command("list")
def definition_list(db: DbOption = None) -> None:
    """Stored definitions, their triggers and next fire times."""
    with _engine(db) as engine:
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
    with _engine(db) as engine:
        made = engine.definitions.enable(definition_id)
        console.print(f"definition {made.id} enabled, next fire {made.next_fire_time}")


@definition_app.command("disable")
def definition_disable(definition_id: int, db: DbOption = None) -> None:
    """Stop creating tasks from it (tasks already created are not touched)."""
    with _engine(db) as engine:
        engine.definitions.disable(definition_id)
        console.print(f"definition {definition_id} disabled")


def _secret_from_stdin(what: str, password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(what, hide_input=True, confirmation_prompt=True)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


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

    _log_to_stderr()
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


@user_app.command("add")
def user_add(name: str, db: DbOption = None, password_stdin: PasswordStdin = False) -> None:
    """Create an API user (or set the password of an existing one)."""
    password = _secret_from_stdin("password", password_stdin)
    with _engine(db) as engine:
        user = engine.users.add(name, password)
    console.print(f"user {user.id}: {user.name}", highlight=False)


@user_app.command("list")
def user_list(db: DbOption = None) -> None:
    with _engine(db) as engine:
        table = Table("id", "name", "created", "access keys")
        keys = engine.users.access_keys()
        for user in engine.users.list():
            count = sum(k.user == user.name for k in keys)
            table.add_row(str(user.id), user.name, str(user.create_time), str(count))
        console.print(table)


@user_app.command("remove")
def user_remove(name: str, db: DbOption = None) -> None:
    """Remove a user and their access keys."""
    with _engine(db) as engine:
        engine.users.remove(name)
    console.print(f"user {name} removed", highlight=False)


@accesskey_app.command("create")
def accesskey_create(
    user: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an access key for USER; its secret is printed now and never again."""
    with _engine(db) as engine:
        access_key_id, secret = engine.users.create_access_key(user)
    if as_json:
        typer.echo(json.dumps({"accessKeyId": access_key_id, "accessKeySecret": secret}))
    else:
        typer.echo(f"AccessKeyId:     {access_key_id}\nAccessKeySecret: {secret}")
        typer.echo("The secret is not shown again.", err=True)


@accesskey_app.command("list")
def accesskey_list(
    user: Annotated[str | None, typer.Argument()] = None, db: DbOption = None
) -> None:
    """Access key ids (never their secrets)."""
    with _engine(db) as engine:
        table = Table("access key id", "user", "created")
        for key in engine.users.access_keys(user):
            table.add_row(key.access_key_id, key.user, str(key.create_time))
        console.print(table)


@accesskey_app.command("remove")
def accesskey_remove(access_key_id: str, db: DbOption = None) -> None:
    with _engine(db) as engine:
        engine.users.remove_access_key(access_key_id)
    console.print(f"access key {access_key_id} removed", highlight=False)


@obcluster_app.command("add")
def obcluster_add(
    ob_cluster_id: Annotated[int, typer.Argument(metavar="ID", help="The obClusterId.")],
    name: str,
    rs_list: Annotated[str, typer.Option("--rs-list", help="Root servers: 'ip:port;ip:port'.")],
    config_url: Annotated[str | None, typer.Option("--config-url")] = None,
    db: DbOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Register (or update) an OceanBase cluster and its proxyro password."""
    password = _secret_from_stdin("proxyro password", password_stdin)
    with _engine(db) as engine:
        cluster = engine.ob_clusters.add(
            ob_cluster_id, name, rs_list=rs_list, password=password, config_url=config_url
        )
    console.print(
        f"OceanBase cluster {cluster.id}: {cluster.name} {cluster.rs_list}", highlight=False
    )


@obcluster_app.command("list")
def obcluster_list(db: DbOption = None) -> None:
    """Registered OceanBase clusters (passwords are never shown)."""
    with _engine(db) as engine:
        table = Table("obClusterId", "name", "root servers", "config URL")
        for c in engine.ob_clusters.list():
            table.add_row(str(c.id), c.name, c.rs_list, c.config_url or "-")
        console.print(table)


@obcluster_app.command("remove")
def obcluster_remove(
    ob_cluster_id: Annotated[int, typer.Argument(metavar="ID")], db: DbOption = None
) -> None:
    with _engine(db) as engine:
        engine.ob_clusters.remove(ob_cluster_id)
    console.print(f"OceanBase cluster {ob_cluster_id} removed", highlight=False)


@credential_app.command("add")
def credential_add(
    name: str,
    username: Annotated[str, typer.Option("--username", "-u", help="The login user.")],
    private_key: Annotated[
        str | None, typer.Option("--private-key", help="Absolute path of the private key file.")
    ] = None,
    password: Annotated[
        bool, typer.Option("--password", help="Log in with a password (prompted).")
    ] = False,
    db: DbOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Register an SSH credential (batchCreate's credentialId): a user with a key or a password."""
    if (private_key is None) == (not password and not password_stdin):
        console.print("[red]error:[/red] give exactly one of --private-key and --password")
        raise typer.Exit(2)
    secret = None if private_key else _secret_from_stdin("SSH password", password_stdin)
    with _engine(db) as engine:
        made = engine.credentials.add(name, username, private_key_path=private_key, password=secret)
    console.print(
        f"credential {made.id}: {made.name} ({made.username}, {made.auth_type})", highlight=False
    )


@credential_app.command("list")
def credential_list(db: DbOption = None) -> None:
    """Registered credentials (passwords are never shown)."""
    with _engine(db) as engine:
        table = Table("id", "name", "user", "auth", "private key", "created")
        for c in engine.credentials.list():
            table.add_row(
                str(c.id),
                c.name,
                c.username,
                c.auth_type,
                c.private_key_path or "-",
                c.to_ocp()["createTime"],
            )
        console.print(table)


@credential_app.command("remove")
def credential_remove(credential_id: int, db: DbOption = None) -> None:
    """Forget a credential (hosts created with it keep their own copy)."""
    with _engine(db) as engine:
        engine.credentials.remove(credential_id)
    console.print(f"credential {credential_id} removed")


if __name__ == "__main__":
    app()
