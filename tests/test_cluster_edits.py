"""Cluster edits without tasks (address and port, obLinks), through the HTTP API, the CLI and
the embedded calls, against a real ``ocptask serve`` on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import Engine, NotFound, RequestInvalid
from fixtures import install_request, register_ob_cluster, sample_request
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import add_links, edit_cluster, remove_link
from tests.api_helpers import data_of, error_of, run_cli, wait_task
from tests.conftest import ApiEnv

OB7 = {"clusterName": "ob7", "obClusterId": 7, "username": "proxyro"}


def _create(client, **changes) -> int:  # type: ignore[no-untyped-def]
    body = sample_request() | changes
    task = data_of(client.post("/api/v2/obproxy/clusters", json=body))
    assert wait_task(client, task["id"], timeout=60)["status"] == "SUCCESSFUL"  # it holds till then
    clusters = data_of(client.get("/api/v2/obproxy/clusters"))["contents"]
    return next(c["id"] for c in clusters if c["name"] == body["name"])


def _links(client, cluster_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    cluster = data_of(client.get(f"/api/v2/obproxy/clusters/{cluster_id}"))
    return [link["clusterName"] for link in cluster["obLinks"]]


def test_address_port_and_links_over_http_and_cli(api_env: ApiEnv, tmp_path: Path) -> None:
    with Engine(api_env.db) as engine:
        ObClusters(engine).add(7, "ob7", rs_list="127.0.0.1:2881", password="pw")
    with api_env.client() as client:
        cluster_id = _create(client)
        url = f"/api/v2/obproxy/clusters/{cluster_id}"

        patched = data_of(client.patch(url, json={"address": "proxy.example", "port": 3306}))
        assert (patched["address"], patched["port"]) == ("proxy.example", 3306)
        kept = data_of(client.patch(url, json={"port": 3307}))
        assert (kept["address"], kept["port"]) == ("proxy.example", 3307)  # address untouched
        bad = error_of(client.patch(url, json={"port": 70000}), 400, 10001)
        assert bad["target"] == "port"
        error_of(client.patch("/api/v2/obproxy/clusters/999", json={"port": 1}), 404, 10002)

        assert data_of_empty(client.post(f"{url}/obLinks/batchAdd", json=[OB7]))
        assert _links(client, cluster_id) == ["hooray", "ob7"]
        again = error_of(client.post(f"{url}/obLinks/batchAdd", json=[OB7]), 400, 10001)
        assert again["target"] == "obLinks[0].clusterName"
        unknown = OB7 | {"obClusterId": 99}
        err = error_of(client.post(f"{url}/obLinks/batchAdd", json=[unknown]), 400, 10001)
        assert err["target"] == "obLinks[0].obClusterId"
        error_of(client.post(f"{url}/obLinks/batchAdd", json=[]), 400, 10001)

        removed = run_cli(api_env.db, "obproxy", "link-remove", str(cluster_id), "ob7")
        assert removed.returncode == 0, removed.stderr
        assert _links(client, cluster_id) == ["hooray"]
        missing = run_cli(api_env.db, "obproxy", "link-remove", str(cluster_id), "ob7")
        assert missing.returncode == 3 and "no obLink 'ob7'" in missing.stderr
        error_of(client.delete(f"{url}/obLinks/ob7"), 404, 10002)

        links_file = tmp_path / "links.json"
        links_file.write_text(json.dumps([OB7]))
        linked = run_cli(api_env.db, "obproxy", "link-add", str(cluster_id), str(links_file))
        assert linked.returncode == 0, linked.stderr
        assert data_of_empty(client.delete(f"{url}/obLinks/ob7"))
        edited = run_cli(api_env.db, "obproxy", "edit", str(cluster_id), "--port", "2883")
        assert edited.returncode == 0 and json.loads(edited.stdout)["port"] == 2883
        assert data_of(client.get(url))["port"] == 2883


def test_rs_list_cluster_keeps_its_one_link(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        cluster_id = _create(client, name="rs1", workMode="RS_LIST")
        url = f"/api/v2/obproxy/clusters/{cluster_id}"
        err = error_of(client.delete(f"{url}/obLinks/hooray"), 400, 10001)
        assert err["target"] == "obClusterName"
    with Engine(api_env.db) as engine:
        ObClusters(engine).add(7, "ob7", rs_list="127.0.0.1:2881", password="pw")
        with pytest.raises(RequestInvalid, match="RS_LIST"):
            add_links(engine, cluster_id, [OB7])
        with pytest.raises(NotFound):
            remove_link(engine, cluster_id, "nothing")
        assert edit_cluster(engine, cluster_id, {"address": None})["address"] is None


def data_of_empty(response) -> bool:  # type: ignore[no-untyped-def]
    """A success without data (OCP's calls that return nothing)."""
    body = response.json()
    assert response.status_code == 200 and body["successful"] is True, body
    assert "data" not in body
    return True


def test_an_edit_is_refused_while_a_failed_create_holds_the_cluster(api_env: ApiEnv) -> None:
    """A create on a host that cannot be reached ends FAILED and keeps holding its cluster:
    an edit is refused with 409 naming the task; rolling the create back removes the cluster."""
    with Engine(api_env.db) as engine:
        register_ob_cluster(engine, "pw")
        host = engine.hosts.add(
            {
                "name": "unreachable",
                "innerIpAddress": "127.0.0.254",
                "username": "root",
                "privateKeyPath": "/nonexistent",
            }
        )
    with api_env.client() as client:
        body = install_request([host.id], name="held")
        task = data_of(client.post("/api/v2/obproxy/clusters", json=body))
        assert wait_task(client, task["id"], timeout=60)["status"] == "FAILED"
        clusters = data_of(client.get("/api/v2/obproxy/clusters"))["contents"]
        cluster_id = next(c["id"] for c in clusters if c["name"] == "held")
        url = f"/api/v2/obproxy/clusters/{cluster_id}"
        busy = error_of(client.patch(url, json={"port": 3000}), 409, 10005)
        assert f"held by task {task['id']}" in busy["message"] and "FAILED" in busy["message"]
        rolled = data_of(client.post(f"/api/v2/tasks/instances/{task['id']}/rollback"))
        assert wait_task(client, rolled["id"], timeout=60)["status"] == "SUCCESSFUL"
        error_of(client.patch(url, json={"port": 3000}), 404, 10002)  # undone with its create
