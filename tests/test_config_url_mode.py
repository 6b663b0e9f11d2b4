"""CONFIG_URL mode for real: OBProxies on sandbox hosts (the stand-in, which fetches as obproxy
does) started by a real ``ocptask serve --public-url``, asking that server for their OceanBase
clusters, seeing registry changes at their next refresh, and failing to start, by name, when the
config server does not answer."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pymysql
import pytest

from api.auth.users import Users
from engine import Engine, SubtaskStatus, TaskStatus
from fixtures import PACKAGE, PACKAGE_DIR, api_server, sample_request
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import create_cluster
from tests.api_helpers import data_of, run_cli, wait_task
from tests.conftest import API_PASSWORD, API_USER, ApiEnv

pytestmark = pytest.mark.timeout(300)
PASSWORD = "Proxyro-Secret-4711"
FIRST, SECOND = "10.0.0.1:2881;10.0.0.2:2881", "10.0.1.1:2882:2881;10.0.1.2:2882:2881"


def on_hosts(host_ids: list[int], **changes: Any) -> dict[str, Any]:
    """The docs' sample create as is (CONFIG_URL, linked to hooray), but for its install."""
    install = {"hostIds": host_ids, "sqlPort": 2883, "exportPort": 2884, "version": PACKAGE}
    return sample_request() | {"obproxyInstallParam": install} | changes


def admin(address: str) -> pymysql.Connection:
    return pymysql.connect(
        host=address, port=2883, user="root@proxysys", password="", connect_timeout=5
    )


def rs_lists(address: str) -> dict[str, tuple[str, str, str]]:
    """What the OBProxy at ``address`` learned: (id, rs_list, source) by cluster name (the
    stand-in's SHOW PROXYRSLIST)."""
    with admin(address) as conn, conn.cursor() as cur:
        cur.execute("SHOW PROXYRSLIST")
        columns = [c[0] for c in cur.description]
        assert columns[:4] == ["cluster_name", "cluster_id", "rs_list", "source"], columns
        return {row[0]: (row[1], row[2], row[3]) for row in cur.fetchall()}


def until(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.3)


