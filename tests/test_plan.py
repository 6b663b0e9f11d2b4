"""``obproxy create --plan`` and ``POST /api/v2/obproxy/clusters?plan=true``: the task a create
would submit, validated as the create validates, with no row written and no host contacted.

The hosts are registered at addresses where nothing listens: a plan that tried to reach one
would fail or hang, so an answer at all shows none was contacted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from engine import Engine, RequestInvalid
from fixtures import install_request, register_ob_cluster
from tasks.obproxy import plan_cluster
from tests.api_helpers import data_of, error_of
from tests.conftest import ApiEnv

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
runner = CliRunner()


def add_hosts(engine: Engine) -> list[int]:
    register_ob_cluster(engine, "proxyro-Secret-4711")
    return [
        engine.hosts.add(
            {
                "name": f"quiet{i}",
                "innerIpAddress": f"127.0.0.{70 + i}",
                "username": "admin",
                "password": "never-used",
                "trustOnFirstUse": True,
            }
        ).id
        for i in range(3)
    ]


def row_counts(db: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0] != "audit_event"  # a refusal is recorded as an event, by design
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def check_plan(plan: dict[str, Any], host_ids: list[int]) -> None:
    subs = plan["subtasks"]
    assert plan["name"] == "Install obproxy" and len(subs) == 32
    assert [s["seriesId"] for s in subs] == list(range(32))
    assert subs[0]["name"] == "Prepare obproxy install" and subs[0]["host"] is None
    assert subs[-1]["name"] == "Finish node" and subs[-1]["timeout"] == 0
    on_hosts = [s for s in subs if s["host"]]
    assert len(on_hosts) == 30
    # OCP's per-host chain opens with the first SSH contact (which the plan does not make).
    prepare = [s for s in on_hosts if s["name"] == "Prepare create obproxy"]
    assert len(prepare) == 3 and {s["timeout"] for s in prepare} == {1800}
    assert all(s["upstreams"] == [0] for s in prepare)
    refresh = [s for s in on_hosts if s["name"] == "Refresh ocp agent config"]
    assert len(refresh) == 3 and {s["timeout"] for s in refresh} == {3600}
    assert {s["host"]["id"] for s in on_hosts} == set(host_ids)
    assert {s["host"]["address"] for s in on_hosts} == {"127.0.0.70", "127.0.0.71", "127.0.0.72"}
    install = next(s for s in on_hosts if s["name"] == "Install rpm by package and version")
    assert install["timeout"] == 3600 and "unpacks it" in install["changes"]
    assert sum(len(s["upstreams"]) for s in subs) == 33


def test_plan_writes_nothing_and_contacts_no_host(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    with Engine(str(db_path)) as engine:
        host_ids = add_hosts(engine)
        before = row_counts(str(db_path))
        check_plan(plan_cluster(engine, install_request(host_ids)), host_ids)
        with pytest.raises(RequestInvalid, match=r"hostIds\[0\]: host 999 does not exist"):
            plan_cluster(engine, install_request([999]))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(install_request(host_ids)))
    db = ["--db", str(db_path)]
    as_json = runner.invoke(app, ["obproxy", "create", str(request), "--plan", "--json", *db])
    assert as_json.exit_code == 0, as_json.output
    check_plan(json.loads(as_json.stdout), host_ids)
    table = runner.invoke(app, ["obproxy", "create", str(request), "--plan", *db])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].startswith("would submit Install obproxy for OBProxy cluster 'OBProxy001'")
    assert "32 subtasks, 3 hosts" in lines[0]
    assert sum("quiet1 (127.0.0.71:22)" in line for line in lines) == 10
    assert row_counts(str(db_path)) == before


def test_plan_over_http(api_env: ApiEnv) -> None:
    host_ids = add_hosts(api_env.engine)
    before = row_counts(api_env.db)
    with api_env.client() as client:
        url = "/api/v2/obproxy/clusters?plan=true"
        check_plan(data_of(client.post(url, json=install_request(host_ids))), host_ids)
        err = error_of(client.post(url, json=install_request([999])), 400, 10001)
        assert err["target"] == "obproxyInstallParam.hostIds[0]"
    assert row_counts(api_env.db) == before
