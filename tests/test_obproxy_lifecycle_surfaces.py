"""The lifecycle calls through the HTTP API (with auth) and through the CLI, on real sandbox
hosts: the same embedded calls, reached the two other ways an operator reaches them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures import install_request, register_ob_cluster
from tests.api_helpers import data_of, error_of, run_cli, wait_task
from tests.conftest import ApiEnv

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
OLD, NEW = "obproxy-4.3.2.0-1.el7.x86_64.rpm", "obproxy-4.3.3.0-1.el7.x86_64.rpm"
CLUSTERS = "/api/v2/obproxy/clusters"
pytestmark = pytest.mark.timeout(300)
# OCP's "Offline obproxy" of one OBProxy, in seriesId order.
OFFLINE_NODES = [
    "Start node",
    "Prepare offline obproxy",
    "Wait node",
    "Stop and uninstall obproxy",
    "Delete obproxy info",
    "Offline obproxy exporter",
    "Unreserve host",
    "Finish node",
]


@pytest.fixture
def hosts_env(
    api_hosts: tuple[ApiEnv, list[int], dict], monkeypatch: pytest.MonkeyPatch
) -> tuple[ApiEnv, list[int]]:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))  # for the CLI's processes
    env, ids, _ = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    return env, ids


def done(client: httpx.Client, task: dict[str, Any]) -> dict[str, Any]:
    final = wait_task(client, task["id"], timeout=200)
    assert final["status"] == "SUCCESSFUL", [
        (s["name"], s["status"]) for s in final["subtasks"] if s["status"] != "SUCCESSFUL"
    ]
    return final


def test_lifecycle_over_http(hosts_env: tuple[ApiEnv, list[int]]) -> None:
    env, hosts = hosts_env
    with env.client() as client:
        done(client, data_of(client.post(CLUSTERS, json=install_request(hosts[:2]))))
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]
        url = f"{CLUSTERS}/{cid}"

        def servers() -> list[dict[str, Any]]:
            return data_of(client.get(url))["obproxies"]

        anonymous = httpx.post(f"{env.url}{url}/obproxies/1/restart", timeout=10)
        assert anonymous.status_code == 401

        add = {"hostIds": [hosts[2]], "sqlPort": 2883, "exporterPort": 2884, "version": OLD}
        added = data_of(client.post(f"{url}/obproxies/batchAdd", json=add))["contents"]
        # As OCP's batchAdd: an "Install obproxy" task per host, naming its host.
        assert len(added) == 1 and added[0]["name"] == "Install obproxy"
        assert added[0]["hostId"] == hosts[2] and added[0]["creator"] == env.user
        done(client, added[0])
        assert [s["status"] for s in servers()] == ["RUNNING"] * 3
        first, second, third = (s["id"] for s in servers())

        # One operation at a time: a stop while the restart runs is refused, naming it.
        restart = data_of(client.post(f"{url}/obproxies/{second}/restart"))
        assert restart["name"] == "Restart obproxy"
        busy = error_of(
            client.post(f"{url}/servers/stop", json={"obproxyServerIds": [first]}), 409, 10005
        )
        assert f"held by task {restart['id']} (Restart obproxy)" in busy["message"]
        done(client, restart)

        one = {"obproxyServerIds": [first]}
        stop = data_of(client.post(f"{url}/servers/stop", json=one))
        assert [s["name"] for s in stop["subtasks"]] == [
            "Start node",
            "Stop obproxy",
            "Finish node",
        ]
        done(client, stop)
        assert servers()[0]["status"] == "UNAVAILABLE"  # OCP 4.2 has no stopped value
        done(client, data_of(client.post(f"{url}/servers/start", json=one)))
        assert servers()[0]["status"] == "RUNNING"

        ids = f"{first},{second},{third}"
        upgrade = data_of(client.post(f"{url}/obproxies/{ids}/upgrade", json={"version": NEW}))
        assert upgrade["name"] == "Upgrade obproxy"
        done(client, upgrade)
        assert data_of(client.get(url))["versions"] == [{"version": "4.3.3.0-1", "count": 3}]

        offline = data_of(client.delete(f"{url}/obproxies/{first}"))
        assert offline["name"] == "Offline obproxy"
        assert [s["name"] for s in offline["subtasks"]] == OFFLINE_NODES
        done(client, offline)
        assert [s["id"] for s in servers()] == [second, third]
        deleted = data_of(client.delete(url))
        assert deleted["name"] == "Offline obproxy"
        done(client, deleted)
        error_of(client.get(url), 404, 10002)


def test_refusals_over_http_name_the_field(hosts_env: tuple[ApiEnv, list[int]]) -> None:
    env, hosts = hosts_env
    with env.client() as client:
        done(client, data_of(client.post(CLUSTERS, json=install_request([], name="empty"))))
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]
        url = f"{CLUSTERS}/{cid}"
        err = error_of(client.post(f"{url}/obproxies/7,x/restart"), 400, 10001)
        assert [e["field"] for e in err["subErrors"]] == ["obproxyIds[1]"]
        err = error_of(client.post(f"{url}/obproxies/7/restart"), 400, 10001)
        assert err["target"] == "obproxyIds[0]" and "has no OBProxy 7" in err["message"]
        stop = client.post(f"{url}/servers/stop", json={"obproxyServerIds": "1"})
        assert error_of(stop, 400, 10001)["target"] == "obproxyServerIds"
        add = {"hostIds": [hosts[0], 999], "sqlPort": 2883, "exporterPort": 2883, "version": OLD}
        err = error_of(client.post(f"{url}/obproxies/batchAdd", json=add), 400, 10001)
        assert {e["field"] for e in err["subErrors"]} == {"exporterPort", "hostIds[1]"}, err
        missing = {"version": "obproxy-9.9.9.9-1.el7.x86_64.rpm"}
        err = error_of(client.post(f"{url}/obproxies/1/upgrade", json=missing), 400, 10001)
        assert err["target"] == "version" and "no package" in err["message"]
        error_of(client.delete(f"{CLUSTERS}/424242"), 404, 10002)
        # A cluster without OBProxies: its delete is OCP's two-node Offline obproxy.
        deleted = data_of(client.delete(url))
        assert [s["name"] for s in deleted["subtasks"]] == ["Start node", "Finish node"]
        done(client, deleted)


def test_lifecycle_through_the_cli(hosts_env: tuple[ApiEnv, list[int]], tmp_path: Path) -> None:
    env, hosts = hosts_env
    request = tmp_path / "create.json"
    request.write_text(json.dumps(install_request(hosts[:2])))

    def cli(*args: str, code: int = 0) -> dict[str, Any]:
        result = run_cli(env.db, "obproxy", *args)
        assert result.returncode == code, result.stdout + result.stderr
        return json.loads(result.stdout) if code == 0 else {}

    assert cli("create", str(request))["status"] == "SUCCESSFUL"
    with env.client() as client:
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]

        def servers() -> list[dict[str, Any]]:
            return data_of(client.get(f"{CLUSTERS}/{cid}"))["obproxies"]

        added = cli("add", str(cid), "--host", str(hosts[2]), "--version", OLD)
        assert added["name"] == "Install obproxy" and added["status"] == "SUCCESSFUL"
        assert added["context"]["stringMap"]["host_id"] == str(hosts[2])
        first, second, third = (str(s["id"]) for s in servers())
        assert cli("restart", str(cid), second)["status"] == "SUCCESSFUL"
        assert cli("stop", str(cid), first)["status"] == "SUCCESSFUL"
        assert servers()[0]["status"] == "UNAVAILABLE"
        assert cli("start", str(cid), first)["status"] == "SUCCESSFUL"
        assert servers()[0]["status"] == "RUNNING"
        ids = f"{first},{second},{third}"
        assert cli("upgrade", str(cid), ids, "--version", NEW)["status"] == "SUCCESSFUL"
        assert {s["version"] for s in servers()} == {"4.3.3.0-1"}
        # A refusal is one line and exit code 2.
        refused = run_cli(env.db, "obproxy", "upgrade", str(cid), ids, "--version", NEW)
        assert refused.returncode == 2 and "already runs 4.3.3.0" in refused.stderr
        assert "Traceback" not in refused.stdout + refused.stderr
        assert cli("delete-obproxies", str(cid), first)["status"] == "SUCCESSFUL"
        assert [s["id"] for s in servers()] == [int(second), int(third)]
        assert cli("delete", str(cid))["status"] == "SUCCESSFUL"
        error_of(client.get(f"{CLUSTERS}/{cid}"), 404, 10002)
