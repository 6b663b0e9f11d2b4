"""``ocptask obproxy``: OBProxy clusters and the tasks on them, a thin layer over
``tasks.obproxy``'s embedded calls (the same the HTTP API calls).

A command that makes a task runs it and prints its final record unless ``--no-wait``; it exits 1
when the task ended FAILED, 2 when the request was refused (a cluster held by another task
among them), as every ``ocptask`` command does.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from .backend import Backend, on_backend
from .common import console, json_file, read_secret
from .follow import finish, finish_all

obproxy_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="OBProxy clusters.")
WaitOption = Annotated[bool, typer.Option(help="Run the task and print its final record.")]
IdsArgument = Annotated[str, typer.Argument(help="OBProxy ids, comma-separated (as OCP's path).")]


@obproxy_app.command("create")
@on_backend()
def obproxy_create(
    source: Backend,
    request: Annotated[
        Any,
        typer.Argument(
            parser=json_file,
            metavar="request_file",
            help="JSON body of POST /api/v2/obproxy/clusters",
        ),
    ],
    wait: WaitOption = True,
    plan: Annotated[
        bool,
        typer.Option("--plan", help="Validate, and show the task it would submit; submit nothing."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON.")] = False,
) -> None:
    """Create an OBProxy cluster from a request file."""
    from rich.table import Table

    if not plan:
        finish(source, source.create_cluster(request), wait)
        return
    planned = source.plan_cluster(request)
    if as_json:
        typer.echo(json.dumps(planned, indent=2))
        return
    subs = planned["subtasks"]
    hosts = {s["host"]["id"]: s["host"] for s in subs if s["host"]}
    console.print(
        f"would submit [bold]{planned['name']}[/bold] for OBProxy cluster "
        f"{planned['cluster']!r} ({planned['workMode']}): {len(subs)} subtasks, "
        f"{len(hosts)} hosts; nothing was written and no host was contacted",
        highlight=False,
    )
    table = Table("#", "name", "host", "timeout", "after", "changes")
    for sub in subs:
        host = sub["host"]
        where = f"{host['name']} ({host['address']}:{host['sshPort']})" if host else ""
        limit = f"{sub['timeout']} s" if sub["timeout"] else "none"
        after = ",".join(map(str, sub["upstreams"]))
        table.add_row(str(sub["seriesId"]), sub["name"], where, limit, after, sub["changes"])
    console.print(table)


@obproxy_app.command("edit")
@on_backend()
def obproxy_edit(
    source: Backend,
    cluster_id: int,
    address: Annotated[str | None, typer.Option(help="The cluster's address.")] = None,
    port: Annotated[int | None, typer.Option(help="The cluster's port.")] = None,
) -> None:
    """Set an OBProxy cluster's address and/or port (no task: the record only)."""
    body = {k: v for k, v in {"address": address, "port": port}.items() if v is not None}
    console.print_json(json.dumps(source.edit_cluster(cluster_id, body)))


@obproxy_app.command("link-add")
@on_backend()
def obproxy_link_add(
    source: Backend,
    cluster_id: int,
    links: Annotated[
        Any,
        typer.Argument(
            parser=json_file, metavar="links_file", help="JSON array of obLinks, as OCP's batchAdd"
        ),
    ],
) -> None:
    """Link more OceanBase clusters to an OBProxy cluster."""
    source.add_links(cluster_id, links)
    console.print(f"linked {len(links)} OceanBase cluster(s) to OBProxy cluster {cluster_id}")


@obproxy_app.command("link-remove")
@on_backend()
def obproxy_link_remove(
    source: Backend,
    cluster_id: int,
    ob_cluster_name: str,
) -> None:
    """Unlink an OceanBase cluster (by its name) from an OBProxy cluster."""
    source.remove_link(cluster_id, ob_cluster_name)
    console.print(f"unlinked {ob_cluster_name!r} from OBProxy cluster {cluster_id}")


@obproxy_app.command("add")
@on_backend()
def obproxy_add(
    source: Backend,
    cluster_id: int,
    host: Annotated[list[int], typer.Option("--host", help="Host id (repeat for several).")],
    version: Annotated[str, typer.Option(help="Package file name, as at create.")],
    sql_port: Annotated[int, typer.Option(help="SQL port.")] = 2883,
    exporter_port: Annotated[int, typer.Option(help="Prometheus exporter port.")] = 2884,
    wait: WaitOption = True,
) -> None:
    """Add OBProxies on more hosts (OCP's batchAdd): the cluster's own links and parameters."""
    body = {
        "hostIds": host,
        "sqlPort": sql_port,
        "exporterPort": exporter_port,
        "version": version,
    }
    finish_all(source, source.add_obproxies(cluster_id, body), wait)


