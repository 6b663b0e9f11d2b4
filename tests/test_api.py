"""OCP's HTTP API against a real ``ocptask serve`` process: envelope, the seed's sample request,
task operations and errors, OBProxy clusters on real sandbox hosts, OceanBase clusters."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.users import Users
from fixtures import OB_RS_LIST, REQUESTS, install_request, register_ob_cluster, sample_request
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters
from tests.api_helpers import data_of, error_of, run_cli, wait_task
from tests.conftest import ApiEnv

SAMPLE = json.loads((REQUESTS.parent / "responses" / "create-obproxy-cluster.json").read_text())
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(240)


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    """The record without what differs run to run: ids, times, executor; subtasks by name with
    their links as names."""
    names = {s["id"]: s["name"] for s in record["subtasks"]}
    out = {k: v for k, v in record.items() if k not in ("id", "startTime", "executor")}
    out["subtasks"] = sorted(
        (
            {k: v for k, v in s.items() if k != "id"}
            | {
                "upstreams": [names[i] for i in s["upstreams"]],
                "downstreams": [names[i] for i in s["downstreams"]],
            }
            for s in record["subtasks"]
        ),
        key=lambda s: s["seriesId"],
    )
    return out


def test_sample_request_answers_as_ocp_sample(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        response = client.post("/api/v2/obproxy/clusters", json=sample_request())
        body = response.json()
        assert response.status_code == 200, body
        assert set(body) == set(SAMPLE)  # data, duration, server, status, successful, ...
        assert body["successful"] is True and body["status"] == 200
        assert len(body["traceId"]) == 16 and int(body["traceId"], 16) >= 0
        data = body["data"]
        assert _strip(data) == _strip(SAMPLE["data"])  # keys and values, ids/times aside
        final = wait_task(client, data["id"], timeout=30)
        assert final["status"] == "SUCCESSFUL"
        assert final["creator"] == {"id": 1, "name": api_env.user}
        # The paged list, OCP's BasicTaskInstance.
        listed = client.get("/api/v2/tasks/instances", params={"page": 1, "size": 5}).json()
        assert listed["data"]["page"] == {
            "totalElements": 1,
            "totalPages": 1,
            "number": 1,
            "size": 5,
        }
        assert listed["data"]["contents"][0]["subtasks"][0].keys() == {
            "id",
            "name",
            "description",
            "operation",
            "status",
        }
        # The cluster it made, recorded at submit, with the sample's link as given.
        clusters = client.get("/api/v2/obproxy/clusters").json()["data"]["contents"]
        assert [(c["name"], c["workMode"], c["address"], c["port"]) for c in clusters] == [
            ("OBProxy001", "CONFIG_URL", "foo.bar", 2883)
        ]
        assert clusters[0]["obLinks"][0]["obClusterId"] == 1 and clusters[0]["obproxies"] == []
        # A second create of the same name is refused at once, with the field named.
        again = error_of(client.post("/api/v2/obproxy/clusters", json=sample_request()), 400, 10001)
        assert again["target"] == "name" and again["subErrors"][0]["field"] == "name"


def test_numeric_strings_create_as_jackson_reads_them(api_env: ApiEnv) -> None:
    """OCP's Jackson takes ``"port": "2883"`` for 2883 (and ``"obClusterId": "1"`` for 1)."""
    body = sample_request() | {"name": "by-strings", "port": "2883"}
    body["obLinks"][0]["obClusterId"] = "1"
    with api_env.client() as client:
        created = data_of(client.post("/api/v2/obproxy/clusters", json=body))
        final = wait_task(client, created["id"], timeout=30)
        assert final["status"] == "SUCCESSFUL"
        cid = int(final["subtasks"][0]["context"]["stringMap"]["obproxy_cluster_id"])
        cluster = data_of(client.get(f"/api/v2/obproxy/clusters/{cid}"))
    assert (cluster["port"], cluster["obLinks"][0]["obClusterId"]) == (2883, 1)


