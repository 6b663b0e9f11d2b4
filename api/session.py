"""The console's login session: a cookie naming a session of ``engine.sessions``, and the CSRF
token every call that changes something must carry with it (a form field or a header).

The API accepts the same session (``api.auth``), so the pages' scripts call OCP's API itself.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from engine import Engine, User

COOKIE = "ocptask_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A call that changes something came with the session's cookie but not its CSRF token."""


def session_of(request: Request) -> tuple[User, str] | None:
    """The logged-in user and the session's CSRF token, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    engine: Engine = request.app.state.engine
    return engine.sessions.find(token)


def check_csrf(request: Request, csrf: str, given: str | None = None) -> None:
    """Refuse a changing call whose token (``given``, else the header) is not the session's."""
    if request.method in SAFE_METHODS:
        return
    offered = given if given is not None else request.headers.get(CSRF_HEADER, "")
    if not offered or not hmac.compare_digest(offered.encode(), csrf.encode()):
        raise CsrfRefused()
