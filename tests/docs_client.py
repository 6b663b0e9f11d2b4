"""An OCP client written from OCP's documentation alone (``300.ak-sk-sign-roles.md``): AK/SK
signatures as the page defines them, checked against the page's own two examples. Nothing of
ocptask's own code is used, so a test through it is a test of what the docs promise."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from urllib.parse import urlsplit

import httpx


def message(
    method: str,
    body: bytes,
    content_type: str,
    date: str,
    host: str,
    ocp_headers: dict[str, str],
    uri: str,
    query: list[tuple[str, str]],
) -> str:
    """The page's formula: method, body MD5 (upper-case hex, empty for no body), Content-Type,
    Date, Host, the sorted ``x-ocp-`` headers, then uri and its sorted query, all joined by
    newlines except uri and query."""
    md5 = hashlib.md5(body).hexdigest().upper() if body else ""
    headers = ",".join(f"{k}:{v}" for k, v in sorted(ocp_headers.items()))
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    params = "&".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(grouped.items()))
    path = uri + (f"?{params}" if params else "")
    return "\n".join([method.upper(), md5, content_type, date, host, headers, path])


def signature(secret: str, text: str) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class DocsSigner(httpx.Auth):
    """Signs each request as the page says: ``Authorization: OCP-ACCESS-KEY-HMACSHA1 AK:sig``
    and an RFC 1123 ``Date``."""

    requires_request_body = True

    def __init__(self, access_key: str, secret: str) -> None:
        self.access_key, self.secret = access_key, secret

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        date = formatdate(usegmt=True)
        request.headers["Date"] = date
        url = urlsplit(str(request.url))
        text = message(
            request.method,
            request.content,
            request.headers.get("Content-Type", ""),
            date,
            request.headers["Host"],
            {k: v for k, v in request.headers.items() if k.lower().startswith("x-ocp-")},
            url.path,
            list(request.url.params.multi_items()),
        )
        request.headers["Authorization"] = (
            f"OCP-ACCESS-KEY-HMACSHA1 {self.access_key}:{signature(self.secret, text)}"
        )
        yield request
