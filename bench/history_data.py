"""The history ``bench/history.py`` reads: a mix of real tasks, run once, then multiplied with SQL
(see that module's docstring for why and how)."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import Connection, text

import tasks.obproxy as obproxy
from api.auth.users import Users
from engine import Engine
from fixtures import PACKAGE, install_request, register_ob_cluster
from tasks.hosts import batch_create_hosts

SCHEMA = 1
"""Bump when the tables (or the mix) change: cached databases of another version are not read."""
USER, PASSWORD = "bench", "bench-Passw0rd"
CREATES, RESTARTS, ADDS, TAKEOVERS, PREPARES = 15, 4, 3, 2, 26  # the base mix: 50 tasks
_TIMES = {"create_time", "start_time", "finish_time", "acquired_until"}


def build(db_url: str, tasks: int) -> dict[str, Any]:
    """``tasks`` tasks in ``db_url`` (a new database); the ids the reads ask for."""
    with Engine(db_url, parallelism=4) as engine:
        Users(engine.store).add(USER, PASSWORD)
        facts = _base(engine)
        base = len(_ids(engine, "SELECT id FROM task_instance"))
        with engine.store.begin_write() as conn:
            _multiply(conn, tasks)
        check_copies(engine, base)
        facts["task_id"] = tasks // 2
    return facts


def _base(engine: Engine) -> dict[str, Any]:
    register_ob_cluster(engine, "pw")
    serial = iter(range(1, 10_000))

    def host() -> int:  # nothing listens there: each run ends where it first reaches a host
        i = next(serial)
        address = f"127.3.{i // 250}.{i % 250 + 1}"
        spec = {"name": f"history-{i}", "innerIpAddress": address, "sshPort": 2200}
        return engine.hosts.add(spec | {"username": "root", "privateKeyPath": "/nonexistent"}).id

    first_hosts = [host() for _ in range(3)]
    create = obproxy.create_cluster(engine, install_request(first_hosts, name="history0"), USER)
    engine.run(create.id)
    for i in range(1, CREATES):
        task = obproxy.create_cluster(engine, install_request([host()], name=f"history{i}"), USER)
        engine.run(task.id)
    cluster_id = _settle(engine, create.id)
    servers = _ids(engine, "SELECT id FROM obproxy_server WHERE cluster_id = :c", c=cluster_id)
    for _ in range(RESTARTS):
        engine.run(obproxy.restart_obproxies(engine, cluster_id, servers, USER).id)
        _settle(engine)
    body = {"hostIds": [host() for _ in range(ADDS)], "version": PACKAGE}
    for task in obproxy.add_obproxies(
        engine, cluster_id, body | {"sqlPort": 2883, "exporterPort": 2884}
    ):
        engine.run(task.id)
    _settle(engine)
    for _ in range(TAKEOVERS):
        request = {"hosts": [{"hostId": host(), "sqlPort": 2883}]}
        (taken,) = obproxy.take_over_obproxies(engine, cluster_id, request, USER)
        engine.run(taken.id)
        _settle(engine)
    credential = engine.credentials.add("history", "root", password="history-Passw0rd")
    entries = [{"innerIpAddress": f"127.4.0.{i + 1}"} for i in range(PREPARES)]
    body = {"hostBasicDataList": entries, "sshPort": 2200, "credentialId": credential.id}
    for task in batch_create_hosts(engine, body | {"kind": "DEDICATED_CONTAINER"}, USER):
        engine.run(task.id)
    return {"ob_cluster_id": 1, "host_id": first_hosts[0], "obproxy_cluster_id": cluster_id}


def _ids(engine: Engine, sql: str, **params: Any) -> list[int]:
    with engine.store.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(sql), params)]


def _settle(engine: Engine, task_id: int | None = None) -> int:
    """As if the last task had succeeded (its cluster's servers running, its holds let go):
    the cluster's next task may start. Answers the OBProxy cluster's id."""
    with engine.store.begin_write() as conn:
        last = task_id or conn.execute(text("SELECT max(id) FROM task_instance")).scalar_one()
        conn.execute(
            text("UPDATE task_instance SET status = 'SUCCESSFUL' WHERE id = :t"), {"t": last}
        )
        conn.execute(text("UPDATE obproxy_server SET status = 'RUNNING'"))
        conn.execute(text("DELETE FROM task_hold"))
        return int(conn.execute(text("SELECT min(id) FROM obproxy_cluster")).scalar_one())


def _shifted_time(column: str, dialect: str) -> str:
    if dialect == "sqlite":  # its text form: the fraction kept as it was
        return (
            f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%d %H:%M:%S', {column}, :secs) || substr({column}, 20) END"
        )
    return f"{column} + make_interval(secs => :seconds)"


def _shifted_ids(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"(SELECT json_group_array(value + :sshift) FROM json_each({column}))"
    return (
        f"(SELECT coalesce(json_agg(e.v::text::bigint + :sshift ORDER BY e.n), '[]'::json) "
        f"FROM json_array_elements({column}) WITH ORDINALITY AS e(v, n))"
    )


def _copy(conn: Connection, table: str, shifts: dict[str, str], where: str, params: dict) -> None:
    dialect = conn.dialect.name
    columns = [c["name"] for c in sqlalchemy.inspect(conn).get_columns(table)]
    if table in ("subtask_log", "task_subject"):
        columns.remove("id")  # their own sequence numbers them
    values = []
    for column in columns:
        if column in shifts:
            values.append(shifts[column])
        elif column in _TIMES:
            values.append(_shifted_time(column, dialect))
        elif column in ("upstreams", "downstreams"):
            values.append(_shifted_ids(column, dialect))
        else:
            values.append(column)
    names = ", ".join(f'"{c}"' for c in columns)
    conn.execute(
        text(
            f"INSERT INTO {table} ({names}) SELECT {', '.join(values)} FROM {table} WHERE {where}"
        ),
        params,
    )


def _multiply(conn: Connection, tasks: int) -> None:
    """Copy the tasks (doubling) until there are ``tasks``; times moved back first so that the
    newest copies are about now, a minute apart per task id."""
    scalar = lambda sql, **p: conn.execute(text(sql), p).scalar_one()  # noqa: E731
    dialect = conn.dialect.name
    back = tasks * 60
    for table in ("task_instance", "subtask_instance"):
        sets = ", ".join(
            f"{c} = {_shifted_time(c, dialect)}"
            for c in ("create_time", "start_time", "finish_time")
        )
        conn.execute(
            text(f"UPDATE {table} SET {sets}"), {"secs": f"-{back} seconds", "seconds": -back}
        )
    have = scalar("SELECT count(*) FROM task_instance")
    while have < tasks:
        count = min(have, tasks - have)
        upto = scalar(
            "SELECT max(id) FROM (SELECT id FROM task_instance ORDER BY id LIMIT :n) AS f", n=count
        )
        tshift = scalar("SELECT max(id) FROM task_instance")
        sshift = scalar("SELECT max(id) FROM subtask_instance")
        supto = scalar(
            "SELECT coalesce(max(id), 0) FROM subtask_instance WHERE task_id <= :t", t=upto
        )
        params = {"tshift": tshift, "sshift": sshift, "upto": upto, "supto": supto}
        params |= {"secs": f"+{tshift * 60} seconds", "seconds": tshift * 60}
        _copy(conn, "task_instance", {"id": "id + :tshift"}, "id <= :upto", params)
        shifts = {"id": "id + :sshift", "task_id": "task_id + :tshift"}
        _copy(conn, "subtask_instance", shifts, "task_id <= :upto", params)
        _copy(
            conn,
            "subtask_log",
            {"subtask_id": "subtask_id + :sshift"},
            "subtask_id <= :supto",
            params,
        )
        _copy(conn, "task_subject", {"task_id": "task_id + :tshift"}, "task_id <= :upto", params)
        have += count
    if dialect == "postgresql":
        for table in ("task_instance", "subtask_instance", "subtask_log", "task_subject"):
            top = f"(SELECT max(id) FROM {table})"
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {top})"))


def check_copies(engine: Engine, base: int) -> None:
    """The last task is a copy of one of the ``base`` first: the same but for ids and times."""
    if not engine.store.is_sqlite:  # as autovacuum would, after so many rows
        with engine.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    last = engine.list(limit=1)[0]
    original = engine.get((last.id - 1) % base + 1)

    def shape(task: Any) -> Any:
        first = task.subtasks[0].id
        subs = [(s.name, s.status, [u - first for u in s.upstreams]) for s in task.subtasks]
        logs = [engine.log(task.id, s.id) for s in task.subtasks]
        return task.name, task.status, task.payload, subs, logs

    if shape(last) != shape(original):
        raise SystemExit(f"task {last.id} is not a copy of task {original.id}")
    if not last.create_time > original.create_time:
        raise SystemExit("the copies are not newer than their originals")
