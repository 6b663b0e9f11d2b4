"""The records of OBProxy clusters and OceanBase clusters carry every field OCP documents
(``800.obproxy-management/300``, ``400``; ``450.cluster-information/100``, OCP 4.2.2), each with a
value from OCP's documented set, filled from what really happened: a 3-host create, a restart
watched while it runs, a stop, edits, all through a real ``ocptask serve``."""

from __future__ import annotations

import ipaddress
import platform
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import RequestInvalid
from engine.task import shown_executor
from fixtures import install_request, register_ob_cluster, sample_request
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters
from tasks.obproxy.packages import shown_version
from tests.api_helpers import data_of, error_of, wait_task
from tests.conftest import ApiEnv
from tests.ocp_docs import compare, page, send_sample

CLUSTERS = "/api/v2/obproxy/clusters"
OB_CLUSTERS = "/api/v2/ob/clusters"
pytestmark = pytest.mark.timeout(300)

# The documented keys (workMode: in every sample, not in the tables).
CLUSTER_KEYS = {
    "id", "name", "parameterVersion", "creatorId", "creatorName", "createTime", "updateTime",
    "configUrl", "address", "port", "workMode", "obLinks", "versions", "topo", "obproxies",
}  # fmt: skip
SERVER_KEYS = {
    "id", "clusterId", "hostId", "idcName", "lastActiveTime", "parameterVersion", "ip",
    "sqlPort", "exporterPort", "version", "status", "operateStatus", "architecture",
}  # fmt: skip
LINK_KEYS = {
    "clusterId", "clusterName", "username", "status", "connections", "obClusterId", "clusterType",
}  # fmt: skip
# OCP's enums, read from its own pages (fixtures/ocp_docs), not copied here.
DETAIL = page("obproxy-management/querying-details-about-an-obproxy-cluster")["enums"]
SERVER_STATUSES = set(DETAIL["data.obproxies.status"])
LINK_STATUSES = set(DETAIL["data.obLinks.status"])
OB_CLUSTER_KEYS = {
    "primaryCluster", "standbyClusters", "id", "name", "obClusterId", "obVersion", "status",
    "regionCount", "rootServers", "type", "tenantCount", "partitionCount", "serverCount",
    "delayTime", "syncStatus", "zones", "createTime", "updateTime", "creator",
    "failToQueryFromObReason",
}  # fmt: skip
OB_CLUSTER_STATUSES = set(page("cluster-information/query-clusters")["enums"]["status"])


# Beyond the docs' sample cluster: fields the page's table documents that the sample leaves out
# (a primary cluster's), and ocptask's own (the registered rsList and configUrl).
OB_CLUSTER_EXTRAS = {
    f"data.contents[].{name}"
    for name in (
        "primaryCluster", "partitionCount", "delayTime", "syncStatus", "updateTime",
        "failToQueryFromObReason", "rsList", "configUrl",
    )
}  # fmt: skip


