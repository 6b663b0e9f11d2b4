"""The CLI's SQLite reader answers exactly what the Engine answers, on every status and filter,
and declines (None) any database it cannot vouch for, so the CLI opens an Engine instead."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from api.auth.user_ids import sqlite_user_ids
from api.auth.users import Users
from engine import Engine, RequestInvalid, TaskType
from engine.clock import utcnow
from engine.reads.sqlite_reader import SqliteReader
from tests import steps
from tests.helpers import chain, split


@pytest.fixture
def filled(db_path: Path) -> None:
    """Tasks SUCCESSFUL, FAILED, RUNNING (never started), split over hosts, by two creators."""
    with Engine(str(db_path)) as engine:
        Users(engine.store).add("operator", "operator-Passw0rd")
        ok = engine.submit(chain("A", "B"), creator="operator")
        engine.run(ok.id)
        steps.FAIL_EXECUTE.add("B")
        try:
            engine.run(engine.submit(chain("A", "B", "C"), payload={"request": {"x": 1}}).id)
        finally:
            steps.FAIL_EXECUTE.discard("B")
        host = engine.hosts.add(
            {
                "name": "h_1%",
                "innerIpAddress": "127.0.0.9",
                "sshPort": 22,
                "username": "u",
                "password": "pw",
            }
        )
        spread = engine.submit(split("PARALLEL"), {"listMap": {"hosts": [str(host.id), "77"]}})
        engine.run(spread.id)
        engine.submit(chain("waiting"), task_type=TaskType.SCHEDULED)


def test_every_read_equals_the_engines(filled: None, db_path: Path) -> None:
    with Engine(str(db_path)) as engine:
        reader = SqliteReader.open(str(db_path))
        assert reader is not None
        everything, total = engine.page(limit=50)
        assert total == 4
        for task in everything:
            mine = reader.get(task.id)
            assert mine == task and mine.payload == task.payload
            assert json.dumps(mine.to_ocp()) == json.dumps(task.to_ocp())  # True is not 1
            assert mine.to_basic(1) == task.to_basic(1)
        hour_ago = utcnow() - timedelta(hours=1)
        filters: list[dict] = [
            {},
            {"statuses": ["failed"]},
            {"statuses": ["SUCCESSFUL", "RUNNING"]},
            {"task_type": "scheduled"},
            {"name": "chain"},
            {"name": "CHAIN"},  # SQLite's LIKE: ASCII case folded, as the Engine's query does
            {"name": "%"},  # a wildcard is a character to look for
            {"name": "_"},
            {"limit": 2},
            {"match": lambda t: t.create_time >= hour_ago, "limit": 3},
            {"match": lambda t: t.status.value == "FAILED"},
        ]
        for given in filters:
            expected, _ = engine.page(**{"limit": 10, **given})
            assert reader.page(**{"limit": 10, **given}) == expected, given
        assert sqlite_user_ids(reader.connection) == Users(engine.store).ids()
        host = engine.hosts.list()[0]
        assert reader.host(host.id) == (host.name, host.inner_ip_address)
        assert reader.host(999) is None and reader.host(2**40) is None
        assert reader.get(999) is None and reader.get(2**70) is None
        with pytest.raises(RequestInvalid) as refused:
            reader.page(statuses=["DONE"])
        assert refused.value.fields == ["status"]
        reader.close()


def test_it_declines_what_it_cannot_vouch_for(tmp_path: Path, db_path: Path) -> None:
    assert SqliteReader.open(str(tmp_path / "missing.db")) is None
    assert SqliteReader.open("postgresql+psycopg://u@127.0.0.1:1/x") is None
    (tmp_path / "text.db").write_text("not a database at all, but long enough to be read " * 40)
    assert SqliteReader.open(str(tmp_path / "text.db")) is None
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as conn:  # a schema without columns the reader needs
        conn.execute("CREATE TABLE task_instance (id INTEGER PRIMARY KEY, name TEXT)")
    assert SqliteReader.open(str(older)) is None
    with Engine(str(db_path)):
        pass
    assert SqliteReader.open(f"sqlite:///{db_path}") is not None
