"""What each task is about (``task_subject``), written at submit by every kind of task, and the
task lists that answer from it: host and cluster filters through the relation's index, on
SQLite and PostgreSQL, and a database written before the relation gains it on open, its old
tasks found by the filters over HTTP and on the command line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from api.auth.users import Users
from engine import Engine, Node, Template
from engine.db.locations import resolve_url
from fixtures import PACKAGE, api_server, install_request, register_ob_cluster
from tasks.hosts import batch_create_hosts
from tasks.obproxy import add_obproxies, create_cluster, restart_obproxies, take_over_obproxies
from tests.api_helpers import data_of
from tests.helpers import S

BACKENDS = ["sqlite", "postgres"]
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "fixtures" / "packages"
NOOP = Template("noop", [Node(S + "Noop", "only")])


def _rows(engine: Engine, task_id: int) -> set[tuple[str, int | None, str | None]]:
    query = "SELECT kind, key, name FROM task_subject WHERE task_id = :t"
    with engine.store.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sqlalchemy.text(query), {"t": task_id})}


def _host(engine: Engine, i: int) -> int:
    """A host nothing listens on: the tasks are submitted, not run."""
    return engine.hosts.add(
        {
            "name": f"subject-{i}",
            "innerIpAddress": f"127.1.7.{i + 1}",
            "sshPort": 2200,
            "username": "root",
            "privateKeyPath": "/nonexistent",
        }
    ).id


def _settled(engine: Engine) -> None:
    """As if every task so far had succeeded: a cluster's next task needs its holds let go."""
    with engine.store.begin_write() as conn:
        conn.execute(sqlalchemy.text("UPDATE task_instance SET status = 'SUCCESSFUL'"))
        conn.execute(sqlalchemy.text("UPDATE obproxy_server SET status = 'RUNNING'"))
        conn.execute(sqlalchemy.text("DELETE FROM task_hold"))