def conforms(cluster: dict[str, Any]) -> None:
    """Every documented key, every enum value in its documented set."""
    assert CLUSTER_KEYS <= set(cluster), CLUSTER_KEYS - set(cluster)
    for link in cluster["obLinks"]:
        assert set(link) == LINK_KEYS
        assert link["status"] in LINK_STATUSES | {None}
        assert link["clusterType"] in {"PRIMARY", "STANDBY", None}
    for proxy in cluster["obproxies"]:
        assert set(proxy) == SERVER_KEYS
        assert proxy["status"] in SERVER_STATUSES, proxy
        assert proxy["operateStatus"] in DETAIL["data.obproxies.operateStatus"], proxy
    assert sum(v["count"] for v in cluster["versions"]) == len(cluster["obproxies"])
    assert sum(t["count"] for t in cluster["topo"]) == len(cluster["obproxies"])


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def until(check: Any, what: str, timeout: float = 120) -> Any:
    """Poll ``check`` until it answers something true (a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
    return found


@pytest.fixture
def hosts_env(api_hosts: tuple[ApiEnv, list[int], dict]) -> tuple[ApiEnv, list[int], dict]:
    env, ids, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    homes = {h.address: Path(h.home) for h in sandbox_hosts.load(sandbox["state"])}
    return env, ids, {i: homes[env.engine.hosts.get(i).inner_ip_address] for i in ids}


def test_records_through_create_restart_and_stop(hosts_env: Any) -> None:
    env, hosts, homes = hosts_env
    with env.client() as client:
        created = data_of(client.post(CLUSTERS, json=install_request(hosts)))
        assert wait_task(client, created["id"], timeout=200)["status"] == "SUCCESSFUL"
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]
        url = f"{CLUSTERS}/{cid}"

        def cluster() -> dict[str, Any]:
            view = data_of(client.get(url))
            conforms(view)
            return view

        after_create = cluster()
        proxies = after_create["obproxies"]
        assert [p["status"] for p in proxies] == ["RUNNING"] * 3
        assert {p["operateStatus"] for p in proxies} == {"NORMAL"}
        # The release, as OCP shows it; the hosts' own architecture; the create's parameters
        # are the cluster's version 1, which every OBProxy applied.
        assert after_create["versions"] == [{"version": "4.3.2.0-1", "count": 3}]
        assert {p["architecture"] for p in proxies} == {platform.machine()}
        assert after_create["parameterVersion"] == 1
        assert {p["parameterVersion"] for p in proxies} == {1}
        assert when(after_create["updateTime"]) > when(after_create["createTime"])
        assert after_create["obLinks"] == [
            {
                "clusterId": 1,
                "clusterName": "hooray",
                "username": "proxyro",
                "status": "RUNNING",
                "connections": None,
                "obClusterId": 1,
                "clusterType": "PRIMARY",
            }
        ]
        assert data_of(client.get(CLUSTERS))["contents"] == [after_create]
        # The docs' own sample requests, answered key for key as their sample responses.
        for key, ids in (
            ("obproxy-management/queries-the-obproxy-cluster-list", {}),
            ("obproxy-management/querying-details-about-an-obproxy-cluster", {"id": cid}),
        ):
            assert compare(send_sample(client, key, **ids), key) == (set(), set())

        edit = "obproxy-management/update-obproxy-cluster-configuration"
        response = send_sample(client, edit, id=cid)  # {"address": "foo.bar", "port": 2883}
        assert compare(response, edit) == (set(), set())
        patched = response.json()["data"]
        assert (patched["address"], patched["port"]) == ("foo.bar", 2883)
        assert when(patched["updateTime"]) > when(after_create["updateTime"])
        conforms(patched)

        # A restart held at its first host's start: watched while it runs.
        first = proxies[0]
        hold = homes[first["hostId"]] / ".obproxy-standin-hold"
        hold.touch()
        try:
            ids = ",".join(str(p["id"]) for p in proxies)
            restart = data_of(client.post(f"{url}/obproxies/{ids}/restart"))

            def held_start() -> bool:
                task = data_of(client.get(f"/api/v2/tasks/instances/{restart['id']}"))
                return any(
                    s["name"] == "Start obproxy process"
                    and s["parallelIdx"] == 0
                    and s["status"] == "RUNNING"
                    for s in task["subtasks"]
                )

            until(held_start, "the first host's start runs")
            during = cluster()
            # The host being restarted and those waiting their turn: RESTARTING; the cluster
            # is held, so no operation on any of its OBProxies is accepted: OPERATING.
            assert [p["status"] for p in during["obproxies"]] == ["RESTARTING"] * 3
            assert {p["operateStatus"] for p in during["obproxies"]} == {"OPERATING"}
            assert data_of(client.get(CLUSTERS))["contents"] == [during]
            running = data_of(client.get(f"/api/v2/tasks/instances/{restart['id']}"))
            ipaddress.ip_address(running["executor"])  # OCP shows the executing node's IP
        finally:
            hold.unlink(missing_ok=True)
        final = wait_task(client, restart["id"], timeout=200)
        assert final["status"] == "SUCCESSFUL"
        for sub in final["subtasks"]:
            ipaddress.ip_address(sub["executor"])
        restarted = cluster()
        assert [p["status"] for p in restarted["obproxies"]] == ["RUNNING"] * 3
        assert {p["operateStatus"] for p in restarted["obproxies"]} == {"NORMAL"}
        assert when(restarted["updateTime"]) > when(patched["updateTime"])
        assert {p["parameterVersion"] for p in restarted["obproxies"]} == {1}  # re-applied
        for before, after in zip(proxies, restarted["obproxies"], strict=True):
            assert when(after["lastActiveTime"]) > when(before["lastActiveTime"])

        stop = data_of(client.post(f"{url}/servers/stop", json={"obproxyServerIds": [first["id"]]}))
        assert wait_task(client, stop["id"], timeout=200)["status"] == "SUCCESSFUL"
        stopped = cluster()
        # OCP 4.2's enum has no stopped value (no 4.3 API page found documents one).
        assert [p["status"] for p in stopped["obproxies"]] == ["UNAVAILABLE", "RUNNING", "RUNNING"]
        assert when(stopped["updateTime"]) > when(restarted["updateTime"])
        again = client.post(f"{url}/servers/stop", json={"obproxyServerIds": [first["id"]]})
        assert "is UNAVAILABLE (stopped)" in error_of(again, 400, 10001)["message"]


def test_obproxy_list_sorts_by_documented_fields_only(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        for name in ("b-cluster", "a-cluster"):
            task = data_of(client.post(CLUSTERS, json=sample_request() | {"name": name}))
            assert wait_task(client, task["id"], timeout=60)["status"] == "SUCCESSFUL"

        def names(query: str) -> list[str]:
            page = data_of(client.get(f"{CLUSTERS}?{query}"))
            for cluster in page["contents"]:
                conforms(cluster)
            return [c["name"] for c in page["contents"]]

        assert names("page=1") == ["a-cluster", "b-cluster"]  # newest first, as OCP's lists
        assert names("sort=name,asc") == ["a-cluster", "b-cluster"]
        assert names("sort=name,desc") == ["b-cluster", "a-cluster"]
        assert names("sort=createTime,desc") == ["a-cluster", "b-cluster"]
        for bad in ("bogus,asc", "name,up", "obproxies,asc"):
            assert error_of(client.get(f"{CLUSTERS}?sort={bad}"), 400, 10011)["target"] == "sort"

        # No parameters at create: version 0; every change of the record moves updateTime.
        url = f"{CLUSTERS}/{data_of(client.get(CLUSTERS))['contents'][-1]['id']}"
        view = data_of(client.get(url))
        assert view["parameterVersion"] == 0 and view["obproxies"] == []
        ObClusters(api_env.engine).add(7, "ob7", rs_list="127.0.0.1:2881", password="pw")
        link = {"clusterName": "ob7", "obClusterId": 7, "username": "proxyro"}
        stamps = [view["updateTime"]]
        assert client.post(f"{url}/obLinks/batchAdd", json=[link]).status_code == 200
        stamps.append(data_of(client.get(url))["updateTime"])
        assert client.delete(f"{url}/obLinks/ob7").status_code == 200
        stamps.append(data_of(client.get(url))["updateTime"])
        stamps.append(data_of(client.patch(url, json={"port": 3306}))["updateTime"])
        unchanged = data_of(client.patch(url, json={}))["updateTime"]
        assert [when(s) for s in stamps] == sorted({when(s) for s in stamps})  # each moved
        assert unchanged == stamps[-1]  # nothing changed


def test_ob_clusters_as_ocp_lists_them(api_env: ApiEnv) -> None:
    registry = ObClusters(api_env.engine)
    registry.add(3, "Hooray", rs_list="10.0.0.1:2882:2881;10.0.0.2:2882:2881", password="pw")
    registry.add(1, "other", rs_list="10.0.0.9:2881", password="pw")
    registry.add(2, "hooray_2", rs_list="[::1]:2882:2881", password="pw")
    with api_env.client() as client:

        def listed(query: str = "") -> list[str]:
            page = data_of(client.get(f"{OB_CLUSTERS}?{query}"))
            for cluster in page["contents"]:
                assert OB_CLUSTER_KEYS <= set(cluster), OB_CLUSTER_KEYS - set(cluster)
                assert cluster["status"] in OB_CLUSTER_STATUSES
                assert cluster["type"] in {"PRIMARY", "STANDBY"}
            assert page["page"]["totalElements"] == len(page["contents"])
            return [c["name"] for c in page["contents"]]

        assert listed() == ["Hooray", "hooray_2", "other"]  # newest (highest id) first
        key = "cluster-information/query-clusters"
        assert compare(send_sample(client, key), key) == (set(), OB_CLUSTER_EXTRAS)
        three = data_of(client.get(f"{OB_CLUSTERS}/3"))
        assert three["rootServers"] == [
            {"address": "10.0.0.1:2882", "role": None, "sql_port": 2881},
            {"address": "10.0.0.2:2882", "role": None, "sql_port": 2881},
        ]
        assert (three["status"], three["obClusterId"], three["obVersion"]) == ("RUNNING", 3, None)
        # Registered with SQL ports only: the RPC address is not known.
        one = data_of(client.get(f"{OB_CLUSTERS}/1"))
        assert one["rootServers"] == [{"address": None, "role": None, "sql_port": 2881}]
        assert data_of(client.get(f"{OB_CLUSTERS}/2"))["rootServers"][0]["address"] == "[::1]:2882"
        # obproxy is handed the SQL ports either way.
        assert registry.get(3).proxy_rs_list == "10.0.0.1:2881;10.0.0.2:2881"

        assert listed("name=HOORAY") == ["Hooray", "hooray_2"]  # a keyword, any case
        assert listed("name=_") == ["hooray_2"]  # taken literally, not as a LIKE wildcard
        assert listed("sort=name,asc") == ["Hooray", "hooray_2", "other"]
        assert listed("sort=obClusterId,desc") == ["Hooray", "hooray_2", "other"]
        assert listed("status=RUNNING") == listed()
        assert listed("status=STOPPED") == []
        assert listed("status=STOPPED&status=RUNNING") == listed("status=STOPPED,RUNNING")
        assert listed("status=STOPPED,RUNNING") == listed()
        err = error_of(client.get(f"{OB_CLUSTERS}?status=RUNNING,BOGUS"), 400, 10001)
        assert err["target"] == "status" and err["subErrors"][0]["rejectedValue"] == "BOGUS"
        assert error_of(client.get(f"{OB_CLUSTERS}?sort=rsList,asc"), 400, 10011)["target"] == (
            "sort"
        )


def test_registry_takes_both_root_server_forms_and_refuses_others(api_env: ApiEnv) -> None:
    registry = ObClusters(api_env.engine)
    for bad in ("10.0.0.1", "10.0.0.1:0", "10.0.0.1:2882:70000", "host:2882:2881", "1.2.3.4:x"):
        with pytest.raises(RequestInvalid) as refused:
            registry.add(4, "four", rs_list=bad, password="pw")
        assert refused.value.fields == ["rsList"], bad
    assert registry.find(4) is None


@pytest.mark.parametrize(
    ("package", "shown"),
    [
        ("obproxy-1.9.1.1-1919579.el7.x86_64.rpm", "1.9.1.1-1919579"),  # OCP's own sample
        ("obproxy-ce-4.3.2.0-1.el7.x86_64.rpm", "4.3.2.0-1"),
        ("obproxy-4.3.2.0-26.al8.aarch64.rpm", "4.3.2.0-26"),
        ("obproxy-4.3.2.0-0.1.el8.noarch.rpm", "4.3.2.0-0.1"),
        ("not-a-package", "not-a-package"),
    ],
)
def test_version_is_shown_with_its_release(package: str, shown: str) -> None:
    assert shown_version(package) == shown


@pytest.mark.parametrize(
    ("executor", "shown"),
    [
        ("10.1.2.3:4242", "10.1.2.3"),  # the engine's "<ip>:<pid>": OCP shows the node's IP
        ("::1:77", "::1"),
        ("proxy-ops-1", "proxy-ops-1"),  # a daemon's --name is shown as it was given
        ("proxy-ops:1", "proxy-ops:1"),
        (None, None),
    ],
)
def test_executor_is_shown_as_the_node(executor: str | None, shown: str | None) -> None:
    assert shown_executor(executor) == shown


def test_rows_without_the_new_columns_read_as_they_were(api_env: ApiEnv) -> None:
    """Columns added here are NULL in an older database's rows: they read as that row did."""
    with api_env.client() as client:
        task = data_of(client.post(CLUSTERS, json=sample_request()))
        assert wait_task(client, task["id"], timeout=60)["status"] == "SUCCESSFUL"
        db = sqlite3.connect(api_env.db)
        with db:
            db.execute("UPDATE obproxy_cluster SET update_time = NULL, parameter_version = NULL")
        db.close()
        view = data_of(client.get(CLUSTERS))["contents"][0]
        assert (view["updateTime"], view["parameterVersion"]) == (view["createTime"], 0)
        assert data_of(client.get(f"{CLUSTERS}?sort=updateTime,desc"))["contents"] == [view]


def test_openapi_promises_the_documented_fields(api_env: ApiEnv) -> None:
    schemas = httpx.get(f"{api_env.url}/openapi.json", timeout=10).json()["components"]["schemas"]
    assert set(schemas["ObproxyCluster"]["properties"]) == CLUSTER_KEYS
    assert set(schemas["ObproxyServer"]["properties"]) == SERVER_KEYS
    assert set(schemas["ObLinkOut"]["properties"]) == LINK_KEYS
    assert OB_CLUSTER_KEYS <= set(schemas["ObCluster"]["properties"])
