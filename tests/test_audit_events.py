"""Audit events as OCP serves them (``GET /api/v2/audit/events``), recorded from every surface:
a real ``ocptask serve`` with real failures on sandbox hosts, the console, ``--db`` commands
and embedded calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.roles import Roles
from api.auth.users import Users
from engine import Engine, RequestInvalid
from engine.audit import AuditEvents, EventFilter, acting_as
from fixtures import install_request, register_ob_cluster, sample_request
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy import create_cluster, edit_cluster
from tests.api_helpers import ROOT, data_of, error_of, run_cli, wait_task
from tests.conftest import ApiEnv
from tests.ocp_docs import key_diff

pytestmark = pytest.mark.timeout(240)
EVENTS = "/api/v2/audit/events"
CLUSTERS = "/api/v2/obproxy/clusters"
TASKS = "/api/v2/tasks/instances"
SYS_PASSWORD = "Sys-Secret-8812"
PROXYRO_PASSWORD = "proxyro-Secret-4711"
BOB, BOB_PASSWORD = "bob", "bob-Passw0rd-77"

# OCP 4.2.2's sample answer, "Query event history" (ocp-doc en-US/1900.reference-guide/
# 200.api-reference/1200.ocp-historical-events/100.query-historical-events.md): its first record
# and page, as the page shows them (not among fixtures/ocp_docs, which holds four folders).
OCP_SAMPLE = {
    "data": {
        "contents": [
            {
                "clientIp": "xxx.xxx.xxx.1",
                "endTime": "2021-09-03T10:45:33+08:00",
                "eventInfo": '{"hostId":20}',
                "eventType": "COMPUTE_HOST_MANAGEMENT",
                "executionType": "NEW",
                "id": 112,
                "operationEvent": "RESTART_OCP_AGENT",
                "operatorId": 100,
                "operatorName": "admin",
                "resourceId": 20,
                "resourceName": "xxx.xxx.xxx.2",
                "resourceType": "COMPUTE_HOST",
                "startTime": "2021-09-03T10:45:30+08:00",
                "status": "FAILED",
            }
        ],
        "page": {"number": 1, "size": 10, "totalElements": 3, "totalPages": 1},
    },
    "duration": 12,
    "server": "a83ad33525",
    "status": 200,
    "successful": True,
    "timestamp": "2021-09-08T19:12:28.387+08:00",
    "traceId": "0a4a965ff3f344c3",
}


# The events these tests make: not the registries' (users, OceanBase clusters), which the set-up
# changes too (tests/test_security_lows.py has theirs).
CALLS = "OB_PROXY_CLUSTER_MANAGEMENT,COMPUTE_HOST_MANAGEMENT,TASK_MANAGEMENT"


def events(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every event of ``CALLS`` the filters match, oldest first."""
    params.setdefault("order", "id,asc")
    params.setdefault("eventType", CALLS)
    return data_of(client.get(EVENTS, params={"size": 2000, **params}))["contents"]


def brief(event: dict[str, Any]) -> tuple[Any, ...]:
    return (
        event["operationEvent"],
        event["operatorName"],
        event["status"],
        event["executionType"],
        event["taskId"],
    )


