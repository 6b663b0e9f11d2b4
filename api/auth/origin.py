"""Writes sent by another site's page: refused, whatever credential the browser attaches.

Once a browser has answered the Basic prompt, it sends those credentials with every request to
this server, including the ones another site's page makes it send: an auto-submitted form, or a
``fetch`` in ``no-cors`` mode (neither asks this server first). Those carry no CSRF token (only
the console's session has one), so a state-changing call that carries an ``Authorization``
header is refused when the browser says where it came from and that is not here:

- ``Origin`` present and not this server's own ``scheme://host:port`` (the scheme the server
  sees, the ``Host`` header; ``Origin: null`` too, as an opaque origin is never ours);
- ``Sec-Fetch-Site`` present and neither ``same-origin`` nor ``none`` (a user's own navigation).
  ``same-site`` is refused as well: a page on another port of this host, or on a sibling
  subdomain, is the same site but another origin.

A client that sends neither header (OCP's clients, curl, httpx, the CLI's ``--server``) is not
a browser page and is let through unchanged. A console session is left to its CSRF token. The
check runs before the credential is verified: a refused request costs no password hash and
counts as no failed login.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import Request

log = logging.getLogger("ocptask.api.auth")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
CROSS_SITE = (
    "Forbidden: a browser page of another origin asked for this change. Call the API from a "
    "client that sends no Origin header, or from this server's own console."
)


class CrossSiteRefused(Exception):
    """A browser page of another origin asked for a change; ``reason`` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if unreadable."""
    scheme = scheme.lower()
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number, an unclosed IPv6 bracket
        return None
    if not parts.hostname or port is None or parts.username is not None:
        return None
    return scheme, parts.hostname.lower(), port


def own_origin(request: Request) -> tuple[str, str, int] | None:
    return _origin(request.url.scheme, request.headers.get("host", ""))


def sent_origin(value: str) -> tuple[str, str, int] | None:
    """An ``Origin`` header's (scheme, host, port); None for ``null`` or anything odd."""
    parts = urlsplit(value.strip())
    if parts.path or parts.query or parts.fragment:
        return None
    return _origin(parts.scheme, parts.netloc)


def check(request: Request) -> None:
    """Raise ``CrossSiteRefused`` for a credentialed change asked for by another origin."""
    if request.method in SAFE_METHODS or "authorization" not in request.headers:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in OWN_FETCH_SITES:
        raise CrossSiteRefused(f"Sec-Fetch-Site {fetch_site[:32]!r}")
    origin = request.headers.get("origin")
    if origin is None:
        return
    sent = sent_origin(origin)
    if sent is None or sent != own_origin(request):
        raise CrossSiteRefused(f"Origin {origin[:128]!r} is not this server's")


async def same_origin(request: Request) -> None:
    """The dependency every ``/api`` router runs first (see ``check``)."""
    try:
        check(request)
    except CrossSiteRefused as refused:
        client = request.client.host if request.client else "?"
        path = request.url.path[:200]
        log.warning("%s %s from %s refused: %s", request.method, path, client, refused.reason)
        raise
