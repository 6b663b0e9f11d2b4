"""``ocptask user|accesskey``: who may call the HTTP API and with which roles
(``api.auth.roles``: ADMIN, OPERATOR, VIEWER, AUDITOR). Passwords are read from a prompt or
standard input, never from the command line, and never printed back (an access key's secret
once, when created). An access key acts with its user's roles.

These commands work on the database itself (``--db``): whoever can open it manages users, so
they check no role; the HTTP API has no call that manages users."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.auth.roles import Roles
    from api.auth.users import Users
    from engine import Engine

from .common import (
    DbOption,
    PasswordStdin,
    acting_on,
    console,
    read_secret,
    reported,
)

user_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Users of the HTTP API.")
accesskey_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Access keys (AK/SK) of API users."
)


RoleArgument = Annotated[str, typer.Argument(help="ADMIN, OPERATOR, VIEWER or AUDITOR.")]


@user_app.command("add")
def user_add(
    name: str,
    db: DbOption = None,
    password_stdin: PasswordStdin = False,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="ADMIN, OPERATOR, VIEWER or AUDITOR; repeat for several. Without it a new user "
            "is an ADMIN if no one is, else a VIEWER.",
        ),
    ] = None,
) -> None:
    """Create an API user (or set the password of an existing one, granting any --role)."""
    from api.auth.roles import checked_roles

    with reported():  # an unknown role is refused before the password is asked
        wanted = checked_roles(role or [])
    password = read_secret("password", password_stdin)
    with acting_on(db) as engine:
        users = _users(engine)
        roles = _roles(engine)
        user = roles.add_user(users, name, password, wanted)
        held = roles.of(user.id)
    console.print(f"user {user.id}: {user.name} ({_named(held)})", highlight=False)


@user_app.command("grant")
def user_grant(name: str, role: RoleArgument, db: DbOption = None) -> None:
    """Give a user a role (the roles they hold stay)."""
    with acting_on(db) as engine:
        held = _roles(engine).grant(_users(engine).get(name), [role])
    console.print(f"user {name}: {_named(held)}", highlight=False)


@user_app.command("revoke")
def user_revoke(name: str, role: RoleArgument, db: DbOption = None) -> None:
    """Take a role from a user; the last ADMIN keeps it."""
    with acting_on(db) as engine:
        held = _roles(engine).revoke(_users(engine).get(name), [role])
    console.print(f"user {name}: {_named(held)}", highlight=False)


@user_app.command("list")
def user_list(db: DbOption = None) -> None:
    from rich.table import Table

    with acting_on(db) as engine:
        table = Table("id", "name", "roles", "created", "access keys")
        keys = _users(engine).access_keys()
        roles = _roles(engine).by_user()
        for user in _users(engine).list():
            count = sum(k.user == user.name for k in keys)
            held = _named(roles.get(user.id, ()))
            table.add_row(str(user.id), user.name, held, str(user.create_time), str(count))
        console.print(table)


@user_app.command("remove")
def user_remove(name: str, db: DbOption = None) -> None:
    """Remove a user, their roles and their access keys (not the last ADMIN while others
    remain)."""
    with acting_on(db) as engine:
        users = _users(engine)
        _roles(engine).check_removable(users.get(name))
        users.remove(name)
    console.print(f"user {name} removed", highlight=False)


@accesskey_app.command("create")
def accesskey_create(
    user: str,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an access key for USER; its secret is printed now and never again."""
    with acting_on(db) as engine:
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

    with acting_on(db) as engine:
        table = Table("access key id", "user", "created")
        for key in _users(engine).access_keys(user):
            table.add_row(key.access_key_id, key.user, str(key.create_time))
        console.print(table)


@accesskey_app.command("remove")
def accesskey_remove(access_key_id: str, db: DbOption = None) -> None:
    with acting_on(db) as engine:
        _users(engine).remove_access_key(access_key_id)
    console.print(f"access key {access_key_id} removed", highlight=False)


def _users(engine: Engine) -> Users:
    from api.auth.users import Users

    return Users(engine.store)


def _roles(engine: Engine) -> Roles:
    from api.auth.roles import Roles

    return Roles(engine.store)


def _named(roles: Iterable[str]) -> str:
    return ", ".join(sorted(roles)) or "no role"
