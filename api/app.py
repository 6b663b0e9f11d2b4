"""The FastAPI application: OCP's routes over one Engine, every answer in OCP's envelope.

Routes are thin: they parse, call the same functions the embedded API and CLI call, and wrap
the result. Errors map by type: a RequestInvalid is 400/10001 with one subError per field, the
engine's OCP codes keep their codes (20000 → 404, 20003/20004 → 400), unknown ids of anything
else are 404/10002, and a refused credential is 401.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from engine import Engine, NotFound, OcpTaskError, RequestInvalid, ResourceBusy
from tasks.validation import field_path

from .auth.caller import Unauthenticated, authenticated
from .auth.console_sessions import ConsoleSessions, CsrfRefused
from .auth.origin import CROSS_SITE, CrossSiteRefused, same_origin
from .auth.passwords import PasswordChecks
from .auth.permissions import PermissionDenied, permitted
from .auth.roles import Roles
from .auth.throttle import FailedLogins, Throttled
from .auth.users import Users
from .console import pages
from .envelope import UNAUTHENTICATED, Envelope, EnvelopeMiddleware, failure
from .models import ErrorEnvelope
from .query import known_parameters
from .routes import audit, config_server, hosts, ob_clusters, obproxy, tasks
from .routes.bodies import NotJson, extra_schemas

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": text}
    for code, text in (
        (400, "bad argument, validation failure or illegal state"),
        (401, "not authenticated"),
        (403, "permission denied (OCP's 10009): a role of the caller's must grant the call's"),
        (404, "not found"),
        (409, "another task holds what this would change"),
        (413, "body larger than 1 MiB"),
        (429, "too many failed logins for this user or from this address"),
        (500, "server error (its traceId is in the server log)"),
    )
}


# Threads for the routes that block (database writes and lists, SSH): a few, not anyio's 40. On
# two cores, forty threads taking turns at the GIL around every SQLite call spent ten times the
# CPU of the work itself, and starved the event loop that answers the cheap requests.
THREADS = int(os.environ.get("OCPTASK_API_THREADS", "8"))


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    # What exists at start (modules, the app, the engine) lives as long as the process: kept
    # out of the collector's full passes, which would otherwise walk it all again and again.
    gc.freeze()
    yield


def create_app(
    engine: Engine, *, accept_ob_register: bool = False, secure_cookies: bool = False
) -> FastAPI:
    """The app over ``engine``; ``accept_ob_register`` lets observers register their root servers
    through the config server (``routes.config_server``); ``secure_cookies`` marks the console's
    cookies Secure whatever scheme the server sees (it is behind a TLS proxy)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="ocptask",
        version="0.1.0",
        description="OCP's task and OBProxy API (OceanBase Cloud Platform, v2), run by ocptask.",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: not beside a session cookie
        redoc_url=None,
        redirect_slashes=False,  # OCP clients take a redirect for an error: answer 404
    )
    app.state.engine = engine
    app.state.users = Users(engine.store)
    app.state.roles = Roles(engine.store)
    app.state.sessions = ConsoleSessions(engine.store)
    app.state.passwords = PasswordChecks(app.state.users, FailedLogins())
    app.state.accept_ob_register = accept_ob_register
    app.state.secure_cookies = secure_cookies
    secured = [
        Depends(same_origin),
        Depends(authenticated),
        Depends(audit.caller),
        Depends(permitted),
        Depends(known_parameters),
    ]
    routers = (tasks.router, obproxy.router, obproxy.info_router, hosts.router, ob_clusters.router)
    routers += (audit.router,)
    for router in routers:
        app.include_router(router, dependencies=secured, responses=ERRORS)
    app.router.routes[:0] = tasks.lean_routes()
    app.include_router(config_server.router)  # obproxy and observers call it without credentials
    pages.install(app)
    app.add_middleware(EnvelopeMiddleware)
    _errors(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Envelope:
        if not request.url.path.startswith("/api/"):
            return await run_in_threadpool(
                pages.error_page, request, exc.status_code, str(exc.detail)
            )
        if exc.status_code in (404, 405):
            try:  # which /api paths exist is for authenticated callers only
                await authenticated(request)
            except Unauthenticated:
                return _unauthenticated()
            except Throttled as throttled:
                return _throttled(throttled)
            except CsrfRefused:
                pass  # a console session that may look: the path is still unknown
        if exc.status_code == 404:
            return failure(404, 10002, "No such API path")
        if exc.status_code == 405:
            return failure(405, 10008, "The method is not supported.")
        return failure(exc.status_code, 0, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith("/api/"):  # a console page's address or form
            return await run_in_threadpool(
                pages.error_page, request, 404, "No such page (a value in its address is wrong)"
            )
        subs = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            where = loc[0] if loc else "body"
            field = field_path(loc[1:]) if len(loc) > 1 else f"({where})"
            message = err.get("msg", "invalid")
            if err.get("type") == "json_invalid":
                field, message = "(body)", f"body is not valid JSON: {message}"
            sub = {"object": where, "field": field, "message": message}
            subs.append(sub | {"rejectedValue": _plain(err.get("input"), field)})
        return _invalid(subs)

    @app.exception_handler(CsrfRefused)
    async def forged(request: Request, exc: CsrfRefused) -> Response:
        if not request.url.path.startswith("/api/"):
            return await run_in_threadpool(
                pages.error_page, request, 403, "This form was stale or not ours: reload it."
            )
        return failure(403, 0, "The console session's CSRF token is missing or wrong")

    @app.exception_handler(CrossSiteRefused)
    async def cross_site(_: Request, exc: CrossSiteRefused) -> Envelope:
        return failure(403, 0, CROSS_SITE)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_: Request, exc: Unauthenticated) -> Envelope:
        return _unauthenticated()

    @app.exception_handler(Throttled)
    async def throttled(_: Request, exc: Throttled) -> Envelope:
        return _throttled(exc)

    @app.exception_handler(DataError)
    async def out_of_range(_: Request, exc: DataError) -> Envelope:
        """The database refused a value (a NUL in text, a number past a column's range on
        PostgreSQL): the caller's input, not a server fault."""
        return failure(400, 10001, "A value in the request cannot be stored or searched")

    @app.exception_handler(OcpTaskError)
    async def refused(request: Request, exc: OcpTaskError) -> Response:
        await audit.refusal(request, exc)  # a refused change no recorded call saw is an event
        if isinstance(exc, PermissionDenied):
            if not request.url.path.startswith("/api/"):  # a console page or its form
                return await run_in_threadpool(
                    pages.error_page, request, 403, exc.message, "Not permitted"
                )
            return failure(403, exc.code, exc.message)
        if isinstance(exc, RequestInvalid):
            where = "query" if request.method in ("GET", "HEAD", "DELETE") else "body"
            subs = [
                {
                    "object": e.object or where,
                    "field": e.field,
                    "message": e.message,
                    "rejectedValue": _safe(e),
                }
                for e in exc.errors
            ]
            return _invalid(subs, exc.code or 10001)
        if isinstance(exc, NotJson):
            return failure(415, exc.code, exc.message)
        if isinstance(exc, NotFound):
            return failure(404, exc.code or 10002, exc.message)
        if isinstance(exc, ResourceBusy):
            return failure(409, exc.code, exc.message)
        if exc.code in (20003, 20004):
            return failure(400, exc.code, exc.message)
        return failure(400, exc.code or 10001, exc.message)


def _throttled(exc: Throttled) -> Envelope:
    return failure(
        429,
        0,
        "Excessive number of failed logins for this user or from this address; try again later",
        headers={"Retry-After": str(exc.retry_after)},
    )


def _unauthenticated() -> Envelope:
    return failure(401, 0, UNAUTHENTICATED, headers={"WWW-Authenticate": 'Basic realm="ocp"'})


def _safe(error: Any) -> Any:
    """The rejected value, if it is small and plain: an echo must not become a big response
    (a 1 MB parameter value) nor carry a password."""
    return _plain(error.rejected_value, error.field)


def _plain(value: Any, field: str) -> Any:
    if "password" in field.lower():
        return None
    if isinstance(value, str) and len(value) > 256:
        return value[:256] + "…"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return None


# A 400 names at most this many fields, each field and message at most this long, and counts the
# rest: 1,000 bad names in a 160 KB body gave a 474 KB answer, each bad field echoed twice.
SHOWN_ERRORS, SHOWN_CHARS = 20, 512


def _invalid(subs: list[dict[str, Any]], code: int = 10001) -> Envelope:
    shown = [
        s | {"field": _short(s["field"]), "message": _short(s["message"])}
        for s in subs[:SHOWN_ERRORS]
    ]
    first = shown[0] if shown else {"field": None, "message": "invalid request"}
    message = "; ".join(f"{s['field']}: {s['message']}" for s in shown)
    if len(subs) > len(shown):
        message += f"; and {len(subs) - len(shown)} more"
    return failure(
        400, code, f"Invalid request: {message}", target=first["field"], sub_errors=shown
    )


def _short(text: Any) -> Any:
    if isinstance(text, str) and len(text) > SHOWN_CHARS:
        return text[:SHOWN_CHARS] + "…"
    return text


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(extra_schemas())
        components["securitySchemes"] = {
            "basic": {"type": "http", "scheme": "basic"},
            "accessKey": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "OCP-ACCESS-KEY-HMACSHA1 <AK>:<signature>, with a Date header",
            },
        }
        schema["security"] = [{"basic": []}, {"accessKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema
