"""``ocptask user|accesskey``: who may call the HTTP API. Passwords are read from a prompt or
standard input, never from the command line, and never printed back (an access key's secret
once, when created)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.auth.users import Users
    from engine import Engine

from .common import (
    DbOption,
    PasswordStdin,
    console,
    open_engine,
    read_secret,
)

user_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Users of the HTTP API.")
accesskey_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Access keys (AK/SK) of API users."
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


def _users(engine: Engine) -> Users:
    from api.auth.users import Users

    return Users(engine.store)
