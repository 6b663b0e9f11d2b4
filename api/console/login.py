"""Logging in and out of the console. The login form carries its own CSRF token (double submit:
a cookie and a field); a login's password is checked as a Basic one is (``auth.passwords``:
the same budgets of failed logins) and ends the session the browser had; ``next`` only ever
leads to a path of this site."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..auth.caller import client_address
from ..auth.console_sessions import (
    COOKIE,
    ConsoleSessions,
    CsrfRefused,
    check_csrf,
    session_of,
)
from ..auth.passwords import PasswordChecks
from ..auth.throttle import Throttled
from .render import page

LOGIN_COOKIE = "ocptask_login"
LOGIN_ERRORS = {
    "wrong": "Wrong user name or password.",
    "throttled": "Too many failed logins for this user or from this address; try again later.",
}

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only a path of this site: never another site after logging in. Browsers read a
    backslash as a slash and drop tabs and newlines from an address (a backslash or a tab after
    the first slash would make it ``//host``): printable ASCII only, no space, one slash first."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and all("!" <= c <= "~" for c in value)
    ):
        return value
    return "/tasks"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, error: str | None = None) -> Response:
    # The login form's own CSRF token (double submit), kept while it lasts: a second tab's
    # form, or a page polling in the background, must not make the first one's stale.
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not (20 <= len(token) <= 64 and token.isascii()):
        token = secrets.token_urlsafe(24)
    context = {"next": safe_next(next), "error": LOGIN_ERRORS.get(error or "")}
    answer = page(request, "login.html", (None, token), **context)  # type: ignore[arg-type]
    answer.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
        path="/login",
    )  # fmt: skip
    return answer


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/tasks",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
        raise CsrfRefused()
    sessions: ConsoleSessions = request.app.state.sessions
    passwords: PasswordChecks = request.app.state.passwords
    if not username.isprintable() or len(username) > 64:  # as Basic: never a user's name
        return _login_again(next, "wrong")
    try:
        user = await passwords.check(client_address(request), username, password)
    except Throttled:
        return _login_again(next, "throttled")
    if user is None:
        return _login_again(next, "wrong")
    old = request.cookies.get(COOKIE)
    if old:  # a new login ends the session this browser had
        await run_in_threadpool(sessions.close, old)
    token, _ = await run_in_threadpool(sessions.open, user)
    answer = RedirectResponse(safe_next(next), status_code=303)
    secure = _secure(request)
    answer.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
    answer.delete_cookie(LOGIN_COOKIE, path="/login")
    return answer


def _login_again(after: str, error: str) -> Response:
    """Back to the form, saying why by a code (never text taken from an address)."""
    return RedirectResponse(
        f"/login?next={quote(safe_next(after), safe='')}&error={error}", status_code=303
    )


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = session_of(request)
    if session is not None:  # an ended session has nothing left to protect
        check_csrf(request, session[1], csrf)
        sessions: ConsoleSessions = request.app.state.sessions
        sessions.close(request.cookies.get(COOKIE, ""))
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer


def _secure(request: Request) -> bool:
    """Cookies only over HTTPS: as the server sees the request (a trusted proxy's scheme with
    ``--forwarded-allow-ips``), or always with ``serve --secure-cookies`` (behind a TLS proxy
    whose headers are not trusted, the browser's scheme is still https)."""
    return request.url.scheme == "https" or bool(request.app.state.secure_cookies)
