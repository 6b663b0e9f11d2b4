"""What every console page shares: its templates, its security headers, the session it needs
(a page without one redirects to the login form; a page's script is told 401), the permission
each page needs (``permissions.ROUTES``, as the API's routes) and its errors as HTML pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from engine import Engine, NotFound

from ..auth.console_sessions import session_of
from ..auth.permissions import check
from ..auth.users import User

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")  # autoescapes every .html
POLL_HEADER = "x-ocptask-poll"  # the pages' script marks its background reads with it
T = TypeVar("T")


class PageMissing(Exception):
    """A page of something that does not exist: an HTML 404 naming it."""


class LoginRequired(Exception):
    def __init__(self, after: str) -> None:
        self.after = after


def logged_in(request: Request) -> tuple[User, str]:
    session = session_of(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return session


LoggedIn = Annotated[tuple[User, str], Depends(logged_in)]


def page_permitted(request: Request, session: LoggedIn) -> None:
    """The pages' check (their router's dependency): the one the API's routes make."""
    route = request.scope.get("route")
    check(request, session[0], request.method, getattr(route, "path", request.url.path))


def found(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, or the page's 404 when what it reads does not exist."""
    try:
        return call(*args)
    except NotFound as exc:
        raise PageMissing(str(exc)) from None


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


# Only ocptask's own script and style; not to be framed; no address of ours sent elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page(
    request: Request, name: str, session: tuple[User, str] | None, code: int = 200, **context: Any
) -> Response:
    """The template ``name`` as the answer; ``code`` its HTTP status."""
    user, csrf = session if session else (None, "")
    can = getattr(request.state, "permissions", frozenset())  # what the user may do: shown
    values = {"user": user, "csrf": csrf, "page": name.split(".")[0], "can": can, **context}
    return TEMPLATES.TemplateResponse(request, name, values, status_code=code, headers=HEADERS)


def error_page(request: Request, status: int, message: str, heading: str = "Not found") -> Response:
    """An HTML answer for a console address (the API's paths answer OCP's envelope)."""
    session = session_of(request)
    return page(request, "missing.html", session, status, message=message, heading=heading)
