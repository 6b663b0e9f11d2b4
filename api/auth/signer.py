"""httpx authentication that signs requests with OCP's AK/SK scheme.

Kept apart from :mod:`api.auth.signature` because httpx is a client/test dependency only; the server
verifies with the stdlib-only module, and this class reuses the very same string-to-sign builder so
client and server cannot disagree.
"""

from __future__ import annotations

from collections.abc import Generator
from email.utils import formatdate

import httpx

from api.auth.signature import SCHEME, sign, string_to_sign


class OcpSigner(httpx.Auth):
    """Sign each outgoing request: ``Authorization: OCP-ACCESS-KEY-HMACSHA1 <AK>:<signature>``.

    Usage: ``httpx.Client(auth=OcpSigner(ak, sk))``. A ``Date`` header is added when the request
    has none, because the date is part of the signed string and the server checks its freshness.
    """

    # The MD5 of the body is signed, so httpx must materialise streamed bodies before auth_flow.
    requires_request_body = True

    def __init__(self, access_key_id: str, secret: str) -> None:
        self.access_key_id = access_key_id
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add Date if missing, then Authorization computed over the request as it will be sent."""
        if "date" not in request.headers:
            request.headers["Date"] = formatdate(usegmt=True)
        raw_target = request.url.raw_path.decode("ascii")
        path, _, raw_query = raw_target.partition("?")
        message = string_to_sign(
            method=request.method,
            body=request.content,
            # Header bytes read as latin-1, as the server (and a Java servlet) reads them: the
            # signed text of a non-ASCII value is then the same on both sides.
            content_type=_header(request, b"content-type"),
            date=_header(request, b"date"),
            host=_header(request, b"host"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            path=path,
            raw_query=raw_query,
        )
        signature = sign(self.secret, message)
        request.headers["Authorization"] = f"{SCHEME} {self.access_key_id}:{signature}"
        yield request


def _header(request: httpx.Request, name: bytes) -> str:
    for key, value in request.headers.raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""
