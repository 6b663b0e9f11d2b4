"""``ocptask serve``: the HTTP API on uvicorn, and (unless ``--no-run``) a daemon beside it.

With one worker (the default) the daemon's jobs run in background threads of the same process
and share its Engine, so a create through the API wakes the dispatcher at once. With
``--workers N`` the requests are served by N processes (Python serves one request at a time per
process) and the daemon runs in the parent; new work then starts at the daemon's next poll
(0.2 s) on SQLite, or at once on PostgreSQL (NOTIFY). On SIGTERM uvicorn stops accepting and
answers the requests in flight; then the daemon gets its grace period, as ``ocptask daemon``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
from datetime import timedelta

import uvicorn
from fastapi import FastAPI

from engine import Engine
from engine.daemon import Daemon
from engine.db.locations import resolve_url
from engine.public_url import VARIABLE

from .app import create_app
from .connections import BoundedHttp

log = logging.getLogger("ocptask.api")
# No proxy headers unless ``forwarded_allow_ips`` names the proxies: the failed-login throttle
# keys on the client's address, which X-Forwarded-For from anyone else would otherwise set.
# Every connection is bounded (``connections``): a request head over 16 KiB gets 431, one
# unfinished after 5 s is closed, 128 per address.
_UVICORN = {
    "http": BoundedHttp,
    "log_level": "info",
    "access_log": False,
    "timeout_graceful_shutdown": 30,
    "proxy_headers": False,
}


def serve(
    db: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    parallelism: int = 10,
    run: bool = True,
    name: str | None = None,
    grace: float = 30.0,
    workers: int = 1,
    public_url: str | None = None,
    accept_ob_register: bool = False,
    secure_cookies: bool = False,
    forwarded_allow_ips: str | None = None,
    purge_after: timedelta | None = None,
    purge_seconds: float = 3600.0,
) -> int:
    """``forwarded_allow_ips``: the proxies (addresses, networks, ``*``; comma-separated) whose
    X-Forwarded-For and X-Forwarded-Proto are believed: the client address of a request they
    pass on is then the one they name (what the login throttle counts). None: nobody's.
    ``purge_after``: the daemon purges what finished longer ago, every ``purge_seconds``."""
    options = dict(_UVICORN)
    if forwarded_allow_ips is not None:
        options |= {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
    daemon = None
    if run:
        daemon = Daemon(
            Engine(db, parallelism, executor=name, public_url=public_url),
            grace_seconds=grace,
            purge_after=purge_after,
            purge_seconds=purge_seconds,
        )
    if daemon is not None:
        daemon.start()
    if public_url:
        log.info("config server: CONFIG_URL OBProxies fetch from %s/services", public_url)
    else:
        log.info("no --public-url: CONFIG_URL clusters on hosts are refused (RS_LIST works)")
    if forwarded_allow_ips is not None:
        log.info("X-Forwarded-For believed from %s", forwarded_allow_ips)
    # uvicorn answers SIGTERM by draining, restores the handlers it found, then raises the
    # signal again: with Python's default handler that would kill us before the daemon's grace.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_uvicorn)
    engine = None
    try:
        if workers > 1:
            os.environ["OCPTASK_SERVE_DB"] = resolve_url(db)
            os.environ[VARIABLE] = public_url or ""
            os.environ["OCPTASK_ACCEPT_OB_REGISTER"] = "1" if accept_ob_register else ""
            os.environ["OCPTASK_SECURE_COOKIES"] = "1" if secure_cookies else ""
            uvicorn.run(
                "api.server:worker_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **options,  # type: ignore[arg-type]
            )
            return 0
        if daemon is not None:
            engine = daemon.engine
        else:
            engine = Engine(db, parallelism, executor=name, public_url=public_url)
        app = create_app(
            engine, accept_ob_register=accept_ob_register, secure_cookies=secure_cookies
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, **options)  # type: ignore[arg-type]
        )
        server.run()  # returns after SIGTERM/SIGINT, requests in flight answered
        return 0 if server.started else 1
    finally:
        if daemon is not None:
            daemon.shutdown()
        elif engine is not None:
            engine.close()


def worker_app() -> FastAPI:
    """One worker process's app (``--workers N``): its own Engine on the parent's database; it
    runs no steps (the parent's daemon does)."""
    engine = Engine(os.environ["OCPTASK_SERVE_DB"], public_url=os.environ.get(VARIABLE))
    accept = bool(os.environ.get("OCPTASK_ACCEPT_OB_REGISTER"))
    secure = bool(os.environ.get("OCPTASK_SECURE_COOKIES"))
    return create_app(engine, accept_ob_register=accept, secure_cookies=secure)


def _after_uvicorn(signum: int, _frame: object) -> None:
    log.info("signal %s: stopping (running steps get their grace period)", signum)


def trusted_proxies(value: str) -> str:
    """``--forwarded-allow-ips`` as uvicorn reads it, checked first: uvicorn takes a misspelt
    address for a name no peer ever has, and would silently believe no one."""
    items = [item.strip() for item in value.split(",")]
    if items == ["*"]:
        return "*"
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(f"{item!r} is neither an IP address, a network nor *") from None
    return ",".join(items)
