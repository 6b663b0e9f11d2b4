"""``ocptask host|credential|obcluster|definition``: the registries requests name by id (hosts,
the SSH credentials hosts are created with, OceanBase clusters) and scheduled task definitions.
Secrets are read from a prompt or standard input, never from the command line, and never
printed back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from engine.errors import OcpTaskError

from .common import (
    EXIT_REFUSED,
    DbOption,
    PasswordStdin,
    acting_on,
    console,
    fail,
    open_engine,
    read_json,
    read_secret,
)

if TYPE_CHECKING:
    from engine import Engine
    from tasks.obclusters.registry import ObClusters

host_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Hosts tasks can run on.")
credential_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="SSH credentials hosts are created with."
)
obcluster_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="OceanBase clusters obLinks name."
)
definition_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Scheduled task definitions."
)


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
    with acting_on(db) as engine:
        for i, entry in enumerate(entries):
            address = entry.get("innerIpAddress") if isinstance(entry, dict) else None
            try:
                with _event(engine, HOSTS, "ADD_HOSTS", address, _host_info(entry)) as done:
                    host = engine.hosts.add(entry)
                    done.resource_id = host.id
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
    info = {"name": name, "template": template, "interval": interval, "cron": cron}
    with acting_on(db) as engine, _event(engine, DEFINITIONS, "CREATE_TASK_DEFINITION", name, info):
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
    info = {"id": definition_id}
    with acting_on(db) as engine, _event(engine, DEFINITIONS, "ENABLE_TASK_DEFINITION", None, info):
        made = engine.definitions.enable(definition_id)
        console.print(f"definition {made.id} enabled, next fire {made.next_fire_time}")


@definition_app.command("disable")
def definition_disable(definition_id: int, db: DbOption = None) -> None:
    """Stop creating tasks from it (tasks already created are not touched)."""
    info = {"id": definition_id}
    with (
        acting_on(db) as engine,
        _event(engine, DEFINITIONS, "DISABLE_TASK_DEFINITION", None, info),
    ):
        engine.definitions.disable(definition_id)
        console.print(f"definition {definition_id} disabled")


@obcluster_app.command("add")
def obcluster_add(
    ob_cluster_id: Annotated[int, typer.Argument(metavar="ID", help="The obClusterId.")],
    name: str,
    rs_list: Annotated[
        str,
        typer.Option(
            "--rs-list",
            help="Root servers: 'ip:sql_port;…' or 'ip:rpc_port:sql_port;…'.",
        ),
    ],
    config_url: Annotated[str | None, typer.Option("--config-url")] = None,
    db: DbOption = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Register (or update) an OceanBase cluster and its proxyro password."""
    password = read_secret("proxyro password", password_stdin)
    with acting_on(db) as engine:
        cluster = _ob_clusters(engine).add(
            ob_cluster_id, name, rs_list=rs_list, password=password, config_url=config_url
        )
    console.print(
        f"OceanBase cluster {cluster.id}: {cluster.name} {cluster.rs_list}", highlight=False
    )


@obcluster_app.command("list")
def obcluster_list(db: DbOption = None) -> None:
    """Registered OceanBase clusters (passwords are never shown)."""
    from rich.table import Table

    with open_engine(db) as engine:
        table = Table("obClusterId", "name", "root servers", "config URL")
        for c in _ob_clusters(engine).list():
            table.add_row(str(c.id), c.name, c.rs_list, c.config_url or "-")
        console.print(table)


@obcluster_app.command("remove")
def obcluster_remove(
    ob_cluster_id: Annotated[int, typer.Argument(metavar="ID")], db: DbOption = None
) -> None:
    with acting_on(db) as engine:
        _ob_clusters(engine).remove(ob_cluster_id)
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
        fail(EXIT_REFUSED, "give exactly one of --private-key and --password")
    secret = None if private_key else read_secret("SSH password", password_stdin)
    info = {"name": name, "username": username, "privateKeyPath": private_key}  # no password
    with acting_on(db) as engine, _event(engine, CREDENTIALS, "ADD_CREDENTIAL", name, info):
        made = engine.credentials.add(name, username, private_key_path=private_key, password=secret)
    console.print(
        f"credential {made.id}: {made.name} ({made.username}, {made.auth_type})", highlight=False
    )


@credential_app.command("list")
def credential_list(db: DbOption = None) -> None:
    """Registered credentials (passwords are never shown)."""
    from rich.table import Table

    with open_engine(db) as engine:
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
    info = {"id": credential_id}
    with acting_on(db) as engine, _event(engine, CREDENTIALS, "DELETE_CREDENTIAL", None, info):
        engine.credentials.remove(credential_id)
    console.print(f"credential {credential_id} removed")


def _ob_clusters(engine: Engine) -> ObClusters:
    from tasks.obclusters.registry import ObClusters

    return ObClusters(engine)


# Audit events of the registries only this command line changes (OCP's ADD_HOSTS for an
# inventory's hosts; ours for credentials and task definitions): recorded here, their one surface.
HOSTS = ("COMPUTE_HOST_MANAGEMENT", "COMPUTE_HOST")
CREDENTIALS = ("COMPUTE_HOST_MANAGEMENT", "CREDENTIAL")  # the resource type is ours
DEFINITIONS = ("TASK_MANAGEMENT", "TASK_DEFINITION")  # ours


def _event(
    engine: Engine, kind: tuple[str, str], event: str, name: str | None, info: dict[str, Any]
) -> Any:
    from engine.audit import Operation
    from engine.audit_calls import recorded

    return recorded(engine.store, Operation(event, *kind), name, info)


def _host_info(entry: object) -> dict[str, Any]:
    """What an inventory entry's event shows: never its password."""
    if not isinstance(entry, dict):
        return {}
    return {k: v for k, v in entry.items() if "password" not in k.lower() and k != "hostKey"}