def test_create_failure_retry_by_another_user_and_rollback(api_hosts: Any) -> None:
    """The acceptance scenario: admin creates a cluster on a host that is down (FAILED), bob
    retries it (FAILED again), admin rolls it back; refusals (409 busy, 400 bad body, 400 before
    the call) on the way. The history lists each, in order, with its operator, result and task;
    the retry is the create's own event with executionType RETRY; its filters work; no secret
    of the request (nor any password) is in any event."""
    env, ids, sandbox = api_hosts
    users = Users(env.engine.store)
    Roles(env.engine.store).add_user(users, BOB, BOB_PASSWORD, ["OPERATOR"])  # runs tasks
    admin_id, bob_id = users.ids()[env.user], users.ids()[BOB]
    register_ob_cluster(env.engine, PROXYRO_PASSWORD)
    request = install_request(ids[:1], name="audited")
    request["parameters"].append({"name": "obproxy_sys_password", "value": SYS_PASSWORD})
    with env.client() as admin, env.client(auth=(BOB, BOB_PASSWORD)) as bob:
        sandbox_hosts.stop_host(1, sandbox["state"])
        try:
            task_id = data_of(admin.post(CLUSTERS, json=request))["id"]
            assert wait_task(admin, task_id)["status"] == "FAILED"
            cluster_id = data_of(admin.get(CLUSTERS))["contents"][0]["id"]
            # Refused: the failed create holds the cluster (409); a body without a name (400,
            # by the call); a parameter the call does not take (400, before the call).
            error_of(admin.delete(f"{CLUSTERS}/{cluster_id}"), 409, 10005)
            error_of(admin.post(CLUSTERS, json={"workMode": "RS_LIST"}), 400, 10001)
            error_of(admin.post(CLUSTERS, params={"bogus": "1"}, json=request), 400, 10001)
            retried = data_of(bob.post(f"{TASKS}/{task_id}/retry"))
            assert retried["operation"] == "RETRY"
            assert wait_task(admin, task_id)["status"] == "FAILED"
            error_of(bob.post(f"{TASKS}/{task_id}/retry", params={"x": "1"}), 400, 10001)
            data_of(admin.post(f"{TASKS}/{task_id}/rollback"))
            assert wait_task(admin, task_id)["status"] == "SUCCESSFUL"
        finally:
            sandbox_hosts.start_host(1, sandbox["state"])

        found = events(admin)
        create, busy, bad, early, retry, bob_refused, rollback = found
        assert [brief(e) for e in found] == [
            ("CREATE_OB_PROXY_CLUSTER", env.user, "SUCCESS", "NEW", task_id),
            ("DELETE_OB_PROXY_CLUSTER", env.user, "FAILED", "NEW", None),
            ("CREATE_OB_PROXY_CLUSTER", env.user, "FAILED", "NEW", None),
            ("CREATE_OB_PROXY_CLUSTER", env.user, "FAILED", "NEW", None),
            ("CREATE_OB_PROXY_CLUSTER", BOB, "SUCCESS", "RETRY", task_id),
            ("CREATE_OB_PROXY_CLUSTER", BOB, "FAILED", "RETRY", task_id),
            ("ROLLBACK_TASK", env.user, "SUCCESS", "NEW", task_id),
        ]
        for event in found:
            assert event["eventType"] == "OB_PROXY_CLUSTER_MANAGEMENT"
            assert event["resourceType"] == "OB_PROXY_CLUSTER"
            assert event["clientIp"] == "127.0.0.1"
            assert event["operatorId"] == (bob_id if event["operatorName"] == BOB else admin_id)
            assert datetime.fromisoformat(event["startTime"]) <= datetime.fromisoformat(
                event["endTime"]
            )
        for event in (create, busy, retry, rollback):
            assert (event["resourceId"], event["resourceName"]) == (cluster_id, "audited")
        info = json.loads(create["eventInfo"])
        assert info["name"] == "audited" and info["obproxyInstallParam"]["hostIds"] == ids[:1]
        assert {"name": "obproxy_sys_password", "value": "******"} in info["parameters"]
        assert json.loads(busy["eventInfo"]) == {"id": cluster_id}
        assert json.loads(bad["eventInfo"]) == {"workMode": "RS_LIST"}
        assert json.loads(early["eventInfo"]) == {}  # refused before the call: no body read
        assert json.loads(retry["eventInfo"]) == {"taskId": task_id}
        everything = json.dumps(found)
        for secret in (SYS_PASSWORD, PROXYRO_PASSWORD, env.password, BOB_PASSWORD):
            assert secret not in everything

        # OCP's filters, each narrowing the same history.
        assert events(admin, status="FAILED") == [busy, bad, early, bob_refused]
        assert events(admin, operationEvent="ROLLBACK_TASK,DELETE_OB_PROXY_CLUSTER") == [
            busy,
            rollback,
        ]
        assert events(admin, operatorId=str(bob_id)) == [retry, bob_refused]
        assert events(admin, operatorId=f"{bob_id},{admin_id}") == found
        named = [create, busy, retry, bob_refused, rollback]  # the others named no cluster
        assert events(admin, resourceName="udit") == named
        assert events(admin, resourceName="other") == []
        assert events(admin, eventType="COMPUTE_HOST_MANAGEMENT") == []
        assert events(admin, eventInfo='"workMode":"RS_LIST"') == [create, bad]
        window = {"startTime": retry["startTime"], "endTime": bob_refused["startTime"]}
        assert events(admin, **window) == [retry, bob_refused]
        unescaped = admin.get(f"{EVENTS}?startTime={rollback['startTime']}&order=id,asc")
        assert data_of(unescaped)["contents"] == [rollback]  # a "+" sent as is is a "+"
        paged = {"order": "startTime,desc", "size": 2, "eventType": CALLS}
        newest = data_of(admin.get(EVENTS, params=paged))
        assert newest["contents"] == [rollback, bob_refused]
        assert newest["page"] == {"totalElements": 7, "totalPages": 4, "number": 1, "size": 2}
        assert data_of(admin.get(EVENTS))["contents"][0] == rollback  # newest first by default
        # Refused filters name their field; a parameter it does not take is refused too.
        for params, field in (
            ({"status": "DONE"}, "status"),
            ({"operatorId": "bob"}, "operatorId"),
            ({"startTime": "yesterday"}, "startTime"),
            ({"order": "password,asc"}, "sort"),
            ({"creator": "bob"}, "creator"),
        ):
            error = error_of(
                admin.get(EVENTS, params=params), 400, 10011 if field == "sort" else 10001
            )
            assert error["target"] == field, params

        # OCP's record, key for key (what its sample leaves out, null here, is in its table).
        missing, extra = key_diff(admin.get(EVENTS).json(), OCP_SAMPLE)
        assert missing == set()
        assert extra == {"data.contents[].parentResource", "data.contents[].taskId"}


