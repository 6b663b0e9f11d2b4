"""SQL connections to an OBProxy's admin user (``root@proxysys``), for the steps and the reads.

PyMySQL 2 offers TLS to every server that supports it ("preferred"), verifying nothing, and
builds a new TLS context for each connection, loading every CA certificate of the system to do
so: some 30 ms of CPU per connection, most of the SQL steps' cost on the controller. The
certificates are never used (nothing is verified in that mode), so here one context, made
once, serves every connection: TLS is offered and used exactly as before.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pymysql
import pymysql.connections

ADMIN_USER = "root@proxysys"
ACCESS_DENIED = 1045  # MySQL's ER_ACCESS_DENIED_ERROR, as obproxy answers a wrong password


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
    address: str,
    port: int,
    *,
    connect_timeout: float,
    read_timeout: float,
    passwords: Sequence[str] = (),
) -> Any:
    """A PyMySQL connection as root@proxysys. obproxy's default has no password; ``passwords``
    are those it may have been given (``ServerSpec.admin_passwords``), tried in turn, then none:
    an obproxy not given the cluster's yet (a fresh install before its "Sync obproxy
    parameter", or one whose rollback took it back) still has the empty one. A refusal of the
    last is raised."""
    timeouts = {"connect_timeout": connect_timeout, "read_timeout": read_timeout}
    tries = list(dict.fromkeys([*(p for p in passwords if p), ""]))
    for password in tries[:-1]:
        try:
            return _login(address, port, password, **timeouts)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != ACCESS_DENIED:
                raise
    return _login(address, port, tries[-1], **timeouts)


def _login(
    address: str, port: int, password: str, *, connect_timeout: float, read_timeout: float
) -> Any:
    return _Connection(
        host=address,
        port=port,
        user=ADMIN_USER,
        password=password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
    )
