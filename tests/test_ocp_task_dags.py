"""The tasks OCP documents, as OCP's pages show them, through a real server on sandbox hosts:
batchAdd's "Install obproxy" per host (12 nodes, OCP's timeouts, classNames and context keys)
and the delete's 8-node "Offline obproxy", each node saying in its log what it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures import install_request, register_ob_cluster
from tests.api_helpers import data_of, error_of, wait_task
from tests.conftest import ApiEnv
from tests.ocp_docs import page, send_sample

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
OLD = "obproxy-4.3.2.0-1.el7.x86_64.rpm"
CLUSTERS = "/api/v2/obproxy/clusters"
pytestmark = pytest.mark.timeout(300)


def _chain(sample: dict[str, Any]) -> list[tuple[str, int, str | None, int]]:
    """(name, timeout, className, parallelIdx) of a sample task's subtasks, in DAG order (its
    upstreams and downstreams by id; the docs list subtasks in no order)."""
    by_id = {s["id"]: s for s in sample["subtasks"]}
    order: list[dict[str, Any]] = []
    ready = [s for s in sample["subtasks"] if not s["upstreams"]]
    while ready:
        sub = ready.pop(0)
        order.append(sub)
        for down in sub["downstreams"]:
            if all(u in {o["id"] for o in order} for u in by_id[down]["upstreams"]):
                ready.append(by_id[down])
    return [(s["name"], s["timeout"], s.get("className"), s["parallelIdx"]) for s in order]


def _ours(task: dict[str, Any]) -> list[tuple[str, int, str | None, int]]:
    """The same of our task, one copy per split node (the samples have one host)."""
    seen, order = set(), []
    for sub in sorted(task["subtasks"], key=lambda s: s["seriesId"]):
        if sub["name"] not in seen:
            seen.add(sub["name"])
            order.append((sub["name"], sub["timeout"], sub.get("className"), sub["parallelIdx"]))
    return order


@pytest.fixture
def env(api_hosts: tuple[ApiEnv, list[int], dict]) -> tuple[ApiEnv, list[int]]:
    api_env, ids, _ = api_hosts
    register_ob_cluster(api_env.engine, "proxyro-Secret-4711")
    return api_env, ids


def done(client: httpx.Client, task_id: int) -> dict[str, Any]:
    final = wait_task(client, task_id, timeout=200)
    assert final["status"] == "SUCCESSFUL", [
        (s["name"], s["status"]) for s in final["subtasks"] if s["status"] != "SUCCESSFUL"
    ]
    return final


def test_batch_add_is_a_task_per_host_and_delete_is_ocps_offline(
    env: tuple[ApiEnv, list[int]],
) -> None:
    api, hosts = env
    add_page = page("obproxy-management/add-obproxy-1")
    docs_task = add_page["sample_response"]["data"]["contents"][0]
    with api.client() as client:
        created = data_of(client.post(CLUSTERS, json=install_request(hosts[:1])))
        done(client, created["id"])
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]
        url = f"{CLUSTERS}/{cid}"

        def body(sample: dict[str, Any]) -> dict[str, Any]:  # the docs' body, our hosts/package
            return {**sample, "hostIds": hosts[1:], "version": OLD}

        answer = send_sample(client, "obproxy-management/add-obproxy-1", body=body, id=cid)
        tasks = data_of(answer)["contents"]
        assert [t["hostId"] for t in tasks] == hosts[1:]
        assert len({t["id"] for t in tasks}) == 2
        # While they run, no other operation on the cluster: the refusal names one of them.
        first = data_of(client.get(url))["obproxies"][0]["id"]
        busy = error_of(client.post(f"{url}/obproxies/{first}/restart"), 409, 10005)
        assert any(f"held by task {t['id']} (Install obproxy)" in busy["message"] for t in tasks)
        for task in tasks:
            assert task["name"] == docs_task["name"] == "Install obproxy"
            assert _ours(task) == _chain(docs_task)  # names, order, timeouts, classNames, -1
            keys = set(task["context"]["stringMap"]) | set(task["context"]["listMap"])
            docs_keys = set(docs_task["context"]["stringMap"]) | set(
                docs_task["context"]["listMap"]
            )
            assert docs_keys <= keys, docs_keys - keys
            assert task["context"]["stringMap"]["host_id"] == str(task["hostId"])
            assert task["context"]["stringMap"]["package_version"] == "4.3.2.0-1"  # OCP's shape
            assert task["context"]["stringMap"]["package_name"] == "obproxy"
            done(client, task["id"])
        servers = data_of(client.get(url))["obproxies"]
        assert [(s["hostId"], s["status"]) for s in servers] == [(h, "RUNNING") for h in hosts]
        by_host = {s["hostId"]: s["id"] for s in servers}
        # Hosts that run an OBProxy already: each refused at its own place in hostIds.
        again = {"hostIds": [hosts[2], hosts[1]], "sqlPort": 2883, "exporterPort": 2884,
                 "version": OLD}  # fmt: skip
        err = error_of(client.post(f"{url}/obproxies/batchAdd", json=again), 400, 10001)
        assert [e["field"] for e in err["subErrors"]] == ["hostIds[0]", "hostIds[1]"], err
        for task in tasks:
            assert task["context"]["stringMap"]["obproxy_server_id"] == str(by_host[task["hostId"]])

        # Delete one of three: OCP's eight nodes, each saying what it did.
        docs_offline = page("obproxy-management/delete-obproxy")["sample_response"]["data"]
        deleted = data_of(client.delete(f"{url}/obproxies/{by_host[hosts[1]]}"))
        assert deleted["name"] == "Offline obproxy"
        assert _ours(deleted) == [
            (name, timeout, cls, 0 if idx >= 0 else -1)
            for name, timeout, cls, idx in _chain(docs_offline)
        ]
        final = done(client, deleted["id"])
        said = {}
        for sub in final["subtasks"]:
            log = client.get(f"/api/v2/tasks/instances/{final['id']}/subtasks/{sub['id']}/log")
            said[sub["name"]] = data_of(log)["log"]
        host = hosts[1]
        assert "OBProxy cluster" in said["Start node"]
        assert f"on host {host}: RUNNING -> DELETING" in said["Prepare offline obproxy"]
        assert "every host prepared (1" in said["Wait node"]
        assert "removed" in said["Stop and uninstall obproxy"]
        assert (
            f"removed OBProxy server {by_host[host]} on host {host}" in said["Delete obproxy info"]
        )
        assert f"host {host}: the exporter at" in said["Offline obproxy exporter"]
        assert f"released hosts {host}" in said["Unreserve host"]
        assert "the cluster stays" in said["Finish node"]
        assert [s["hostId"] for s in data_of(client.get(url))["obproxies"]] == [hosts[0], hosts[2]]