def test_sample_request_serves_hooray_from_the_config_server_and_follows_it(
    api_hosts: tuple[ApiEnv, list[int], dict],
) -> None:
    env, host_ids, sandbox = api_hosts
    added = run_cli(
        env.db, "obcluster", "add", "1", "hooray", "--rs-list", FIRST, "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with env.client() as client:
        task = data_of(client.post("/api/v2/obproxy/clusters", json=on_hosts(host_ids)))
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        (cluster,) = data_of(client.get("/api/v2/obproxy/clusters"))["contents"]
        url = f"{env.url}/services?Action=GetObProxyConfig&User_ID=alibaba&UID=admin"
        assert cluster["configUrl"] == url + "&ObproxyClusterName=OBProxy001"
        tasks_before = data_of(client.get("/api/v2/tasks/instances"))["page"]["totalElements"]
    addresses = [h["innerIpAddress"] for h in sandbox["inventory"]]
    for address in addresses:
        number, rs_list, source = rs_lists(address)["hooray"]
        assert (number, rs_list) == ("1", FIRST)
        assert source.startswith(f"{env.url}/services?Action=ObRootServiceInfo&ObCluster=hooray")
    log = env.server.log()
    config = "Action=GetObProxyConfig&User_ID=alibaba&UID=admin&ObproxyClusterName=OBProxy001"
    for address in addresses:  # the access log: each host fetched both answers
        assert f"{config} from {address}: 200" in log
        assert f"Action=ObRootServiceInfo&ObCluster=hooray&ObClusterId=1 from {address}: 200" in log

    for address in addresses:  # refresh each second from now on (a real obproxy's item)
        with admin(address) as conn, conn.cursor() as cur:
            cur.execute("ALTER PROXYCONFIG SET config_server_refresh_interval = '1s'")
    changed = run_cli(
        env.db, "obcluster", "add", "1", "hooray", "--rs-list", SECOND, "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    wanted = "10.0.1.1:2881;10.0.1.2:2881"  # as obproxy's rs_list: each SQL address
    for address in addresses:
        until(lambda a=address: rs_lists(a)["hooray"][1] == wanted, f"{address} sees {wanted}")
    with env.client() as client:
        after = data_of(client.get("/api/v2/tasks/instances"))["page"]["totalElements"]
    assert after == tasks_before  # no task ran: the OBProxies fetched it themselves


def test_a_start_fails_naming_the_config_url_when_nobody_answers(
    sandbox: dict, db_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public URL names a port nothing listens on (a config server that is down)."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGE_DIR))
    down = f"http://127.0.0.1:{api_server.free_port()}"
    try:
        with Engine(str(db_path), parallelism=4, public_url=down) as engine:
            host = engine.hosts.add(sandbox["inventory"][0])
            ObClusters(engine).add(1, "hooray", rs_list=FIRST, password=PASSWORD)
            final = engine.run(create_cluster(engine, on_hosts([host.id])).id, timeout=150)
            assert final.status is TaskStatus.FAILED
            (failed,) = [s for s in final.subtasks if s.status is SubtaskStatus.FAILED]
            assert failed.name == "Start obproxy process"
            log = engine.log(final.id, failed.id)
            assert f"{down}/services?Action=GetObProxyConfig" in log, log
    finally:
        sandbox_hosts.reset(sandbox["state"])


OBSERVER = {  # what an observer of "obcluster2" posts (ob-configserver's body)
    "ObClusterId": 2,
    "ObCluster": "obcluster2",
    "RsList": [
        {"address": "10.0.2.1:2882", "role": "LEADER", "sql_port": 2881},
        {"address": "10.0.2.2:2882", "role": "FOLLOWER", "sql_port": 2881},
    ],
    "Type": "PRIMARY",
}


def test_a_cluster_its_observers_registered_can_be_linked(
    sandbox: dict, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --accept-ob-register``: an observer's registration, then a CONFIG_URL create
    linking that cluster, whose OBProxy is served its root servers."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGE_DIR))
    db, port = str(tmp_path / "register.db"), api_server.free_port()
    url = f"http://127.0.0.1:{port}"
    with Engine(db) as engine:
        Users(engine.store).add(API_USER, API_PASSWORD)
        host = engine.hosts.add(sandbox["inventory"][0])
    flags = ("--accept-ob-register", "--public-url", url, "--parallelism", "4")
    server = api_server.start(db, tmp_path / "serve.log", *flags, port=port)
    try:
        register = f"{url}/services?Action=ObRootServiceRegister&ObCluster=obcluster2"
        answer = httpx.post(register, json=OBSERVER, timeout=30)  # no credentials, as observers
        assert answer.status_code == 200 and answer.json()["Success"] is True, answer.text
        link = {"clusterName": "obcluster2", "obClusterId": 2, "username": "proxyro"}
        body = on_hosts([host.id], name="Registered", obLinks=[link])
        with httpx.Client(base_url=url, auth=(API_USER, API_PASSWORD), timeout=30) as client:
            task = data_of(client.post("/api/v2/obproxy/clusters", json=body))
            final = wait_task(client, task["id"])
            assert final["status"] == "SUCCESSFUL", final
            (step,) = [s for s in final["subtasks"] if s["name"].startswith("Set obproxy user")]
            log = client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{step['id']}/log")
            assert "registered without a proxyro password" in log.json()["data"]["log"]
        learned = rs_lists(sandbox["inventory"][0]["innerIpAddress"])
        assert learned["obcluster2"][:2] == ("2", "10.0.2.1:2881;10.0.2.2:2881")
    finally:
        assert server.stop() == 0
        sandbox_hosts.reset(sandbox["state"])
