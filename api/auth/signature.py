"""OCP's AK/SK request signature (``OCP-ACCESS-KEY-HMACSHA1``), stdlib only.

Implements section 4 of ``ocp-http-api.md`` exactly, including the choices of section 5
("Doubts, decided"), so that OCP's own clients and our clients sign the same bytes:

    string = "\\n".join([METHOD, md5, ctype, date, host, xocp, path])
    signature = base64(HMAC-SHA1(SK, string))

Everything here is a pure function of what is on the wire, so the server (verifying) and the
clients (:class:`api.auth.signer.OcpSigner` for httpx, :mod:`cli.client` for the CLI) share
one implementation and cannot drift.
This module deliberately imports nothing outside the standard library: the server must not need
the HTTP client library to check signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote

SCHEME = "OCP-ACCESS-KEY-HMACSHA1"
"""Authorization scheme word, as OCP's clients send it."""

MAX_SKEW_SECONDS = 15 * 60
"""OCP rejects a ``Date`` more than 15 minutes away from the server's clock (replay window)."""

_UNRESERVED = "-._~"
"""Besides A-Z a-z 0-9, the only characters OCP leaves unencoded (RFC 3986 unreserved)."""


def _enc(text: str) -> str:
    """Percent-encode as OCP does: UTF-8, keep A-Z a-z 0-9 - . _ ~, the rest as %XX (uppercase).

    ``quote`` already emits uppercase hex; ``safe`` excludes "/" so slashes are encoded too.
    """
    return quote(text, safe=_UNRESERVED, encoding="utf-8")


def canonical_query(raw_query: str) -> str:
    """Canonical form of a raw (wire) query string, as OCP signs it.

    The query is decoded first ('+' is a space, %XX is UTF-8) so that two spellings of the same
    parameters (``%20`` vs ``+``, ``%2c`` vs ``%2C`` vs ``,``) sign identically; then, per key in
    sorted order, the *non-empty* values are sorted, joined with "," and only then encoded (section
    5: ``a=1&a=2`` signs as ``a=1%2C2``). A key whose values are all empty signs as ``k=``.
    Keys and values are sorted as decoded strings.
    """
    if not raw_query:
        return ""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        bucket = values.setdefault(key, [])
        if value != "":
            bucket.append(value)
    return "&".join(f"{_enc(key)}={_enc(','.join(sorted(values[key])))}" for key in sorted(values))


def canonical_path(path: str, raw_query: str) -> str:
    """The path line of the string to sign: the path as sent, plus ``?`` + canonical query if any.

    The path itself is used verbatim (not decoded or normalised): OCP signs the request URI's path
    as the client sent it.
    """
    query = canonical_query(raw_query)
    return f"{path}?{query}" if query else path


def body_md5(body: bytes) -> str:
    """Uppercase hex MD5 of the raw body, or "" for an empty body (OCP's rule, not MD5 of b"")."""
    return hashlib.md5(body).hexdigest().upper() if body else ""


def canonical_ocp_headers(headers: Iterable[tuple[str, str]]) -> str:
    """The x-ocp line block: ``name:v1,v2`` per lowercased name, names sorted, joined by "\\n".

    Values keep the order they were received in (section 5: sorting them breaks OCP's own test
    vector). Names are matched and grouped case-insensitively because HTTP header names are
    case-insensitive and proxies may change their case. Surrounding whitespace of a value is not
    part of it (HTTP optional whitespace), so it is stripped.
    """
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        lowered = name.strip().lower()
        if lowered.startswith("x-ocp"):
            grouped.setdefault(lowered, []).append(value.strip())
    return "\n".join(f"{name}:{','.join(grouped[name])}" for name in sorted(grouped))


def string_to_sign(
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    headers: Iterable[tuple[str, str]],
    path: str,
    raw_query: str,
) -> str:
    """Build the exact message OCP signs; empty parts are kept so the line count is always 7.

    ``headers`` is every request header as (name, value) in received order; only the x-ocp ones
    are used. ``content_type``, ``date`` and ``host`` are the header values as sent ("" if absent).
    """
    return "\n".join(
        [
            method,
            body_md5(body),
            content_type,
            date,
            host,
            canonical_ocp_headers(headers),
            canonical_path(path, raw_query),
        ]
    )


def sign(secret: str, message: str) -> str:
    """Base64 of HMAC-SHA1 keyed with the secret key (UTF-8) over the message (UTF-8)."""
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(secret: str, signature: str, message: str) -> bool:
    """True when ``signature`` signs ``message``.

    Constant-time comparison so response timing does not leak how much of a guess was right;
    both sides are compared as bytes so a non-ASCII signature is simply wrong, not a TypeError.
    """
    expected = sign(secret, message).encode("utf-8")
    return hmac.compare_digest(expected, signature.encode("utf-8"))


def parse_authorization(value: str) -> tuple[str, str] | None:
    """``(access_key_id, signature)`` from an ``OCP-ACCESS-KEY-HMACSHA1 AK:SIG`` header, else None.

    None means "not this scheme" (e.g. ``Basic ...``) or malformed, so the caller can fall back to
    other authentication or answer 401. The scheme word is matched case-insensitively (RFC 9110
    auth schemes are case-insensitive); extra spaces around the parts are tolerated, but neither
    part may be empty or contain whitespace.
    """
    parts = value.strip().split(None, 1)
    if len(parts) != 2 or parts[0].upper() != SCHEME:
        return None
    access_key_id, colon, signature = parts[1].partition(":")
    access_key_id, signature = access_key_id.strip(), signature.strip()
    if not colon or not access_key_id or not signature:
        return None
    if any(ch.isspace() for ch in access_key_id + signature):
        return None
    return access_key_id, signature


def parse_date(value: str) -> datetime | None:
    """Parse an RFC 1123 / RFC 822 ``Date`` header into an aware UTC datetime; None if unusable.

    Accepts 1- or 2-digit days (OCP's clients send both). A date without an explicit zone
    (or with ``-0000``, "zone unknown") is rejected: its instant is ambiguous, so the 15-minute
    freshness check could not be applied honestly.
    """
    try:
        parsed = parsedate_to_datetime(value.strip())
        if parsed is None or parsed.tzinfo is None:
            return None
        # The last hours of year 9999 west of UTC are past datetime's range once in UTC.
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def is_fresh(date: datetime, now: datetime | None = None) -> bool:
    """True when ``date`` is within :data:`MAX_SKEW_SECONDS` of ``now`` (either direction)."""
    current = now if now is not None else datetime.now(UTC)
    return abs((current - date).total_seconds()) <= MAX_SKEW_SECONDS
