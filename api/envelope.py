"""OCP's response envelope, for every answer the API gives, errors included.

A pure ASGI middleware opens each request: it gives it a traceId (16 hex digits), times it,
refuses bodies over 1 MiB before they are read in full (413), and turns anything that escaped the
handlers into a 500 envelope whose traceId is also in the server log with the traceback. The
client never sees a stack trace or FastAPI's ``{"detail": …}``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from contextvars import ContextVar
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.clock import ocp_time, utcnow

log = logging.getLogger("ocptask.api")

MAX_BODY = 1024 * 1024
_API_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))
SERVER = os.environ.get("OCPTASK_SERVER_NAME") or socket.gethostname()[:32]
_trace: ContextVar[tuple[str, float]] = ContextVar("ocptask_trace", default=("", 0.0))

UNAUTHENTICATED = (
    "The current user has not logged on or a logon error has occurred. Please log on and try again."
)


def trace_id() -> str:
    return _trace.get()[0]


def _frame(status: int) -> dict[str, Any]:
    trace, started = _trace.get()
    elapsed = int((time.perf_counter() - started) * 1000) if started else 0
    return {
        "successful": 200 <= status < 300,
        "timestamp": ocp_time(utcnow()),
        "duration": elapsed,
        "status": status,
        "traceId": trace,
        "server": SERVER,
    }


def encode(content: Any) -> bytes:
    """JSON as every answer is written: UTF-8, compact."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


class Envelope(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):  # already encoded (``ok_encoded``)
            return content
        return encode(content)


def ok(data: Any = None, *, has_data: bool = True) -> Envelope:
    """A success; calls that return nothing (skip, cancel, delete) omit ``data``."""
    body = _frame(200)
    if has_data:
        body = {"data": data, **body}
    return Envelope(body, status_code=200)


def ok_encoded(data: bytes) -> Envelope:
    """``ok(data)`` for data already ``encode``-d (and perhaps remembered): the same bytes."""
    return Envelope(b'{"data":' + data + b"," + encode(_frame(200))[1:], status_code=200)


def paged(contents: list[Any], total: int, page: int, size: int) -> Envelope:
    pages = (total + size - 1) // size if size else 0
    return ok(
        {
            "contents": contents,
            "page": {"totalElements": total, "totalPages": pages, "number": page, "size": size},
        }
    )


def failure(
    status: int,
    code: int,
    message: str,
    *,
    target: str | None = None,
    sub_errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Envelope:
    error = {
        "code": code,
        "message": message,
        "debugMessage": None,
        "stackTrace": None,
        "target": target,
        "subErrors": sub_errors or [],
    }
    return Envelope({**_frame(status), "error": error}, status_code=status, headers=headers)


class EnvelopeMiddleware:
    """Trace id and timing for every request; 413 for large bodies; 500 for the unexpected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _trace.set((secrets.token_hex(8), time.perf_counter()))
        started = False

        api = scope.get("path", "").startswith("/api/")

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if api:  # answers carry task records and names: never cached, never sniffed
                    message["headers"] = [*message.get("headers", []), *_API_HEADERS]
            await send(message)

        try:
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                await _too_large(scope, receive, send_wrapper)
                return
            counted = _Counted(receive)
            try:
                await self.app(scope, counted, send_wrapper)
            except _BodyTooLarge:
                if not started:
                    await _too_large(scope, receive, send_wrapper)
        except Exception:
            log.exception(
                "traceId %s: %s %s failed", trace_id(), scope.get("method"), scope.get("path")
            )
            if not started:
                response = failure(
                    500, 0, f"Internal server error; quote traceId {trace_id()} to the operator"
                )
                await response(scope, receive, send_wrapper)
        finally:
            _trace.reset(token)


class _BodyTooLarge(Exception):
    pass


class _Counted:
    """Receives the body, and stops at 1 MiB when no Content-Length told us ahead."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.seen = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > MAX_BODY:
                raise _BodyTooLarge
        return message


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = failure(
        413,
        0,
        f"Request body is larger than {MAX_BODY} bytes",
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)
