"""``ocptask``: the operator's command line, a thin layer over the embedded API."""

from __future__ import annotations

from typing import Annotated

import typer

from .access import accesskey_app, user_app
from .audit import audit_app
from .common import (
    DEBUG,
    EXIT_REFUSED,
    DbOption,
    GraceOption,
    NameOption,
    ParallelismOption,
    PublicUrlOption,
    PurgeAfterOption,
    PurgeEveryOption,
    fail,
    log_to_stderr,
    purge_after,
)
from .obproxy import obproxy_app
from .registries import credential_app, definition_app, host_app, obcluster_app
from .task import task_app

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: typer's rich help costs 0.1 s of start-up (issue 11)
    help="OCP tasks, for real: records, DAGs, operations.",
    pretty_exceptions_enable=False,  # errors are one line (see common); --debug for more
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    DEBUG["on"] = debug


app.add_typer(task_app, name="task")
app.add_typer(obproxy_app, name="obproxy")
app.add_typer(host_app, name="host")
app.add_typer(definition_app, name="definition")
app.add_typer(user_app, name="user")
app.add_typer(accesskey_app, name="accesskey")
app.add_typer(obcluster_app, name="obcluster")
app.add_typer(credential_app, name="credential")
app.add_typer(audit_app, name="audit")


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
    public_url: PublicUrlOption = None,
    purge_finished_after: PurgeAfterOption = None,
    purge_every: PurgeEveryOption = 3600.0,
) -> None:
    """Run tasks from the database until SIGTERM; several daemons may share one PostgreSQL."""
    from engine import Engine
    from engine.daemon import Daemon

    purge = purge_after(purge_finished_after)
    log_to_stderr()
    engine = Engine(db, parallelism, executor=name, lease_seconds=lease, public_url=public_url)
    served = Daemon(
        engine,
        grace_seconds=grace,
        sweep_seconds=sweep,
        purge_after=purge,
        purge_seconds=purge_every,
    )
    raise typer.Exit(served.run())


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
    public_url: PublicUrlOption = None,
    accept_ob_register: Annotated[
        bool,
        typer.Option(
            "--accept-ob-register",
            help="Let observers register their root servers through the config server "
            "(POST /services?Action=ObRootServiceInfo|ObRootServiceRegister).",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Proxies (IP addresses or networks, comma-separated; * for any) whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed: the client address the "
            "failed-login budgets count. Unset: the peer's own address, those headers ignored.",
        ),
    ] = None,
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies",
            help="Mark the console's cookies Secure (it is served over HTTPS by a proxy).",
        ),
    ] = False,
    purge_finished_after: PurgeAfterOption = None,
    purge_every: PurgeEveryOption = 3600.0,
) -> None:
    """Serve OCP's HTTP API (and run tasks) until SIGTERM."""
    from api.server import serve as serve_api
    from api.server import trusted_proxies

    purge = purge_after(purge_finished_after)
    if purge is not None and not run:
        fail(EXIT_REFUSED, "--purge-finished-after needs the daemon: drop --no-run, or run one")

    if forwarded_allow_ips is not None:
        try:
            forwarded_allow_ips = trusted_proxies(forwarded_allow_ips)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--forwarded-allow-ips") from None
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
        public_url=public_url,
        accept_ob_register=accept_ob_register,
        secure_cookies=secure_cookies,
        forwarded_allow_ips=forwarded_allow_ips,
        purge_after=purge,
        purge_seconds=purge_every,
    )
    raise typer.Exit(code)
