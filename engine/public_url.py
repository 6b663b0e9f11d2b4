"""The URL at which the hosts an Engine manages reach its ``ocptask serve``: what it hands to
programs on those hosts that call back (obproxy's config server URL in CONFIG_URL mode). Only
the operator knows it (a server listening on 0.0.0.0, or behind a proxy, cannot tell which of its
names the hosts can resolve and reach), so it is a setting, never guessed: ``127.0.0.1`` would be
right only on the machine that runs ocptask."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit


def checked_public_url(url: str | None) -> str | None:
    """The URL without a trailing ``/``; ValueError saying what is wrong with one that is not
    an absolute http(s) URL of a server (a path prefix is allowed: a proxy may serve ocptask
    under one)."""
    if url is None or url == "":
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    secret = parts is not None and "@" in parts.netloc  # never echo a password typed in it
    shown = "(with credentials)" if secret else repr(str(url)[:80])
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
        or len(url) > 512
        or any(unicodedata.category(c)[0] in "CZ" for c in url)
    ):
        raise ValueError(
            f"public URL {shown} must be an http(s) URL such as http://ocp.example:8080 "
            "(no credentials, query or fragment; at most 512 characters)"
        )
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise ValueError(f"public URL {shown} has an invalid port") from None
    return url.rstrip("/")
