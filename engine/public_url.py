"""The URL at which the hosts an Engine manages reach its ``ocptask serve``: what it hands to
programs on those hosts that call back (obproxy's config server URL in CONFIG_URL mode). Only
the operator knows it (a server listening on 0.0.0.0, or behind a proxy, cannot tell which of its
names the hosts can resolve and reach), so it is a setting, never guessed: ``127.0.0.1`` would be
right only on the machine that runs ocptask."""

from __future__ import annotations

import unicodedata
from urllib.parse import SplitResult, urlsplit

VARIABLE = "OCPTASK_PUBLIC_URL"
"""The environment variable the command line (``serve``, ``daemon``, ``--db`` commands) reads."""
LONGEST = 400  # obproxy takes config strings of up to 512 characters; URLs are built on it


def http_url(text: object, longest: int) -> SplitResult | None:
    """``text`` split, if it is an absolute http(s) URL of a host, at most ``longest``
    characters, with no control or space characters (the rule of every URL ocptask keeps)."""
    if not isinstance(text, str) or len(text) > longest:
        return None
    if any(unicodedata.category(c)[0] in "CZ" for c in text):
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        return None
    return parts if parts.scheme in ("http", "https") and parts.hostname else None


def checked_public_url(url: str | None) -> str | None:
    """The URL without a trailing ``/``; ValueError saying what is wrong with one that is not
    an http(s) URL of a server (a path prefix is allowed: a proxy may serve ocptask under one)."""
    if url is None or url == "":
        return None
    parts = http_url(url, LONGEST)
    if parts is None or parts.query or parts.fragment or "@" in parts.netloc:
        secret = "@" in str(url)  # never echo a password typed in it
        shown = "(with credentials)" if secret else repr(str(url)[:80])
        raise ValueError(
            f"public URL {shown} must be an http(s) URL such as http://ocp.example:8080 (a valid "
            f"port; no credentials, query or fragment; at most {LONGEST} characters)"
        )
    return url.rstrip("/")