def test_every_surface_is_recorded_once(api_env: ApiEnv, tmp_path: Path) -> None:
    """The CLI's ``--db`` create and retry, an embedded call with a creator and one inside
    ``acting_as``, an HTTP edit and a refused HTTP host removal: each one event, its operator
    and address as that surface knows them; ``audit list`` reads them over ``--db`` and
    ``--server``; the console lists them."""
    env = api_env
    register_ob_cluster(env.engine, PROXYRO_PASSWORD)
    request_file = tmp_path / "create.json"
    request_file.write_text(json.dumps(sample_request() | {"name": "from-cli"}))
    made = run_cli(env.db, "obproxy", "create", str(request_file), "--no-wait")
    assert made.returncode == 0, made.stderr
    with Engine(env.db) as engine:
        embedded = create_cluster(engine, sample_request() | {"name": "embedded"}, "carol")
        with acting_as("dave", 42), pytest.raises(RequestInvalid):
            edit_cluster(engine, 1, {"port": "not a port"})
    with env.client() as client:
        assert wait_task(client, embedded.id)["status"] == "SUCCESSFUL"  # it held the cluster
        data_of(client.patch(f"{CLUSTERS}/2", json={"port": 2999}))
        error_of(client.delete("/api/v2/compute/hosts/77"), 404, 10002)
        found = events(client)
        admin_id = Users(env.engine.store).ids()[env.user]
        assert [
            (e["operationEvent"], e["operatorName"], e["operatorId"], e["clientIp"], e["status"])
            for e in found
        ] == [
            ("CREATE_OB_PROXY_CLUSTER", "admin", admin_id, None, "SUCCESS"),
            ("CREATE_OB_PROXY_CLUSTER", "carol", None, None, "SUCCESS"),
            ("PATCH_OB_PROXY_CLUSTER", "dave", 42, None, "FAILED"),
            ("PATCH_OB_PROXY_CLUSTER", env.user, admin_id, "127.0.0.1", "SUCCESS"),
            ("DELETE_HOST", env.user, admin_id, "127.0.0.1", "FAILED"),
        ]
        assert [e["resourceName"] for e in found] == [
            "from-cli",
            "embedded",
            "from-cli",
            "embedded",
            None,
        ]
        assert found[4]["eventType"] == "COMPUTE_HOST_MANAGEMENT"
        assert json.loads(found[4]["eventInfo"]) == {"hostId": 77}

        # ocptask audit list, from the database and through the server: the same records.
        listed = run_cli(env.db, "audit", "list", "--json", "--status", "FAILED")
        assert listed.returncode == 0, listed.stderr
        failed = [e for e in reversed(found) if e["status"] == "FAILED"]
        assert json.loads(listed.stdout) == failed
        table = run_cli(env.db, "audit", "list", "--event", "DELETE_HOST")
        assert "DELETE_HOST" in table.stdout and "127.0.0.1" in table.stdout
        assert "PATCH" not in table.stdout

    with httpx.Client(base_url=env.url, follow_redirects=False) as session:
        form = session.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        login = {"username": env.user, "password": env.password, "csrf": token}
        assert session.post("/login", data=login).status_code == 303
        page = session.get("/audit", params={"status": "FAILED"}).text
    assert '<a href="/audit" aria-current="page">Audit</a>' in page
    rows = page[page.index('<tbody id="audit-rows">') : page.index("</tbody>")]
    assert rows.count("<tr>") == 2 and "DELETE_HOST" in rows and "dave" in rows


