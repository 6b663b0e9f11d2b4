"""An OBProxy cluster's parameters, read live from each of its OBProxies (as OCP does).

Each OBProxy is asked ``SHOW PROXYCONFIG`` as root@proxysys, all at once and with short
timeouts, so one that is down or hung costs the call two seconds, not the answer: its IP is
simply absent from every value. Values are grouped per parameter by value, each with the IPs
that hold it. A password-like parameter is listed with its value masked (``secret_parameters``;
obproxy itself shows a password's SHA1, which is enough to log in with): an OBProxy that has one
shows ``******``, one that has none an empty value.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql

from engine import Engine

from . import proxy_sql
from .clusters import cluster_row, servers
from .secret_parameters import login_passwords, shown_value

log = logging.getLogger("ocptask.obproxy")
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3


def _read(ip: str, port: int, passwords: list[str]) -> list[tuple[str, str, str, bool]] | None:
    """(name, value, info, need_reboot) of one OBProxy, or None when it cannot be read."""
    try:
        conn = proxy_sql.connect(
            ip,
            port,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            passwords=passwords,
        )
    except pymysql.err.MySQLError as exc:
        log.info("OBProxy %s:%s not read: %s", ip, port, exc)
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW PROXYCONFIG")
            rows = cursor.fetchall()
    except pymysql.err.MySQLError as exc:
        log.info("OBProxy %s:%s not read: %s", ip, port, exc)
        return None
    finally:
        conn.close()
    return [
        (str(r[0]), "" if r[1] is None else str(r[1]), str(r[2] or ""), str(r[3]) == "true")
        for r in rows
        if len(r) >= 4
    ]


def cluster_parameters(engine: Engine, cluster_id: int) -> list[dict[str, Any]]:
    row = cluster_row(engine, cluster_id)  # 404 for no such cluster
    # Those whose row says running: one a restart has not reached yet is asked too.
    # Each logs in with the root@proxysys passwords it may have (to log in, never shown).
    opened = engine.store.secrets.open
    recorded = [*(row.startup_parameters or ()), *(row.parameters or ())]
    targets = [
        (s.ip, s.sql_port, login_passwords(s.proxysys_password, recorded, opened))
        for s in servers(engine, cluster_id)
        if s.status == "RUNNING"
    ]
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        answers = list(pool.map(lambda t: _read(*t), targets))
    values: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    about: dict[str, tuple[str, bool]] = {}
    for (ip, _, _), rows in zip(targets, answers, strict=True):
        for name, value, info, reboot in rows or []:
            values[name][shown_value(name, value) or ""].append(ip)
            about.setdefault(name, (info, reboot))
    return [
        {
            "name": name,
            "description": about[name][0] or None,
            "needReboot": about[name][1],
            "valueString": ",".join(values[name]),
            "values": [{"value": v, "obproxies": ips} for v, ips in values[name].items()],
        }
        for name in sorted(values)
    ]
