"""``ocptask user|accesskey|obcluster|credential``: who may call the API, and the registries
(OceanBase clusters, SSH credentials) that requests name by id. Secrets are read from a prompt
or standard input, never from the command line, and never printed back (an access key's
secret once, when created)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.auth.users import Users
    from engine import Engine
    from tasks.obclusters.registry import ObClusters

from .cli_common import (
    EXIT_REFUSED,
    DbOption,
    PasswordStdin,
    console,
    fail,
    open_engine,
    read_secret,
)

user_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Users of the HTTP API.")
accesskey_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Access keys (AK/SK) of API users."
)
obcluster_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="OceanBase clusters obLinks name."
)
credential_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="SSH credentials hosts are created with."
)


@user_app.command("add")
def user_add(name: str, db: DbOption = None, password_stdin: PasswordStdin = False) -> None:
    """Create an API user (or set the password of an existing one)."""
    password = read_secret("password", password_stdin)
    with open_engine(db) as engine:
        user = _users(engine).add(name, password)
    console.print(f"user {user.id}: {user.name}", highlight=False)


@user_app.command("list")
def user_list(db: DbOption = None) -> None:
    from rich.table import Table

    with open_engine(db) as engine:
        table = Table("id", "name", "created", "access keys")
        keys = _users(engine).access_keys()
        for user in _users(engine).list():
            count = sum(k.user == user.name for k in keys)
            table.add_row(str(user.id), user.name, str(user.create_time), str(count))
        console.print(table)


@user_app.command("remove")
def user_remove(name: str, db: DbOption = None) -> None:
    """Remove a user and their access keys."""
    with open_engine(db) as engine:
        _users(engine).remove(name)
    console.print(f"user {name} removed", highlight=False)


@accesskey_app.command("create")
def accesskey_create(
    user: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an access key for USER; its secret is printed now and never again."""
    with open_engine(db) as engine:
        access_key_id, secret = _users(engine).create_access_key(user)
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
    from rich.table import Table

    with open_engine(db) as engine:
        table = Table("access key id", "user", "created")
        for key in _users(engine).access_keys(user):
            table.add_row(key.access_key_id, key.user, str(key.create_time))
        console.print(table)


@accesskey_app.command("remove")
def accesskey_remove(access_key_id: str, db: DbOption = None) -> None:
    with open_engine(db) as engine:
        _users(engine).remove_access_key(access_key_id)
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
    password = read_secret("proxyro password", password_stdin)
    with open_engine(db) as engine:
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
    with open_engine(db) as engine:
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
    with open_engine(db) as engine:
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
    with open_engine(db) as engine:
        engine.credentials.remove(credential_id)
    console.print(f"credential {credential_id} removed")


def _users(engine: Engine) -> Users:
    from api.auth.users import Users

    return Users(engine.store)


def _ob_clusters(engine: Engine) -> ObClusters:
    from tasks.obclusters.registry import ObClusters

    return ObClusters(engine)
