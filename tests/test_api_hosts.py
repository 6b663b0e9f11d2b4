"""Hosts over OCP's HTTP API: batchCreate with an SSH credential (a "Prepare host" task per
host, as OCP's, that reaches the host and pins its key), field errors, list, detail and delete;
and the SSH credential registry behind ``credentialId``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Credential, Engine, HostStatus, NotFound, RequestInvalid
from fixtures import sandbox as sandbox_hosts
from tests.api_helpers import ENVELOPE_KEYS, data_of, wait_task
from tests.api_helpers import error_of as envelope_error
from tests.conftest import ApiEnv
from tests.ocp_docs import chain, prepare_host_nodes

BATCH = "/api/v2/compute/hosts/batchCreate"
OCP_HOST_TASKS = "com.alipay.ocp.service.task.business.host."
PASSWORD = "ssh-Secret-9321"
# OCP's "Prepare host" nodes, read from its page (fixtures/ocp_docs), not copied here.
PREPARE_NODES = [name for name, _, _ in prepare_host_nodes()]
SECOND_DOOR = "127.0.0.114"  # sandbox host 1's login once more (clear of 111-113 and 11-14)
NO_SSHD = "127.0.0.119"  # nothing listens there
pytestmark = pytest.mark.timeout(180)


def error_of(response: httpx.Response, status: int = 400, code: int = 10001) -> dict[str, Any]:
    return envelope_error(response, status, code)


def fields(error: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in error["subErrors"]}


def log_of(client: httpx.Client, task: dict[str, Any], subtask: dict[str, Any] | str) -> str:
    """The log of one of the task's subtasks (or of the one of that name)."""
    if isinstance(subtask, str):
        (subtask,) = [s for s in task["subtasks"] if s["name"] == subtask]
    path = f"/api/v2/tasks/instances/{task['id']}/subtasks/{subtask['id']}/log"
    return data_of(client.get(path))["log"]


def host_id_of(task: dict[str, Any]) -> int:
    """The host of a "Prepare host" task, as OCP's answer names it; its context says the same."""
    assert task["context"]["stringMap"]["host_id"] == str(task["hostId"])
    return int(task["hostId"])


def assert_prepare_host(task: dict[str, Any]) -> None:
    """OCP's "Prepare host": its nodes (names, descriptions, timeouts) in one chain, in OCP's
    order, none split; each step with a className in the style of OCP's host tasks."""
    ours = chain(task["subtasks"])
    assert [(s["name"], s["description"], s["timeout"]) for s in ours] == prepare_host_nodes()
    assert {s["parallelIdx"] for s in ours} == {-1} and task["context"]["listMap"] == {}
    classes = [s["className"] for s in ours]
    assert len(set(classes)) == len(classes)
    assert all(c.startswith(OCP_HOST_TASKS) and c.endswith("Task") for c in classes), classes


@pytest.fixture
def hosts(api_env: ApiEnv, sandbox: dict) -> Iterator[list[dict[str, Any]]]:
    """The sandbox inventory, each entry with a credential of its own login user registered
    (every sandbox host lets in only its own user, so one credential reaches one host)."""
    entries = []
    for entry in sandbox["inventory"]:
        cred = api_env.engine.credentials.add(
            entry["name"], entry["username"], private_key_path=entry["privateKeyPath"]
        )
        entries.append({**entry, "credentialId": cred.id})
    yield entries
    sandbox_hosts.reset(sandbox["state"])


def body_for(entry: dict[str, Any], **extra: Any) -> dict[str, Any]:
    item = {"innerIpAddress": entry["innerIpAddress"], "alias": entry["name"]}
    item |= extra.pop("item", {})
    return {
        "hostBasicDataList": [item],
        "sshPort": entry["sshPort"],
        "credentialId": entry["credentialId"],
        "kind": "DEDICATED_PHYSICAL_MACHINE",
        "idcId": 1,
        "typeId": 1,
        **extra,
    }


