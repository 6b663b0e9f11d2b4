"""Set one obproxy parameter as root@proxysys: ``proxysql.py HOST PORT NAME`` with the value in
$PROXY_VALUE (kept out of argv, so out of ``ps``). Run by Ansible on the controller."""

from __future__ import annotations

import os
import sys

import pymysql

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = pymysql.connect(host=host, port=port, user="root@proxysys", password="", connect_timeout=10)
try:
    with conn.cursor() as cursor:
        cursor.execute(f"ALTER PROXYCONFIG SET {name} = %s", (os.environ["PROXY_VALUE"],))
finally:
    conn.close()