def test_envelope_on_every_kind_of_error(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        error_of(client.get("/api/v2/tasks/instances/999"), 404, 20000)
        error_of(client.post("/api/v2/tasks/instances/999/retry"), 404, 20000)
        error_of(client.get("/api/v2/no/such/route"), 404, 10002)
        error_of(client.delete("/api/v2/tasks/instances/1"), 405, 10008)
        err = error_of(client.get("/api/v2/tasks/instances/abc"), 400, 10001)
        assert err["target"] == "taskId"
        error_of(client.get(f"/api/v2/tasks/instances/{2**64}"), 400, 10001)
        err = error_of(
            client.post(
                "/api/v2/obproxy/clusters",
                content=b'{"name": ',
                headers={"Content-Type": "application/json"},
            ),
            400,
            10001,
        )
        assert err["subErrors"][0]["field"] == "(body)"
        big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
        json_type = {"Content-Type": "application/json"}
        error_of(client.post("/api/v2/obproxy/clusters", content=big, headers=json_type), 413, 0)
        err = error_of(
            client.post("/api/v2/obproxy/clusters", json={"workMode": "NOPE"}), 400, 10001
        )
        fields = {e["field"] for e in err["subErrors"]}
        assert {"name", "workMode"} <= fields
        err = error_of(
            client.post(
                "/api/v2/obproxy/clusters", json=sample_request() | {"workmode": "RS_LIST"}
            ),
            400,
            10001,
        )
        assert "did you mean workMode?" in err["subErrors"][0]["message"]
        error_of(client.get("/api/v2/tasks/instances", params={"sort": "secret,asc"}), 400, 10011)
        err = error_of(
            client.get("/api/v2/tasks/instances", params={"stauts": "FAILED"}), 400, 10001
        )
        assert err["subErrors"][0] == {
            "object": "query",
            "field": "stauts",
            "message": err["subErrors"][0]["message"],
            "rejectedValue": "FAILED",
        }
        assert "not a parameter of this call" in err["subErrors"][0]["message"]
        err = error_of(
            client.post(
                "/api/v2/obproxy/clusters", content=b"{}", headers={"Content-Type": "text/plain"}
            ),
            415,
            10003,
        )
        assert "text/plain" in err["message"]
        error_of(client.get("/api/v2/ob/clusters/7"), 404, 10002)
    # No credential, a wrong one, an unknown scheme: 401 in the envelope, OCP's message.
    for auth in (None, (api_env.user, "wrong-password")):
        with httpx.Client(base_url=api_env.url, auth=auth) as anonymous:
            err = error_of(anonymous.get("/api/v2/tasks/instances"), 401, 0)
            assert "has not logged on" in err["message"]
    with httpx.Client(base_url=api_env.url, headers={"Authorization": "Bearer x"}) as bearer:
        error_of(bearer.get("/api/v2/tasks/instances"), 401, 0)
    log = api_env.server.log()
    assert "wrong-password" not in log and "authentication failed" in log


def test_task_detail_is_one_answer_whichever_route_serves_it(api_env: ApiEnv) -> None:
    """Plain ids go to the lean route, others (a leading zero) to the FastAPI route: both
    authenticate the same way and give the same record; HEAD stays 405 as on the FastAPI route."""
    with api_env.client() as client:
        task_id = client.post("/api/v2/obproxy/clusters", json=sample_request()).json()["data"][
            "id"
        ]
        wait_task(client, task_id, timeout=30)
        lean = client.get(f"/api/v2/tasks/instances/{task_id}").json()
        full = client.get(f"/api/v2/tasks/instances/00{task_id}").json()
        assert lean["successful"] and lean["data"] == full["data"]
        error_of(client.get("/api/v2/tasks/instances/00999"), 404, 20000)
        assert client.head(f"/api/v2/tasks/instances/{task_id}").status_code == 405
    with httpx.Client(base_url=api_env.url) as anonymous:
        error_of(anonymous.get(f"/api/v2/tasks/instances/{task_id}"), 401, 0)
        error_of(anonymous.get(f"/api/v2/tasks/instances/00{task_id}"), 401, 0)
        wrong = anonymous.get(f"/api/v2/tasks/instances/{task_id}", auth=("admin", "wrong"))
        error_of(wrong, 401, 0)


def test_a_server_error_is_an_envelope_with_a_logged_trace_id(api_env: ApiEnv) -> None:
    """A record the server cannot read (a status no ocptask writes, put there by hand) is a
    500: OCP's envelope, a traceId that is also in the server log, no stack trace."""
    with api_env.client() as client:
        task_id = client.post("/api/v2/obproxy/clusters", json=sample_request()).json()["data"][
            "id"
        ]
        wait_task(client, task_id, timeout=30)
        with sqlite3.connect(api_env.db) as conn:
            conn.execute("UPDATE task_instance SET status = 'BOGUS' WHERE id = ?", (task_id,))
        response = client.get(f"/api/v2/tasks/instances/{task_id}")
    err = error_of(response, 500, 0)
    trace = response.json()["traceId"]
    assert (
        trace in err["message"]
        and "Traceback" not in response.text
        and "BOGUS" not in err["message"]
    )
    log = api_env.server.log()
    assert f"traceId {trace}" in log and "Traceback" in log


def test_obcluster_registry_over_cli_and_api(api_env: ApiEnv) -> None:
    add = run_cli(
        api_env.db,
        *("obcluster", "add", "7", "ob7", "--rs-list", "127.0.0.1:2881;127.0.0.2:2881"),
        "--password-stdin",
        stdin="proxyro-Secret-7\n",
    )
    assert add.returncode == 0, add.stderr
    with api_env.client() as client:
        page = client.get("/api/v2/ob/clusters").json()["data"]
        assert page["page"]["totalElements"] == 1
        cluster = client.get("/api/v2/ob/clusters/7").json()["data"]
        assert (cluster["obClusterId"], cluster["name"]) == (7, "ob7")
        assert cluster["rsList"] == "127.0.0.1:2881;127.0.0.2:2881"
        assert "proxyro-Secret-7" not in json.dumps(page) + json.dumps(cluster)
    listed = run_cli(api_env.db, "obcluster", "list")
    assert "ob7" in listed.stdout and "proxyro-Secret-7" not in listed.stdout
    assert b"proxyro-Secret-7" not in Path(api_env.db).read_bytes()


def test_rs_list_create_on_three_hosts_as_ocp_documents_it(api_hosts: Any) -> None:
    env, ids, sandbox = api_hosts
    request = install_request(ids)
    assert "rsList" not in request["obLinks"][0]  # exactly OCP's obLink fields
    with env.client() as client:
        err = error_of(client.post("/api/v2/obproxy/clusters", json=request), 400, 10001)
        assert err["target"] == "obLinks[0].obClusterId"  # not registered yet
        add = run_cli(
            env.db,
            *("obcluster", "add", "1", "hooray", "--rs-list", OB_RS_LIST, "--password-stdin"),
            stdin="proxyro-Secret-4711\n",
        )
        assert add.returncode == 0, add.stderr
        wrong = install_request(ids)
        wrong["obLinks"][0]["clusterName"] = "other"
        err = error_of(client.post("/api/v2/obproxy/clusters", json=wrong), 400, 10001)
        assert err["target"] == "obLinks[0].clusterName"

        created = client.post("/api/v2/obproxy/clusters", json=request).json()["data"]
        assert len(created["subtasks"]) == 32  # Prepare, OCP's 10-node chain on 3 hosts, Finish
        final = wait_task(client, created["id"])
        assert final["status"] == "SUCCESSFUL", [
            (s["name"], s["status"]) for s in final["subtasks"] if s["status"] != "SUCCESSFUL"
        ]
        cluster_id = int(final["subtasks"][0]["context"]["stringMap"]["obproxy_cluster_id"])
        cluster = client.get(f"/api/v2/obproxy/clusters/{cluster_id}").json()["data"]
        addresses = [h["innerIpAddress"] for h in sandbox["inventory"]]
        assert sorted(
            (p["ip"], p["sqlPort"], p["exporterPort"], p["version"], p["status"])
            for p in cluster["obproxies"]
        ) == [(ip, 2883, 2884, "4.3.2.0-1", "RUNNING") for ip in sorted(addresses)]

        def values(name: str) -> list[dict[str, Any]]:
            params = client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters")
            found = [p for p in params.json()["data"]["contents"] if p["name"] == name]
            assert len(found) == 1, name
            return found[0]["values"]

        for name, value in (("proxy_mem_limited", "600M"), ("slow_query_time_threshold", "2s")):
            assert [(v["value"], sorted(v["obproxies"])) for v in values(name)] == [
                (value, sorted(addresses))
            ]
        assert [v["value"] for v in values("rs_list")] == [
            "10.0.0.1:2881;10.0.0.2:2881;10.0.0.3:2881"
        ]
        # A host an OBProxy runs on cannot be removed from under it.
        err = error_of(client.delete(f"/api/v2/compute/hosts/{ids[0]}"), 400, 10001)
        assert err["target"] == "hostId" and "OBProxy server" in err["subErrors"][0]["message"]
        # One OBProxy down: the call still answers, without its IP.
        home = Path(sandbox["state"], "home2")
        pid = int(next(home.glob("obproxy-*/run/obproxy.pid")).read_text())
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        assert [sorted(v["obproxies"]) for v in values("proxy_mem_limited")] == [
            sorted(addresses[:1] + addresses[2:])
        ]
        assert time.monotonic() - started < 15


def test_operations_on_a_failed_task_over_http(api_hosts: Any) -> None:
    env, ids, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    base = "/api/v2/tasks/instances"
    with env.client() as client:
        sandbox_hosts.stop_host(2, sandbox["state"])
        try:
            created = client.post("/api/v2/obproxy/clusters", json=install_request(ids))
            failed = wait_task(client, created.json()["data"]["id"])
        finally:
            sandbox_hosts.start_host(2, sandbox["state"])
        task_id = failed["id"]
        assert failed["status"] == "FAILED"
        broken = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        assert [(s["name"], s["parallelIdx"]) for s in broken] == [
            ("Prepare create obproxy", 1)  # the chain's first SSH contact
        ]
        sid = broken[0]["id"]
        log = client.get(f"{base}/{task_id}/subtasks/{sid}/log").json()["data"]["log"]
        assert log.startswith("############{EXECUTE}{") and "cannot connect" in log
        # Illegal: cancel a subtask that is not running, retry a successful one.
        error_of(client.post(f"{base}/{task_id}/subtasks/{sid}/cancel"), 400, 20003)
        ok_sid = next(s["id"] for s in failed["subtasks"] if s["status"] == "SUCCESSFUL")
        error_of(client.post(f"{base}/{task_id}/subtasks/{ok_sid}/retry"), 400, 20003)
        error_of(client.post(f"{base}/{task_id}/subtasks/{2**40}/retry"), 404, 20000)
        # Subtask retry: READY again with runTime 2; the server runs it; the chain finishes.
        retried = client.post(f"{base}/{task_id}/subtasks/{sid}/retry").json()["data"]
        assert (retried["id"], retried["operation"], retried["runTime"]) == (sid, "RETRY", 2)
        final = wait_task(client, task_id)
        assert final["status"] == "SUCCESSFUL"
        error_of(client.post(f"{base}/{task_id}/retry"), 400, 20003)  # not FAILED
        error_of(client.post(f"{base}/{task_id}/rollback"), 400, 20003)

        # A second cluster on a stopped host, then skip, task retry and rollback.
        ObClusters(env.engine).add(2, "second", rs_list="10.0.0.9:2881", password="pw-second")
        # One OBProxy per host: the first cluster goes (a task of its own) to free host 1.
        first_id = client.get("/api/v2/obproxy/clusters").json()["data"]["contents"][0]["id"]
        offline = client.delete(f"/api/v2/obproxy/clusters/{first_id}").json()["data"]
        assert wait_task(client, offline["id"])["status"] == "SUCCESSFUL"
        sandbox_hosts.reset(sandbox["state"])  # also ends the server's SSH sessions
        sandbox_hosts.stop_host(1, sandbox["state"])
        try:
            second = install_request(ids[:1], name="second-cluster")
            second["obLinks"] = [{"clusterName": "second", "obClusterId": 2, "username": "proxyro"}]
            task = client.post("/api/v2/obproxy/clusters", json=second).json()["data"]
            failed = wait_task(client, task["id"])
            assert failed["status"] == "FAILED"
            retried = client.post(f"{base}/{task['id']}/retry").json()["data"]
            assert retried["operation"] == "RETRY" and retried["creator"]["name"] == env.user
            failed = wait_task(client, task["id"])  # still down: fails again
            assert failed["status"] == "FAILED"
            first_sub = next(s for s in failed["subtasks"] if s["status"] == "FAILED")
            skipped = client.post(f"{base}/{task['id']}/subtasks/{first_sub['id']}/skip")
            assert skipped.status_code == 200 and "data" not in skipped.json()
            failed = wait_task(client, task["id"])  # the next step needs the host: FAILED
            assert failed["status"] == "FAILED"
            rolled = client.post(f"{base}/{task['id']}/rollback").json()["data"]
            assert rolled["operation"] == "ROLLBACK"
            final = wait_task(client, task["id"])
            assert (final["status"], final["operation"]) == ("SUCCESSFUL", "ROLLBACK")
        finally:
            sandbox_hosts.start_host(1, sandbox["state"])
        names = [
            c["name"] for c in client.get("/api/v2/obproxy/clusters").json()["data"]["contents"]
        ]
        assert "second-cluster" not in names  # the rollback removed what the create recorded


def test_cancel_a_running_subtask_over_http(api_hosts: Any) -> None:
    env, ids, _sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    request = install_request(ids[:1])
    request["startupParameters"].append({"name": "standin_hang_seconds", "value": "60"})
    base = "/api/v2/tasks/instances"
    with env.client() as client:
        task_id = client.post("/api/v2/obproxy/clusters", json=request).json()["data"]["id"]
        deadline = time.monotonic() + 60
        while True:
            data = client.get(f"{base}/{task_id}").json()["data"]
            running = [s for s in data["subtasks"] if s["status"] == "RUNNING"]
            if running and running[0]["name"] == "Start obproxy process":
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.1)
        in_use = error_of(client.delete(f"/api/v2/compute/hosts/{ids[0]}"), 400, 10001)
        assert f"task {task_id} is running on it" in in_use["message"]
        cancelled = client.post(f"{base}/{task_id}/subtasks/{running[0]['id']}/cancel")
        assert cancelled.status_code == 200 and "data" not in cancelled.json()
        final = wait_task(client, task_id, timeout=30)
        sub = next(s for s in final["subtasks"] if s["id"] == running[0]["id"])
        assert (final["status"], sub["status"], sub["operation"]) == ("FAILED", "FAILED", "CANCEL")