@pytest.fixture
def legacy_ocp_agent(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process named as OCP's agent's (``ocp_mgragent``: a copy of sleep) on this machine,
    which every sandbox host shares: what an earlier OCP left running on a host."""
    program = tmp_path / "ocp_mgragent"
    shutil.copy("/bin/sleep", program)
    agent = subprocess.Popen([str(program), "600"])
    try:
        yield agent
    finally:
        agent.kill()
        agent.wait()


def test_batch_create_starts_a_prepare_host_task_per_host(
    api_env: ApiEnv,
    hosts: list,
    sandbox: dict,
    legacy_ocp_agent: subprocess.Popen[bytes],
) -> None:
    """Three hosts, one credential: two reachable (sandbox host 1 at its own address and at a
    second one), one where no sshd listens. OCP's answer: a "Prepare host" task per host, each
    naming its hostId, with OCP's five nodes. The unreachable host's task fails in its pre check,
    naming the host; the other two succeed, their hosts AVAILABLE. The OCP agent found running
    is reported and left running."""
    with sandbox_hosts.second_address(1, SECOND_DOOR, sandbox["state"]) as door:
        addresses = [hosts[0]["innerIpAddress"], door["innerIpAddress"], NO_SSHD]
        body = body_for(hosts[0], trustOnFirstUse=True)
        body["hostBasicDataList"] = [{"innerIpAddress": a} for a in addresses]
        with api_env.client() as client:
            started = data_of(client.post(BATCH, json=body))["contents"]
            assert len(started) == 3
            host_ids = [host_id_of(task) for task in started]
            registered = [api_env.engine.hosts.get(i).inner_ip_address for i in host_ids]
            assert registered == addresses  # one task per host, in the request's order
            for task in started:
                assert task["name"] == "Prepare host" and task["creator"] == api_env.user
                assert_prepare_host(task)
            final = [wait_task(client, task["id"]) for task in started]
            assert [t["status"] for t in final] == ["SUCCESSFUL", "SUCCESSFUL", "FAILED"]

            # The unreachable host: its pre check failed naming it, nothing after it ran.
            failed = chain(final[2]["subtasks"])
            assert [s["status"] for s in failed] == ["FAILED"] + ["PENDING"] * 4
            log = log_of(client, final[2], failed[0])
            assert f"{NO_SSHD}:2222" in log and "cannot connect" in log
            assert "HostUnreachable" in log
            shown = data_of(client.get(f"/api/v2/compute/hosts/{host_ids[2]}"))
            assert shown["status"] == "OFFLINE"

            for task, host_id, address in zip(final[:2], host_ids[:2], addresses[:2], strict=True):
                assert {s["status"] for s in task["subtasks"]} == {"SUCCESSFUL"}
                assert "trusted on first use and pinned" in log_of(client, task, PREPARE_NODES[0])
                assert "no OBAgent runs" in log_of(client, task, PREPARE_NODES[1])
                ocp_agent = log_of(client, task, PREPARE_NODES[2])
                assert f"{legacy_ocp_agent.pid} " in ocp_agent and "left alone" in ocp_agent
                assert "ocptask has no OCP agent" in log_of(client, task, PREPARE_NODES[3])
                assert "AVAILABLE" in log_of(client, task, PREPARE_NODES[4])
                host = data_of(client.get(f"/api/v2/compute/hosts/{host_id}"))
                assert host["status"] == "AVAILABLE" and host["innerIpAddress"] == address
            # The key pinned at the second address is host 1's: one sshd host key behind both.
            assert api_env.engine.hosts.get(host_ids[1]).host_key == door["hostKey"]
            # The tasks list finds each task by the host it works on.
            for task, host_id in zip(started, host_ids, strict=True):
                listed = client.get("/api/v2/tasks/instances", params={"hostId": host_id})
                assert [t["id"] for t in data_of(listed)["contents"]] == [task["id"]]
    assert legacy_ocp_agent.poll() is None  # found, never stopped


def test_batch_create_trusting_first_use_pins_each_key(api_env: ApiEnv, hosts: list) -> None:
    with api_env.client() as client:
        started = []
        for entry in hosts:
            data = data_of(client.post(BATCH, json=body_for(entry, trustOnFirstUse=True)))
            assert list(data) == ["contents"] and len(data["contents"]) == 1
            task = data["contents"][0]
            assert task["name"] == "Prepare host" and task["creator"] == api_env.user
            assert_prepare_host(task)
            started.append(task)
        for entry, task in zip(hosts, started, strict=True):
            final = wait_task(client, task["id"])
            assert final["status"] == "SUCCESSFUL", final
            assert "trusted on first use and pinned" in log_of(client, final, PREPARE_NODES[0])
            assert "AVAILABLE" in log_of(client, final, PREPARE_NODES[-1])
            host_id = host_id_of(task)
            host = data_of(client.get(f"/api/v2/compute/hosts/{host_id}"))
            assert host["status"] == "AVAILABLE" and host["name"] == entry["name"]
            assert host["innerIpAddress"] == entry["innerIpAddress"] and host["sshPort"] == 2222
            # The key learned is the host's real key, as the inventory has it.
            assert api_env.engine.hosts.get(host_id).host_key == entry["hostKey"]
            # The tasks list finds the task by the host it concerns.
            listed = client.get("/api/v2/tasks/instances", params={"hostId": host_id})
            assert [t["id"] for t in data_of(listed)["contents"]] == [task["id"]]
        # Pinned now: the same host is reached with that key alone, without trust on first use.
        target = api_env.engine.hosts.target(host_id_of(started[0]))
        assert target.host_key == hosts[0]["hostKey"] and not target.trust_on_first_use


def test_a_host_that_refuses_the_login_fails_its_own_task_only(
    api_env: ApiEnv, hosts: list
) -> None:
    """One batch of three hosts with host 1's credential: a task per host; host 1's succeeds and
    it is AVAILABLE, the others refuse that login: their tasks fail, their hosts OFFLINE."""
    body = body_for(hosts[0], trustOnFirstUse=True)
    body["hostBasicDataList"] = [{"innerIpAddress": h["innerIpAddress"]} for h in hosts]
    with api_env.client() as client:
        started = data_of(client.post(BATCH, json=body))["contents"]
        final = [wait_task(client, task["id"]) for task in started]
        assert [t["status"] for t in final] == ["SUCCESSFUL", "FAILED", "FAILED"]
        for task in final[1:]:
            assert "refused with its private key" in log_of(client, task, PREPARE_NODES[0])
        statuses = [data_of(client.get(f"/api/v2/compute/hosts/{host_id_of(t)}")) for t in started]
        assert [h["status"] for h in statuses] == ["AVAILABLE", "OFFLINE", "OFFLINE"]
        # Named by address when no alias is given.
        assert [h["name"] for h in statuses] == [h["innerIpAddress"] for h in hosts]


def test_unknown_key_fails_unless_pinned(api_env: ApiEnv, hosts: list) -> None:
    entry = hosts[1]
    check = PREPARE_NODES[0]
    with api_env.client() as client:
        task = data_of(client.post(BATCH, json=body_for(entry)))["contents"][0]
        final = wait_task(client, task["id"])
        assert final["status"] == "FAILED"
        log = log_of(client, final, check)
        assert "HostKeyMismatch" in log and "no host key is pinned" in log
        host_id = host_id_of(task)
        assert data_of(client.get(f"/api/v2/compute/hosts/{host_id}"))["status"] == "OFFLINE"
        assert api_env.engine.hosts.get(host_id).host_key is None
        # Registered once: the same address again is refused, naming the entry.
        err = error_of(client.post(BATCH, json=body_for(entry)))
        assert "already has address" in fields(err)["hostBasicDataList[0].innerIpAddress"]
        # Remove it, then register it with its key given ("keytype base64"): it succeeds.
        deleted = client.delete(f"/api/v2/compute/hosts/{host_id}")
        assert deleted.status_code == 200 and "data" not in deleted.json()
        short_key = " ".join(entry["hostKey"].split()[1:])
        again = data_of(client.post(BATCH, json=body_for(entry, item={"hostKey": short_key})))
        task = again["contents"][0]
        final = wait_task(client, task["id"])
        assert final["status"] == "SUCCESSFUL", log_of(client, final, check)
        assert api_env.engine.hosts.get(host_id_of(task)).host_key == entry["hostKey"]
        # A wrong key (another sandbox host's) is refused by the host, and nothing runs.
        client.delete(f"/api/v2/compute/hosts/{host_id_of(task)}")
        wrong = " ".join(hosts[0]["hostKey"].split()[1:])
        task = data_of(client.post(BATCH, json=body_for(entry, item={"hostKey": wrong})))
        final = wait_task(client, task["contents"][0]["id"])
        assert final["status"] == "FAILED"
        assert "host key changed" in log_of(client, final, check)


def test_password_credential_stays_secret(api_env: ApiEnv, hosts: list) -> None:
    """The sandbox takes keys only: the password is refused, and it shows nowhere."""
    entry = hosts[2]
    cred = api_env.engine.credentials.add("by-password", entry["username"], password=PASSWORD)
    body = body_for(entry, trustOnFirstUse=True) | {"credentialId": cred.id}
    with api_env.client() as client:
        response = client.post(BATCH, json=body)
        task = data_of(response)["contents"][0]
        final = wait_task(client, task["id"])
        assert final["status"] == "FAILED"
        log = log_of(client, final, PREPARE_NODES[0])
        assert "refused with its password" in log
        host = client.get(f"/api/v2/compute/hosts/{host_id_of(task)}")
        for text in (response.text, host.text, log, str(final), api_env.server.log()):
            assert PASSWORD not in text
    db = Path(api_env.db)
    for path in db.parent.glob(db.name + "*"):
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_refused_bodies_name_the_field_and_register_nothing(api_env: ApiEnv) -> None:
    engine = api_env.engine
    cred = engine.credentials.add("ops", "admin", private_key_path="/nonexistent/id_ed25519")
    known = engine.hosts.add(
        {
            "name": "known",
            "innerIpAddress": "192.0.2.1",
            "username": "admin",
            "privateKeyPath": "/nonexistent/id_ed25519",
        }
    )

    def body(*addresses: str, **extra: Any) -> dict[str, Any]:
        entries = [{"innerIpAddress": a} for a in addresses]
        return {"hostBasicDataList": entries, "sshPort": 22, "credentialId": cred.id, **extra}

    cases: list[tuple[dict[str, Any], str, str]] = [
        (body("192.0.2.10", "192.0.2.300"), "hostBasicDataList[1].innerIpAddress", "IP"),
        (body("192.0.2.10", "host.example"), "hostBasicDataList[1].innerIpAddress", "IP"),
        (body("192.0.2.10") | {"credentialId": 999}, "credentialId", "no SSH credential"),
        (body("192.0.2.10") | {"credentialId": 2**63}, "credentialId", "less than or equal"),
        (body("192.0.2.10") | {"credentialId": True}, "credentialId", "integer"),
        (body("192.0.2.10", "192.0.2.10"), "hostBasicDataList[1].innerIpAddress", "duplicate"),
        (body("192.0.2.10", "192.0.2.1"), "hostBasicDataList[1].innerIpAddress", "already has"),
        (body("192.0.2.10") | {"sshPort": 0}, "sshPort", "greater than or equal"),
        (body("192.0.2.10") | {"sshPort": "ssh"}, "sshPort", "integer"),
        (body(), "hostBasicDataList", "at least 1"),
        (body(*(f"10.0.0.{i}" for i in range(1, 102))), "hostBasicDataList", "at most 100"),
        (body("192.0.2.10", "192.0.2.11", alias="db"), "alias", "its own"),
        (
            body("192.0.2.10")
            | {"hostBasicDataList": [{"innerIpAddress": "192.0.2.10", "alias": "known"}]},
            "hostBasicDataList[0].alias",
            "already named",
        ),
        (
            body() | {"hostBasicDataList": [{"innerIpAddress": "192.0.2.10", "hostKey": "nope"}]},
            "hostBasicDataList[0].hostKey",
            "known_hosts",
        ),
        (body("192.0.2.10", trustOnFirstUse="yes"), "trustOnFirstUse", "boolean"),
        (body("192.0.2.10", kind="VM"), "kind", "DEDICATED"),
    ]
    variant = {"hostbasicdatalist": [{"innerIpAddress": "192.0.2.10"}]}
    variant |= {"sshPort": 22, "credentialId": cred.id}
    cases.append((variant, "hostbasicdatalist", "did you mean hostBasicDataList?"))
    with api_env.client() as client:
        for sent, field, words in cases:
            err = error_of(client.post(BATCH, json=sent))
            found = fields(err)
            assert field in found and words in found[field], (field, err)
        # A key pinned for another address is refused too.
        other = (
            "[192.0.2.99]:22 ssh-ed25519 "
            "AAAAC3NzaC1lZDI1NTE5AAAAIC9vQwX2nmiiH0d8W4p8Ch6/Dq7iEP0xVDn8tF6oLIRn"
        )
        sent = body() | {"hostBasicDataList": [{"innerIpAddress": "192.0.2.10", "hostKey": other}]}
        assert (
            "not this host"
            in fields(error_of(client.post(BATCH, json=sent)))["hostBasicDataList[0].hostKey"]
        )
        as_json = {"Content-Type": "application/json"}
        error_of(client.post(BATCH, content=b"[1, 2]", headers=as_json), 400, 10001)
        error_of(client.post(BATCH, content=b"", headers=as_json), 400, 10001)
        # Nothing was registered by any of them, and no task was started.
        assert [h.id for h in engine.hosts.list()] == [known.id]
        assert data_of(client.get("/api/v2/tasks/instances"))["contents"] == []
        # The body is documented.
        schema = client.get("/openapi.json").json()
        assert (
            "hostBasicDataList"
            in schema["components"]["schemas"]["BatchCreateHostsRequest"]["properties"]
        )


def test_list_detail_and_delete(api_env: ApiEnv) -> None:
    engine = api_env.engine
    made = []
    for i, status in enumerate(
        [HostStatus.AVAILABLE, HostStatus.OFFLINE, HostStatus.AVAILABLE, HostStatus.NEW]
    ):
        host = engine.hosts.add(
            {
                "name": f"web-{i}",
                "innerIpAddress": f"198.51.100.{i + 1}",
                "username": "admin",
                "password": PASSWORD,
            }
        )
        engine.hosts.set_status(host.id, status)
        made.append(host.id)
    with api_env.client() as client:
        page = data_of(client.get("/api/v2/compute/hosts", params={"page": 2, "size": 3}))
        assert page["page"] == {"totalElements": 4, "totalPages": 2, "number": 2, "size": 3}
        assert [h["id"] for h in page["contents"]] == [made[0]]  # newest first
        everything = data_of(client.get("/api/v2/compute/hosts", params={"sort": "id,asc"}))
        assert [h["id"] for h in everything["contents"]] == made
        first = everything["contents"][0]
        assert {"alias", "architecture", "services", "idcId", "hostAgentStatus"} <= set(first)
        assert first["services"] == [] and first["kind"] == "DEDICATED_PHYSICAL_MACHINE"
        available = data_of(client.get("/api/v2/compute/hosts", params={"status": "AVAILABLE"}))
        assert sorted(h["id"] for h in available["contents"]) == [made[0], made[2]]
        several = data_of(client.get("/api/v2/compute/hosts", params={"status": "NEW,OFFLINE"}))
        assert sorted(h["id"] for h in several["contents"]) == [made[1], made[3]]
        found = data_of(client.get("/api/v2/compute/hosts", params={"keyword": "100.3"}))
        assert [h["name"] for h in found["contents"]] == ["web-2"]
        found = data_of(client.get("/api/v2/compute/hosts", params={"keyword": "web-1"}))
        assert [h["id"] for h in found["contents"]] == [made[1]]
        err = error_of(client.get("/api/v2/compute/hosts", params={"status": "GONE"}))
        assert err["subErrors"][0]["field"] == "status"
        repeated = client.get("/api/v2/compute/hosts", params={"status": ["NEW", "OFFLINE"]})
        assert sorted(h["id"] for h in data_of(repeated)["contents"]) == [made[1], made[3]]
        error_of(client.get("/api/v2/compute/hosts", params={"sort": "password,asc"}), code=10011)
        detail = data_of(client.get(f"/api/v2/compute/hosts/{made[1]}"))
        assert detail["name"] == "web-1" and detail["status"] == "OFFLINE"
        assert PASSWORD not in client.get("/api/v2/compute/hosts").text
        deleted = client.delete(f"/api/v2/compute/hosts/{made[1]}")
        body = deleted.json()
        assert deleted.status_code == 200 and set(body) == ENVELOPE_KEYS
        err = error_of(client.get(f"/api/v2/compute/hosts/{made[1]}"), 404, 10002)
        assert str(made[1]) in err["message"]
        error_of(client.delete(f"/api/v2/compute/hosts/{made[1]}"), 404, 10002)
        error_of(client.get(f"/api/v2/compute/hosts/{2**64}"), 400, 10001)
        left = data_of(client.get("/api/v2/compute/hosts"))["page"]["totalElements"]
        assert left == 3


def test_credential_registry(engine: Engine) -> None:
    key = engine.credentials.add("deploy-key", "admin", private_key_path="/root/.ssh/id_ed25519")
    pw = engine.credentials.add("deploy-pw", "admin", password=PASSWORD)
    assert isinstance(key, Credential) and key.auth_type == "PRIVATE_KEY"
    assert pw.auth_type == "PASSWORD" and pw.private_key_path is None
    assert not hasattr(pw, "password") and PASSWORD not in repr(pw) + str(pw.to_ocp())
    assert [c.name for c in engine.credentials.list()] == ["deploy-key", "deploy-pw"]
    assert engine.credentials.get(pw.id) == pw
    assert engine.credentials.login(pw.id) == {"username": "admin", "password": PASSWORD}
    assert engine.credentials.login(key.id) == {
        "username": "admin",
        "privateKeyPath": "/root/.ssh/id_ed25519",
    }
    refusals: list[tuple[dict[str, Any], set[str]]] = [
        ({"name": "deploy-key", "username": "admin", "password": "x"}, {"name"}),
        ({"name": "", "username": "admin", "password": "x"}, {"name"}),
        ({"name": "a\nb", "username": "admin", "password": "x"}, {"name"}),
        ({"name": "n", "username": "Bad User", "password": "x"}, {"username"}),
        ({"name": "n", "username": "admin"}, {"privateKeyPath"}),
        (
            {"name": "n", "username": "admin", "password": "x", "private_key_path": "/k"},
            {"privateKeyPath"},
        ),
        (
            {"name": "n", "username": "admin", "private_key_path": "relative/key"},
            {"privateKeyPath"},
        ),
        ({"name": "n", "username": "admin", "password": ""}, {"password"}),
        ({"name": "n", "username": "admin", "password": "a\x00b"}, {"password"}),
    ]
    for kwargs, wanted in refusals:
        name, username = kwargs.pop("name"), kwargs.pop("username")
        with pytest.raises(RequestInvalid) as caught:
            engine.credentials.add(name, username, **kwargs)
        assert set(caught.value.fields) == wanted, (name, caught.value)
        assert PASSWORD not in str(caught.value)
    engine.credentials.remove(pw.id)
    with pytest.raises(NotFound):
        engine.credentials.get(pw.id)
    with pytest.raises(NotFound):
        engine.credentials.remove(pw.id)
    assert engine.credentials.find(2**70) is None
    db = Path(engine.store.url.removeprefix("sqlite:///"))
    for path in db.parent.glob(db.name + "*"):
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_embedded_call_registers_nothing_when_the_task_cannot_be_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``batch_create_hosts`` (what the route calls) undoes its registrations if the submit
    fails after them. Failure injection: ``engine.submit_batch`` is replaced by one that raises,
    as a database dying at exactly that instant cannot be arranged reliably."""
    from tasks.hosts import batch_create_hosts

    cred = engine.credentials.add("ops", "admin", private_key_path="/nonexistent/id_ed25519")
    body = {
        "hostBasicDataList": [{"innerIpAddress": "192.0.2.20"}, {"innerIpAddress": "192.0.2.21"}],
        "sshPort": 22,
        "credentialId": cred.id,
    }

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "submit_batch", broken)
    with pytest.raises(RuntimeError):
        batch_create_hosts(engine, body, "ops-user")
    assert engine.hosts.list() == []
    monkeypatch.undo()
    tasks = batch_create_hosts(engine, body, "ops-user")
    hosts = engine.hosts.list()
    assert [h.name for h in hosts] == ["192.0.2.20", "192.0.2.21"]
    # A task per host, in the request's order, each naming its host.
    assert [t.context.string_map["host_id"] for t in tasks] == [str(h.id) for h in hosts]
    for task in tasks:
        assert task.name == "Prepare host" and task.creator == "ops-user"
        assert task.payload["request"]["credentialId"] == cred.id
        assert task.context.list_map == {}
        assert [s.name for s in task.subtasks] == PREPARE_NODES
    assert all(h.status is HostStatus.NEW and h.host_key is None for h in hosts)
    # Every step of a host's task is shown with its host (the CLI's and console's views).
    labels = tasks[0].host_labels(engine.hosts.label)
    assert labels == {sub.id: "192.0.2.20 (192.0.2.20)" for sub in tasks[0].subtasks}
    # A host whose own task runs (not run here: RUNNING since its submit) stays registered.
    with pytest.raises(RequestInvalid) as caught:
        engine.hosts.remove(hosts[1].id)
    assert f"task {tasks[1].id} is running on it" in str(caught.value)