def test_every_kind_of_task_records_what_it_is_about(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    register_ob_cluster(engine, "pw")
    hosts = [_host(engine, i) for i in range(5)]
    create = create_cluster(engine, install_request(hosts[:3], name="subjects"), "admin")
    assert _rows(engine, create.id) == {
        *(("host", h, None) for h in hosts[:3]),
        ("ob_cluster", 1, "hooray"),  # the sample request's obLink
    }
    cluster_id = int(
        engine.store.engine.connect()
        .execute(sqlalchemy.text("SELECT id FROM obproxy_cluster"))
        .scalar_one()
    )
    engine.run(create.id)  # its first steps record the cluster's servers; then no host answers
    _settled(engine)
    with engine.store.engine.connect() as conn:
        servers = [r[0] for r in conn.execute(sqlalchemy.text("SELECT id FROM obproxy_server"))]
    restart = restart_obproxies(engine, cluster_id, servers)
    assert _rows(engine, restart.id) == {
        *(("host", h, None) for h in hosts[:3]),
        ("obproxy_cluster", cluster_id, None),
    }
    _settled(engine)
    body = {"hostIds": [hosts[3]], "version": PACKAGE, "sqlPort": 2883, "exporterPort": 2884}
    (added,) = add_obproxies(engine, cluster_id, body)
    assert _rows(engine, added.id) == {
        ("host", hosts[3], None),
        ("obproxy_cluster", cluster_id, None),
    }
    _settled(engine)
    (taken,) = take_over_obproxies(
        engine, cluster_id, {"hosts": [{"hostId": hosts[4], "sqlPort": 2883}]}
    )
    assert _rows(engine, taken.id) == {
        ("host", hosts[4], None),
        ("obproxy_cluster", cluster_id, None),
    }
    credential = engine.credentials.add("ops", "root", password="pw-ops-12345")
    prepared = batch_create_hosts(
        engine,
        {
            "hostBasicDataList": [{"innerIpAddress": "127.1.8.1"}, {"innerIpAddress": "127.1.8.2"}],
            "sshPort": 22,
            "credentialId": credential.id,
            "kind": "DEDICATED_CONTAINER",
        },
    )
    for task in prepared:
        assert _rows(engine, task.id) == {("host", int(task.context.string_map["host_id"]), None)}
    plain = engine.submit(NOOP)
    assert _rows(engine, plain.id) == set()


def _link(cluster_id: int, name: str) -> dict[str, Any]:
    return {"request": {"obLinks": [{"obClusterId": cluster_id, "clusterName": name}]}}


def _ids(engine: Engine, **filters: Any) -> list[int]:
    tasks, total = engine.page(limit=100, **filters)
    assert total == len(tasks)
    return [t.id for t in tasks]


def test_an_id_no_row_can_have_matches_nothing(engine: Engine) -> None:
    """The API takes OCP's Long ids; one beyond our rows' is simply not found (on PostgreSQL an
    INTEGER column would refuse to compare with it)."""
    engine.submit(NOOP, {"host_ids": ["1"]}, payload=_link(1, "alpha"))
    for beyond in (2**31, 2**63 - 1, 10**20):
        assert _ids(engine, host_id=beyond) == []
        assert _ids(engine, cluster_id=beyond) == []
    assert len(_ids(engine, host_id=1)) == 1


def test_filters_answer_from_the_relation(engine: Engine) -> None:
    """Each filter alone and together, newest first; a fuzzy cluster name or task name is
    case-blind and may match several names; a page past the middle is the same page."""
    a = engine.submit(NOOP, {"host_ids": ["1", "2"]}, payload=_link(11, "alpha-meta"))
    b = engine.submit(NOOP, {"host_ids": ["2"]}, payload=_link(22, "beta-prod"))
    c = engine.submit(NOOP, {"host_id": "3"}, payload=_link(22, "beta-prod"))
    d = engine.submit(Template("other", [Node(S + "Noop", "only")]))
    assert _ids(engine, host_id=2) == [b.id, a.id]
    assert _ids(engine, host_id=3) == [c.id]
    assert _ids(engine, host_id=9) == []
    assert _ids(engine, cluster_id=22) == [c.id, b.id]
    assert _ids(engine, cluster_name="A-") == [c.id, b.id, a.id]  # both names hold "a-"
    assert _ids(engine, cluster_name="META") == [a.id]
    assert _ids(engine, cluster_name="nowhere") == []
    assert _ids(engine, cluster_id=22, host_id=2) == [b.id]
    assert _ids(engine, name="NOO") == [c.id, b.id, a.id]
    assert _ids(engine, name="o", cluster_name="prod") == [c.id, b.id]
    assert _ids(engine, name="zzz") == []
    assert _ids(engine) == [d.id, c.id, b.id, a.id]
    assert _ids(engine, descending=False) == [a.id, b.id, c.id, d.id]
    assert _ids(engine, statuses=["RUNNING"], name="o") == [d.id, c.id, b.id, a.id]
    for size in (1, 3):
        pages = [engine.page(offset=o, limit=size)[0] for o in range(0, 4, size)]
        assert [t.id for page in pages for t in page] == [d.id, c.id, b.id, a.id]
        pages = [engine.page(offset=o, limit=size, host_id=2)[0] for o in range(0, 2, size)]
        assert [t.id for page in pages for t in page] == [b.id, a.id]
    assert engine.page(offset=10, limit=5) == ([], 4)
    # Created since (the command line's --since): a column of the task, on each backend's form.
    assert _ids(engine, after=b.create_time) == [d.id, c.id, b.id]
    assert _ids(engine, after=b.create_time, host_id=2) == [b.id]
    assert _ids(engine, after=d.create_time + timedelta(seconds=1)) == []


def _older(db: Path) -> None:
    """Make the file look as a database written before the relation and its indexes did."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE task_subject")
    for index in ("ix_task_instance_name", "ix_task_instance_type", "ix_task_instance_status"):
        conn.execute(f"DROP INDEX {index}")
    conn.execute("CREATE INDEX ix_task_instance_status ON task_instance (status)")  # as it was
    conn.commit()
    conn.close()


def _cli(db: Path, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "task", "list", "--db", str(db), "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_an_older_database_gains_the_relation_and_its_tasks_are_found(
    db_path: Path, tmp_path: Path
) -> None:
    with Engine(str(db_path)) as engine:
        Users(engine.store).add("admin", "admin-Passw0rd")
        a = engine.submit(NOOP, {"host_ids": ["1", "2"]}, payload=_link(11, "alpha-meta"))
        b = engine.submit(NOOP, {"host_id": "2"}, payload=_link(22, "beta-prod"))
    _older(db_path)
    with sqlite3.connect(db_path) as conn:  # the reader cannot vouch for it: an Engine opens it
        assert "task_subject" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert [t["id"] for t in _cli(db_path, "--host-id", "2")] == [b.id, a.id]
    assert [t["id"] for t in _cli(db_path, "--cluster-id", "11")] == [a.id]
    assert [t["id"] for t in _cli(db_path, "--cluster-name", "PROD")] == [b.id]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM task_subject").fetchone()[0] == 5
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"ix_task_instance_name", "ix_task_instance_type"} <= names
    _older(db_path)  # again, for the server to find it older
    server = api_server.start(str(db_path), tmp_path / "server.log", "--no-run")
    try:
        import httpx

        with httpx.Client(base_url=server.url, auth=("admin", "admin-Passw0rd")) as client:

            def ids(**params: Any) -> list[int]:
                page = data_of(client.get("/api/v2/tasks/instances", params=params))
                return [t["id"] for t in page["contents"]]

            assert ids(hostId=2) == [b.id, a.id]
            assert ids(hostId=1) == [a.id]
            assert ids(clusterId=22) == [b.id]
            assert ids(cluterName="alpha") == [a.id]
            assert ids(hostId=7) == []
    finally:
        assert server.stop() == 0, server.log()[-2000:]


def test_the_quick_reader_and_the_engine_agree_on_every_filter(db_path: Path) -> None:
    from engine.reads.sqlite_reader import SqliteReader

    with Engine(str(db_path)) as engine:
        engine.submit(NOOP, {"host_ids": ["1", "2"]}, payload=_link(11, "alpha-meta"))
        engine.submit(NOOP, {"host_id": "2"}, payload=_link(22, "beta-prod"))
        engine.submit(NOOP)
        reader = SqliteReader.open(str(db_path))
        assert reader is not None
        for given in (
            {"host_id": 2},
            {"host_id": 1},
            {"cluster_id": 22},
            {"cluster_name": "ALPHA"},
            {"name": "oo", "host_id": 2},
            {},
        ):
            expected, _ = engine.page(limit=10, **given)
            assert expected and reader.page(limit=10, **given) == expected, given
        reader.close()


def test_a_new_index_is_added_to_an_existing_table_and_a_changed_one_made_again(
    db_url: str,
) -> None:
    with Engine(db_url):
        pass
    eng = sqlalchemy.create_engine(resolve_url(db_url))
    with eng.begin() as conn:
        conn.execute(sqlalchemy.text("DROP INDEX ix_task_instance_name"))
        conn.execute(sqlalchemy.text("DROP INDEX ix_task_instance_status"))
        conn.execute(
            sqlalchemy.text("CREATE INDEX ix_task_instance_status ON task_instance (status)")
        )
    with Engine(db_url):
        pass
    with eng.connect() as conn:
        indexes = sqlalchemy.inspect(conn).get_indexes("task_instance")
    eng.dispose()
    columns = {i["name"]: i["column_names"] for i in indexes}
    assert columns["ix_task_instance_name"] == ["name", "id"]
    assert columns["ix_task_instance_status"] == ["status", "id"]