@obproxy_app.command("take-over")
@on_backend()
def obproxy_take_over(
    source: Backend,
    cluster_id: int,
    host: Annotated[
        list[str],
        typer.Option("--host", help="Host id, or id:sqlPort (repeat for several)."),
    ],
    sql_port: Annotated[int, typer.Option(help="SQL port of the hosts given without one.")] = 2883,
    proxysys_password_stdin: Annotated[
        bool,
        typer.Option(
            "--proxysys-password-stdin",
            help="Read root@proxysys's password of these OBProxies from standard input "
            "(OCP 4.3's proxysysPasswd).",
        ),
    ] = False,
    wait: WaitOption = True,
) -> None:
    """Take over OBProxies installed by other means (OCP's takeOver): a task per host finds the
    obproxy listening on its SQL port and records it; nothing is installed, started or set."""
    password = read_secret("root@proxysys password", True) if proxysys_password_stdin else None
    hosts = []
    for given in host:
        host_id, _, port = given.partition(":")
        entry: dict[str, Any] = {"hostId": _number(host_id), "sqlPort": _number(port or sql_port)}
        if password:
            entry["proxysysPasswd"] = password
        hosts.append(entry)
    finish_all(source, source.take_over_obproxies(cluster_id, {"hosts": hosts}), wait)


@obproxy_app.command("restart")
@on_backend()
def obproxy_restart(
    source: Backend,
    cluster_id: int,
    obproxy_ids: IdsArgument,
    wait: WaitOption = True,
) -> None:
    """Restart OBProxies one host at a time, with their recorded parameters."""
    finish(source, source.restart_obproxies(cluster_id, obproxy_ids), wait)


@obproxy_app.command("upgrade")
@on_backend()
def obproxy_upgrade(
    source: Backend,
    cluster_id: int,
    obproxy_ids: IdsArgument,
    version: Annotated[
        str | None, typer.Option(help="Package file name to go to (default: the newest).")
    ] = None,
    short_rpm_name: Annotated[
        str | None,
        typer.Option("--short-rpm-name", help="OCP's name of it: obproxy-4.3.3.0-1."),
    ] = None,
    wait: WaitOption = True,
) -> None:
    """Upgrade OBProxies one host at a time; a rollback of the task brings back the old version.
    Without --version or --short-rpm-name: the newest package for the hosts."""
    body = {"version": version, "shortRpmName": short_rpm_name}
    sent = {k: v for k, v in body.items() if v is not None}
    task = source.upgrade_obproxies(cluster_id, obproxy_ids, sent or None)
    finish(source, task, wait)


@obproxy_app.command("stop")
@on_backend()
def obproxy_stop(
    source: Backend,
    cluster_id: int,
    obproxy_ids: IdsArgument,
    wait: WaitOption = True,
) -> None:
    """Stop OBProxies (OCP shows a stopped one as UNAVAILABLE)."""
    body = {"obproxyServerIds": _ids(obproxy_ids)}
    finish(source, source.stop_obproxies(cluster_id, body), wait)


@obproxy_app.command("start")
@on_backend()
def obproxy_start(
    source: Backend,
    cluster_id: int,
    obproxy_ids: IdsArgument,
    wait: WaitOption = True,
) -> None:
    """Start stopped OBProxies (RUNNING once each answers SQL and /metrics)."""
    body = {"obproxyServerIds": _ids(obproxy_ids)}
    finish(source, source.start_obproxies(cluster_id, body), wait)


@obproxy_app.command("delete-obproxies")
@on_backend()
def obproxy_delete_obproxies(
    source: Backend,
    cluster_id: int,
    obproxy_ids: IdsArgument,
    wait: WaitOption = True,
) -> None:
    """Stop and uninstall OBProxies, and forget them."""
    finish(source, source.delete_obproxies(cluster_id, obproxy_ids), wait)


@obproxy_app.command("delete")
@on_backend()
def obproxy_delete(
    source: Backend,
    cluster_id: int,
    wait: WaitOption = True,
) -> None:
    """Delete an OBProxy cluster: every OBProxy of it, then the cluster."""
    finish(source, source.delete_cluster(cluster_id), wait)


def _number(text: str | int) -> int | str:
    """A number as the body's; anything else is passed on for the call to name."""
    value = str(text).strip()
    return int(value) if value.isascii() and value.isdigit() else value


def _ids(text: str) -> list[int | str]:
    """Ids as the body's list; anything not a number is passed on for the call to name."""
    return [int(i) if i.strip().isascii() and i.strip().isdigit() else i for i in text.split(",")]