def test_sigterm_answers_requests_in_flight_then_exits_zero(api_env: ApiEnv) -> None:
    """A parameters call waiting on a silent OBProxy (a listener that never speaks) is in
    flight when SIGTERM arrives: it still gets its answer, and the server exits 0."""
    import socket
    import threading

    from tasks.obproxy.records import ObproxyServerRecord

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    with api_env.client() as client:
        client.post("/api/v2/obproxy/clusters", json=sample_request())
        cluster_id = client.get("/api/v2/obproxy/clusters").json()["data"]["contents"][0]["id"]
    with api_env.engine.store.write() as session:
        session.add(
            ObproxyServerRecord(
                cluster_id=cluster_id,
                host_id=1,
                ip="127.0.0.1",
                sql_port=silent.getsockname()[1],
                exporter_port=1,
                version="obproxy-4.3.2.0-1.el7.x86_64.rpm",
                status="RUNNING",
                task_id=1,
            )
        )
    answers: list[httpx.Response] = []

    def call() -> None:
        with api_env.client() as client:
            answers.append(client.get(f"/api/v2/obproxy/clusters/{cluster_id}/parameters"))

    caller = threading.Thread(target=call)
    started = time.monotonic()
    caller.start()
    time.sleep(0.8)
    api_env.server.proc.send_signal(signal.SIGTERM)
    caller.join(30)
    silent.close()
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["data"] == {"contents": []}  # the silent one is simply absent
    assert time.monotonic() - started >= 2  # it waited for the read timeout, not cut short
    assert api_env.server.proc.wait(30) == 0


def test_several_worker_processes_serve_one_database(tmp_path: Path) -> None:
    """``--workers 2``: requests served by two processes, tasks run by the parent's daemon."""
    from engine import Engine
    from fixtures import api_server

    db = str(tmp_path / "workers.db")
    with Engine(db) as engine:
        Users(engine.store).add("admin", "admin-Passw0rd")
    server = api_server.start(db, tmp_path / "serve.log", "--workers", "2")
    try:
        with httpx.Client(base_url=server.url, auth=("admin", "admin-Passw0rd")) as client:
            task = client.post("/api/v2/obproxy/clusters", json=sample_request()).json()["data"]
            assert wait_task(client, task["id"], timeout=30)["status"] == "SUCCESSFUL"
            for _ in range(20):  # whichever worker answers, the envelope and record are one
                assert client.get(f"/api/v2/tasks/instances/{task['id']}").json()["successful"]
    finally:
        code = server.stop()
    assert code == 0, server.log()[-2000:]
