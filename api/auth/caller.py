"""Who is calling: HTTP Basic against the API's users (``users``), an AK/SK signature
(ocp-http-api §4), or the web console's session cookie with its CSRF token (``console_sessions``).

Every ``/api`` route depends on ``authenticated``. A password is checked by ``passwords``,
within the budgets of failed logins (``throttle``: 429 past them). A refusal is a 401 in OCP's
envelope with OCP's message; the reason goes to the server log with the user name or access key
id, never the password, secret or signature.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from datetime import UTC, datetime

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from engine.db.secrets import SecretError

from . import signature
from .console_sessions import COOKIE, check_csrf, session_of
from .passwords import PasswordChecks
from .throttle import Throttled
from .users import User, Users

log = logging.getLogger("ocptask.api.auth")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Unauthenticated(Exception):
    """The request carries no valid credential; ``reason`` is for the log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def authenticated(request: Request) -> User:
    header = request.headers.get("authorization", "")
    users: Users = request.app.state.users
    client = client_address(request)
    try:
        if not header:
            found = (
                await run_in_threadpool(session_of, request) if COOKIE in request.cookies else None
            )
            if found is None:
                raise Unauthenticated("no Authorization header")
            user, csrf = found  # a console page calling the API: its session, with its token
            check_csrf(request, csrf)
            request.state.user = user
            return user
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "basic":
            name, password = _basic_credentials(header)
            passwords: PasswordChecks = request.app.state.passwords
            found_user = await passwords.check(client, name, password)
            if found_user is None:
                raise Unauthenticated(f"wrong password or unknown user {name[:64]!r}")
            user = found_user
        elif scheme == signature.SCHEME.lower():
            body = await request.body()
            user = await run_in_threadpool(_signed, users, request, body)
        else:  # the header may be a bare token: nothing of it goes to the log
            raise Unauthenticated("unsupported Authorization scheme")
    except Unauthenticated as exc:
        log.warning("authentication failed from %s: %s", client, exc.reason)
        raise
    except Throttled:
        log.warning("authentication refused from %s: too many failed logins lately", client)
        raise
    request.state.user = user
    return user


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
        name, password = decoded.split(":", 1)
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    if not name.isprintable() or len(name) > 64:  # NUL and friends never reach the database
        raise Unauthenticated("malformed Basic user name")
    return name, password


def client_address(request: Request) -> str:
    """Whose failed logins these are: the peer, or what a proxy trusted by ``serve
    --forwarded-allow-ips`` says in X-Forwarded-For (uvicorn sets it as the peer)."""
    return request.client.host if request.client else "?"


def _signed(users: Users, request: Request, body: bytes) -> User:
    parsed = signature.parse_authorization(request.headers["authorization"])
    if parsed is None:
        raise Unauthenticated("malformed OCP-ACCESS-KEY-HMACSHA1 header")
    access_key_id, given = parsed
    if not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise Unauthenticated("malformed access key id")
    date_header = request.headers.get("date")
    if date_header is None:
        raise Unauthenticated(f"access key {access_key_id[:64]!r}: no Date header")
    date = signature.parse_date(date_header)
    if date is None or not signature.is_fresh(date, datetime.now(UTC)):
        raise Unauthenticated(
            f"access key {access_key_id[:64]!r}: Date {date_header[:64]!r} is unreadable "
            "or more than 15 minutes from the server's clock"
        )
    try:
        found = users.access_key(access_key_id)
    except SecretError:  # the server's key changed: its operator's problem, not the caller's
        log.error("access key %s cannot be decrypted with this server's secret key", access_key_id)
        raise Unauthenticated(f"access key {access_key_id!r} unreadable here") from None
    if found is None:
        raise Unauthenticated(f"unknown access key {access_key_id[:64]!r}")
    user, secret = found
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    message = signature.string_to_sign(
        request.method,
        body,
        request.headers.get("content-type", ""),
        date_header,
        request.headers.get("host", ""),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
        raw_path.decode("latin-1").split("?", 1)[0],
        request.scope.get("query_string", b"").decode("latin-1"),
    )
    if not signature.verify(secret, given, message):
        raise Unauthenticated(f"access key {access_key_id[:64]!r}: signature does not match")
    return user