def test_audit_list_through_a_server(api_env: ApiEnv) -> None:
    """``audit list --server`` asks ``GET /api/v2/audit/events`` with its filters. An embedded
    call's creator is its operator, whoever the context says is acting."""
    with acting_as("erin"):
        create_cluster(api_env.engine, sample_request() | {"name": "one"})
        create_cluster(api_env.engine, sample_request() | {"name": "two"}, "frank")
    command = ["audit", "list", "--json", "--server", api_env.url, "--resource", "two"]
    answer = subprocess.run(
        [sys.executable, "-m", "cli", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OCPTASK_USER": api_env.user, "OCPTASK_PASSWORD": api_env.password},
    )
    assert answer.returncode == 0, answer.stderr
    (only,) = json.loads(answer.stdout)
    assert (only["resourceName"], only["operatorName"]) == ("two", "frank")
    wanted = EventFilter(event_types=CALLS.split(","))
    every, total = AuditEvents(api_env.engine.store).page(wanted, descending=False)
    assert total == 2 and every[0]["operatorName"] == "admin"  # create_cluster's default creator


def test_a_call_refused_for_want_of_a_permission_is_an_event(api_env: ApiEnv) -> None:
    """A viewer's create: 403 (OCP's 10009), recorded FAILED with the viewer as its operator."""
    users = Users(api_env.engine.store)
    Roles(api_env.engine.store).add_user(users, "vic", "vic-Passw0rd-1", ["VIEWER"])
    with api_env.client(auth=("vic", "vic-Passw0rd-1")) as viewer:
        refused = viewer.post("/api/v2/obproxy/clusters", json=sample_request())
    error_of(refused, 403, 10009)
    with api_env.client() as admin:
        listed = data_of(
            admin.get("/api/v2/audit/events", params={"operatorId": users.ids()["vic"]})
        )
    (event,) = listed["contents"]
    assert (event["operationEvent"], event["status"], event["operatorName"]) == (
        "CREATE_OB_PROXY_CLUSTER",
        "FAILED",
        "vic",
    )
    assert event["clientIp"] == "127.0.0.1" and event["taskId"] is None
