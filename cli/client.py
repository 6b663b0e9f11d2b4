"""A client of OCP's HTTP API (ours, or OCP's own): the CLI's ``--server``, standard library only.

It speaks the contract of ``ocp-http-api.md``: JSON in OCP's envelope, HTTP Basic or the AK/SK
signature (signed with :mod:`api.auth.signature`, the code the server verifies with). A refusal
comes back as the engine's own error classes with the server's message and code, so a caller treats
a task refused over HTTP as one refused by an embedded call. Kept to ``http.client`` so that a CLI
command talking to a server starts in a fraction of a second.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from api.auth import signature
from engine.errors import FieldError, NotFound, OcpTaskError, RequestInvalid, ResourceBusy

PERMISSION_DENIED = 10009  # OCP's COM10009: the user's roles do not grant the call (HTTP 403)
IDLE_SECONDS = 2.0
"""A kept-alive connection idle longer than this is replaced before a call that changes
something: the server may have closed it (uvicorn after 5 s), and such a call is never resent."""


class ServerUnreachable(OcpTaskError):
    """No answer in OCP's envelope from the server: it cannot be reached, or is not an OCP API."""


class NotAuthenticated(OcpTaskError):
    """The server refused the credentials (HTTP 401, 403), or throttles failed logins (429)."""


class ServerFault(OcpTaskError):
    """The server answered 5xx: its fault, not the request's."""


class Client:
    """Calls on one server, on one kept-alive connection. ``call`` returns the envelope's
    ``data``; refusals raise NotFound, RequestInvalid, ResourceBusy or OcpTaskError."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        access_key: str | None = None,
        secret: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestInvalid(
                [FieldError("--server", "give an http:// or https:// URL with a host", None)]
            )
        if parts.username is not None or parts.password is not None:  # it would be shown
            raise RequestInvalid(
                [FieldError("--server", "put no user or password in the URL: use --user", None)]
            )
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            problem = FieldError("--server", "the port is not a number", None)
            raise RequestInvalid([problem]) from None
        self.scheme, self.host = parts.scheme, parts.hostname
        self.prefix = parts.path.rstrip("/")
        default = self.port == (443 if self.scheme == "https" else 80)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.netloc = shown if default else f"{shown}:{self.port}"
        self.url = f"{self.scheme}://{self.netloc}{self.prefix}"
        self.timeout = timeout
        self._basic = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self._basic = f"Basic {token}"
        self._signer = (access_key, secret or "") if access_key else None
        self.authenticates = user is not None or bool(access_key)
        self._who = f"user {user!r}" if user else f"access key {access_key!r}"
        self._conn: http.client.HTTPConnection | None = None
        self._used = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def call(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The ``data`` of the envelope the server answers ``method path?query`` with."""
        target = self.prefix + quote(path, safe="/,")
        raw_query = urlencode({k: v for k, v in (query or {}).items() if v is not None})
        if raw_query:
            target += "?" + raw_query
        payload = b"" if body is None else json.dumps(body).encode()
        status, answer = self._exchange(method, target, payload, raw_query)
        return self._data(status, answer)

    def _exchange(self, method: str, target: str, payload: bytes, raw_query: str) -> Any:
        stale = self._conn is not None and time.monotonic() - self._used > IDLE_SECONDS
        if stale and method != "GET":
            self.close()
        for attempt in (1, 2):
            reused = self._conn is not None
            headers = self._headers(method, target.split("?", 1)[0], raw_query, payload)
            try:
                conn = self._connection()
                conn.request(method, target, body=payload or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and method == "GET" and attempt == 1:  # a kept-alive connection closed
                    continue
                unknown = "" if method == "GET" else ": whether it was done is unknown"
                raise ServerUnreachable(f"{self.url} closed the connection{unknown}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                never_sent = isinstance(exc, ConnectionRefusedError | socket.gaierror)
                if method != "GET" and not never_sent:
                    raise ServerUnreachable(  # the call may have been done: never resent
                        f"no answer from {self.url} to {method} {target.split('?')[0]} "
                        f"({_why(exc)}): whether it was done is unknown"
                    ) from None
                raise ServerUnreachable(f"cannot reach {self.url}: {_why(exc)}") from None
            self._used = time.monotonic()
            if response.will_close:
                self.close()
            return response.status, (response.getheader("Content-Type") or "", data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                context = ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _headers(self, method: str, path: str, raw_query: str, payload: bytes) -> dict[str, str]:
        host = self.netloc
        headers = {
            "Accept": "application/json",
            "Date": formatdate(usegmt=True),
            "Host": host,
        }
        if payload:
            headers["Content-Type"] = "application/json"
        if self._basic:
            headers["Authorization"] = self._basic
        elif self._signer:
            key, secret = self._signer
            message = signature.string_to_sign(
                method=method,
                body=payload,
                content_type=headers.get("Content-Type", ""),
                date=headers["Date"],
                host=host,
                headers=list(headers.items()),
                path=path,
                raw_query=raw_query,
            )
            headers["Authorization"] = f"{signature.SCHEME} {key}:{signature.sign(secret, message)}"
        return headers

    def _data(self, status: int, answer: tuple[str, bytes]) -> Any:
        content_type, raw = answer
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or "successful" not in body:
            kind = content_type.split(";")[0] or "no content type"
            raise ServerUnreachable(
                f"{self.url} did not answer as OCP's API (HTTP {status}, {kind})"
            )
        if body.get("successful"):
            return body.get("data")
        error = body.get("error") or {}
        message = str(error.get("message") or f"HTTP {status}")
        code = error.get("code") or None
        who = self._who if self.authenticates else "a call without credentials"
        if status == 403 and code == PERMISSION_DENIED:  # refused, as a local refusal (exit 2)
            raise OcpTaskError(f"{self.url} refused {who}: {message}", code=code)
        if status in (401, 403):
            raise NotAuthenticated(f"{self.url} refused {who}: {message}", code=code)
        if status == 429:
            raise NotAuthenticated(f"{self.url}: {message}", code=code)
        if status >= 500:
            raise ServerFault(f"{self.url} failed: {message}", code=code)
        if status == 404:
            raise NotFound(message, code=code)
        if status == 409:
            raise ResourceBusy(message, code=code)
        subs = error.get("subErrors") or []
        if status == 400 and subs:
            raise RequestInvalid(
                [
                    FieldError(str(s.get("field")), str(s.get("message")), s.get("rejectedValue"))
                    for s in subs
                ]
            )
        raise OcpTaskError(message, code=code)


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
