"""The host registry: validation, import from an inventory, credentials kept out of sight."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine import Engine, NotFound, RequestInvalid

GOOD = {
    "name": "db1",
    "innerIpAddress": "127.0.0.11",
    "sshPort": 2222,
    "username": "ocpsbx1",
    "password": "pa55-word-secret",
}


def test_add_get_list_remove(engine: Engine) -> None:
    host = engine.hosts.add(GOOD)
    assert engine.hosts.get(host.id) == host
    assert [h.name for h in engine.hosts.list()] == ["db1"]
    again = engine.hosts.add(GOOD | {"sshPort": 22})  # same name: an update
    assert again.id == host.id and again.ssh_port == 22
    assert "password" not in json.dumps(again.to_ocp()) and "pa55" not in repr(again)
    assert "pa55" not in repr(engine.hosts.target(host.id))
    assert engine.hosts.target(host.id).password == GOOD["password"]
    engine.hosts.remove(host.id)
    with pytest.raises(NotFound):
        engine.hosts.get(host.id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"innerIpAddress": "not-an-ip"}, "innerIpAddress"),
        ({"sshPort": 0}, "sshPort"),
        ({"sshPort": "22"}, "sshPort"),
        ({"username": "x; rm -rf /"}, "username"),
        ({"privateKeyPath": "/k"}, "privateKeyPath"),  # both key and password
        ({"hostKey": "garbage"}, "hostKey"),
    ],
)
def test_bad_hosts_are_rejected_by_field(engine: Engine, change: dict, field: str) -> None:
    with pytest.raises(RequestInvalid) as err:
        engine.hosts.add(GOOD | change)
    assert field in err.value.fields
    assert engine.hosts.list() == []


def test_cli_import_and_list(db_path: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"hosts": [GOOD, GOOD | {"name": "db2"}]}))
    runner = CliRunner()
    result = runner.invoke(app, ["host", "import", str(inventory), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["host", "list", "--db", str(db_path)])
    assert "db1" in listed.output and "db2" in listed.output
    assert "pa55" not in result.output + listed.output
    with sqlite3.connect(db_path) as conn:
        (hosts_text,) = conn.execute(
            "SELECT group_concat(name || host_key) FROM host"
        ).fetchone() or ("",)
    assert "pa55" not in str(hosts_text)


def test_passwords_are_encrypted_at_rest(engine: Engine, db_path: Path) -> None:
    host = engine.hosts.add(GOOD)
    for path in db_path.parent.glob(db_path.name + "*"):
        assert b"pa55-word-secret" not in path.read_bytes()
    assert (db_path.parent / "secret.key").stat().st_mode & 0o077 == 0
    # Another Engine on the same database (and key) reads it back.
    with Engine(str(db_path)) as other:
        assert other.hosts.target(host.id).password == GOOD["password"]


def test_batch_create_takes_publish_ports_as_ocp_documents_them(engine: Engine) -> None:
    """``publishPorts`` is a StringArray on OCP's batchCreate page (a String on the host record):
    the array is kept as the record's comma list; anything but mappings is a field error."""
    from tasks.hosts import batch_create_hosts

    credential = engine.credentials.add("ops", "root", password="pw-ops-12345")
    body = {
        "hostBasicDataList": [{"innerIpAddress": "127.0.0.98"}],
        "sshPort": 22,
        "credentialId": credential.id,
        "kind": "DEDICATED_CONTAINER",
        "publishPorts": ["8080:8080", "8090:8090"],
    }
    (task,) = batch_create_hosts(engine, body)
    (host,) = engine.hosts.list()
    assert host.publish_ports == "8080:8080,8090:8090"
    assert task.context.string_map["host_id"] == str(host.id)
    with pytest.raises(RequestInvalid) as refused:
        batch_create_hosts(engine, {**body, "publishPorts": [8080]})
    assert [e.field for e in refused.value.errors] == ["publishPorts"]
