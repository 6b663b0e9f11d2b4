"""SQL connections to an OBProxy's admin user (``root@proxysys``), for the steps and the reads.

PyMySQL 2 offers TLS to every server that supports it ("preferred"), verifying nothing, and
builds a new TLS context for each connection, loading every CA certificate of the system to do
so: some 30 ms of CPU per connection, most of the SQL steps' cost on the controller. The
certificates are never used (nothing is verified in that mode), so here one context, made
once, serves every connection: TLS is offered and used exactly as before.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Any

import pymysql
import pymysql.connections

ADMIN_USER = "root@proxysys"


@lru_cache(maxsize=1)
def _preferred_tls() -> ssl.SSLContext:
    """PyMySQL's context for preferred TLS (no verification), without the CA store it never
    consults."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Connection(pymysql.connections.Connection):
    def _create_ssl_ctx(self, sslp: Any) -> Any:
        if not sslp:  # preferred TLS: PyMySQL passes {} when no TLS option was given
            return _preferred_tls()
        return super()._create_ssl_ctx(sslp)


def connect(
    address: str, port: int, *, connect_timeout: float, read_timeout: float, password: str = ""
) -> Any:
    """A PyMySQL connection as root@proxysys (obproxy's default: no password; an OBProxy taken
    over may have one, given with the take-over)."""
    return _Connection(
        host=address,
        port=port,
        user=ADMIN_USER,
        password=password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
    )
