"""``ocptask serve``: the HTTP API on uvicorn, and (unless ``--no-run``) a daemon beside it.

The daemon's jobs run in background threads of the same process and share its Engine, so a
create through the API wakes the dispatcher at once. On SIGTERM uvicorn stops accepting and
finishes the requests in flight; then the daemon gets its grace period, as ``ocptask daemon``.
"""

from __future__ import annotations

import logging
import signal

import uvicorn

from engine import Engine
from engine.daemon import Daemon

from .app import create_app

log = logging.getLogger("ocptask.api")


def serve(
    db: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    parallelism: int = 10,
    run: bool = True,
    name: str | None = None,
    grace: float = 30.0,
) -> int:
    import tasks.obproxy  # noqa: F401 - its tables and steps, for the tasks it serves and runs

    daemon = Daemon(db, parallelism=parallelism, name=name, grace_seconds=grace) if run else None
    engine = daemon.engine if daemon is not None else Engine(db, parallelism, executor=name)
    if daemon is not None:
        daemon.start()
    config = uvicorn.Config(
        create_app(engine),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    # uvicorn answers SIGTERM by draining, restores the handlers it found, then raises the
    # signal again: with Python's default handler that would kill us before the daemon's grace.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_uvicorn)
    try:
        server.run()  # returns after SIGTERM/SIGINT, requests in flight answered
    finally:
        if daemon is not None:
            daemon.shutdown()
        else:
            engine.close()
    return 0 if server.started else 1


def _after_uvicorn(signum: int, _frame: object) -> None:
    log.info("signal %s: stopping (running steps get their grace period)", signum)
