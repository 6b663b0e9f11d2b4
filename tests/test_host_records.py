"""OCP's host record, list and statuses on real hosts: the facts "Prepare host" reads over SSH
(compared with what this machine says: the sandbox hosts are sshd processes on it), every key of
OCP's pages, the statuses NEW, AVAILABLE, ONLINE and OFFLINE as an OCP host passes through them,
the list's StringArray filters, and a database made before the facts columns."""

from __future__ import annotations

import os
import platform
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Engine, HostFacts, HostStatus, SubtaskStatus, TaskStatus
from engine.remote.host_facts import FACTS_COMMAND
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tests.api_helpers import data_of, error_of, wait_task
from tests.conftest import ApiEnv

HOSTS = "/api/v2/compute/hosts"
pytestmark = pytest.mark.timeout(300)

# The host record's keys, as OCP's "Query hosts" and "Query details about a host" pages list
# them (V4.0.0 and V4.2.2 alike), and ServiceSummary's.
RECORD_KEYS = {
    "id",
    "name",
    "alias",
    "description",
    "operatingSystem",
    "operatingSystemRelease",
    "architecture",
    "serialNumber",
    "innerIpAddress",
    "sshPort",
    "kind",
    "publishPorts",
    "services",
    "status",
    "idcId",
    "idcName",
    "idcDescription",
    "typeId",
    "typeName",
    "typeDescription",
    "regionId",
    "regionName",
    "regionDescription",
    "hostAgentId",
    "hostAgentVersion",
    "hostAgentStatus",
    "createTime",
    "updateTime",
}
SERVICE_KEYS = {"name", "version", "type", "softwarePackageId"}
OCP_STATUSES = {"NEW", "AVAILABLE", "ONLINE", "OFFLINE", "DELETING"}
NOT_KNOWN = [k for k in RECORD_KEYS if k.startswith(("idc", "type", "region", "hostAgent"))]


def this_machine() -> dict[str, str | None]:
    """What the sandbox hosts must tell, read here without ocptask's parser."""
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {}
    distribution = release.get("ID")
    major = release.get("VERSION_ID", "").split(".")[0]
    return {
        "architecture": platform.machine(),
        "operatingSystem": os.uname().release,
        "operatingSystemRelease": f"{distribution}{major}" if distribution else None,
    }


def ids_of(client: httpx.Client, **params: Any) -> list[int]:
    page = data_of(client.get(HOSTS, params={"sort": "id,asc", "size": 100, **params}))
    return [h["id"] for h in page["contents"]]


@pytest.fixture
def prepared(api_env: ApiEnv, sandbox: dict) -> Iterator[tuple[ApiEnv, list[int]]]:
    """The sandbox hosts added by batchCreate (each with its own credential: a sandbox host lets
    in only its own user) and prepared; their ids in inventory order."""
    ids = []
    with api_env.client() as client:
        for i, entry in enumerate(sandbox["inventory"]):
            cred = api_env.engine.credentials.add(
                entry["name"], entry["username"], private_key_path=entry["privateKeyPath"]
            )
            body = {
                "hostBasicDataList": [
                    {
                        "innerIpAddress": entry["innerIpAddress"],
                        "alias": entry["name"],
                        "serialNumber": f"SN-{i}",
                    }
                ],
                "sshPort": entry["sshPort"],
                "credentialId": cred.id,
                "kind": "DEDICATED_PHYSICAL_MACHINE",
                "description": f"sandbox host {i}",
                "trustOnFirstUse": True,
            }
            task = data_of(client.post(f"{HOSTS}/batchCreate", json=body))["contents"][0]
            assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
            ids.append(task["hostId"])
    yield api_env, ids
    sandbox_hosts.reset(sandbox["state"])


def test_the_record_has_every_documented_key_and_the_hosts_own_facts(
    prepared: tuple[ApiEnv, list[int]], sandbox: dict
) -> None:
    env, ids = prepared
    expected = this_machine()
    with env.client() as client:
        listed = data_of(client.get(HOSTS, params={"sort": "id,asc"}))["contents"]
        assert [h["id"] for h in listed] == ids
        for i, (host, entry) in enumerate(zip(listed, sandbox["inventory"], strict=True)):
            detail = data_of(client.get(f"{HOSTS}/{host['id']}"))
            assert detail == host  # the list shows the detail's record
            assert set(detail) == RECORD_KEYS
            assert {k: detail[k] for k in expected} == expected
            assert detail["status"] == "AVAILABLE" and detail["services"] == []
            assert detail["name"] == detail["alias"] == entry["name"]
            assert detail["serialNumber"] == f"SN-{i}"
            assert detail["description"] == f"sandbox host {i}"
            assert detail["kind"] == "DEDICATED_PHYSICAL_MACHINE"
            assert detail["publishPorts"] is None
            assert all(detail[k] is None for k in NOT_KNOWN)


def test_statuses_services_and_filters(prepared: tuple[ApiEnv, list[int]]) -> None:
    """An OBProxy installed on the first host makes it ONLINE with an OB_PROXY service; the
    others stay AVAILABLE; the filters take repeated keys and comma lists alike."""
    env, ids = prepared
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    with env.client() as client:
        request = install_request([ids[0]], name="records-proxy")
        task = data_of(client.post("/api/v2/obproxy/clusters", json=request))
        assert wait_task(client, task["id"], timeout=200)["status"] == "SUCCESSFUL"
        cluster = data_of(client.get("/api/v2/obproxy/clusters"))["contents"][0]
        online = data_of(client.get(f"{HOSTS}/{ids[0]}"))
        assert online["status"] == "ONLINE"
        assert [set(s) for s in online["services"]] == [SERVICE_KEYS]
        assert online["services"] == [
            {
                "name": "records-proxy",
                "version": cluster["obproxies"][0]["version"],
                "type": "OB_PROXY",
                "softwarePackageId": None,
            }
        ]
        everything = data_of(client.get(HOSTS))["contents"]
        assert {h["status"] for h in everything} <= OCP_STATUSES

        assert ids_of(client, status="ONLINE") == [ids[0]]
        assert ids_of(client, status="AVAILABLE") == ids[1:]
        both = ids_of(client, status=["AVAILABLE", "ONLINE"])
        assert both == ids_of(client, status="ONLINE,AVAILABLE") == ids
        assert ids_of(client, status="online , new") == [ids[0]]  # any case, blanks dropped
        assert ids_of(client, status=["NEW", "OFFLINE,DELETING"]) == []
        assert ids_of(client, includedServiceType="OB_PROXY") == [ids[0]]
        assert ids_of(client, excludedServiceType="OB_PROXY") == ids[1:]
        assert ids_of(client, includedServiceType=["OB_CLUSTER", "OMS"]) == []
        assert ids_of(client, excludedServiceType="OB_CLUSTER,OCP_AGENT") == ids
        assert ids_of(client, includedServiceType="OB_PROXY", status="AVAILABLE") == []
        assert ids_of(client, keyword="RECORDS-PROXY") == [ids[0]]  # a service's name
        assert ids_of(client, keyword=online["innerIpAddress"]) == [ids[0]]
        for field, value in [
            ("status", "RUNNING"),
            ("includedServiceType", "OBPROXY"),
            ("excludedServiceType", "OB_PROXY,NONE"),
        ]:
            err = error_of(client.get(HOSTS, params={field: value}), 400, 10001)
            assert [e["field"] for e in err["subErrors"]] == [field]
        by_status = data_of(client.get(HOSTS, params={"sort": "status,desc"}))["contents"]
        assert [h["status"] for h in by_status] == ["ONLINE", "AVAILABLE", "AVAILABLE"]
        error_of(client.get(HOSTS, params={"sort": "idcName,asc"}), 400, 10011)

        # An ONLINE host is in use; an idle one may go.
        in_use = error_of(client.delete(f"{HOSTS}/{ids[0]}"), 400, 10001)
        assert "OBProxy" in in_use["subErrors"][0]["message"]
        assert client.delete(f"{HOSTS}/{ids[2]}").status_code == 200

        # With the cluster gone the host is idle again.
        gone = data_of(client.delete(f"/api/v2/obproxy/clusters/{cluster['id']}"))
        assert wait_task(client, gone["id"], timeout=200)["status"] == "SUCCESSFUL"
        after = data_of(client.get(f"{HOSTS}/{ids[0]}"))
        assert after["status"] == "AVAILABLE" and after["services"] == []


def test_prepare_host_reached_but_not_ready_leaves_it_new(engine: Engine, sandbox: dict) -> None:
    """A host reached whose check fails is NEW (not initialized), with what it told recorded; one
    that cannot be reached is OFFLINE. The missing command is injected by widening the registry's
    list of required commands with one no host has."""
    from tasks.hosts import batch_create_hosts

    entry = sandbox["inventory"][0]
    cred = engine.credentials.add(
        "first", entry["username"], private_key_path=entry["privateKeyPath"]
    )
    engine.hosts.required_commands = (*engine.hosts.required_commands, "ocptask-no-such-cmd")
    try:
        body = {
            "hostBasicDataList": [{"innerIpAddress": entry["innerIpAddress"]}],
            "sshPort": entry["sshPort"],
            "credentialId": cred.id,
            "trustOnFirstUse": True,
        }
        (started,) = batch_create_hosts(engine, body)
        task = engine.run(started.id, timeout=120)
        assert task.status is TaskStatus.FAILED
        check = task.subtask("Pre check for create host")
        assert check.status is SubtaskStatus.FAILED
        assert "ocptask-no-such-cmd" in engine.log(task.id, check.id)
        host = engine.hosts.list()[0]
        assert host.status is HostStatus.NEW
        record = host.to_ocp()
        assert {k: record[k] for k in this_machine()} == this_machine()

        other = sandbox["inventory"][1]  # this credential's user is refused there
        body["hostBasicDataList"] = [{"innerIpAddress": other["innerIpAddress"]}]
        (started,) = batch_create_hosts(engine, body)
        assert engine.run(started.id, timeout=120).status is TaskStatus.FAILED
        refused = [h for h in engine.hosts.list() if h.inner_ip_address == other["innerIpAddress"]]
        assert refused[0].status is HostStatus.OFFLINE and refused[0].architecture is None
    finally:
        sandbox_hosts.reset(sandbox["state"])


def test_a_prepare_host_task_of_the_single_step_kind_still_runs(
    engine: Engine, sandbox: dict
) -> None:
    """Before a task per host, "Prepare host" was one step split over ``listMap.host_ids``
    (``tasks.hosts.steps.PrepareHost``): such a task, as recorded then, still loads and runs,
    and leaves its host AVAILABLE."""
    from engine import Node, Split, Template

    entry = sandbox["inventory"][0]
    host = engine.hosts.add(entry)
    old = Template(
        "Prepare host",
        [Node("tasks.hosts.steps.PrepareHost", "Prepare host", split=Split("host_ids"))],
    )
    try:
        task = engine.submit(old, {"host_ids": [str(host.id)]})
        assert task.subtasks[0].to_ocp()["className"].endswith(".PrepareHostTask")
        assert engine.run(task.id, timeout=120).status is TaskStatus.SUCCESSFUL
        assert engine.hosts.get(host.id).status is HostStatus.AVAILABLE
    finally:
        sandbox_hosts.reset(sandbox["state"])


def test_facts_are_read_defensively() -> None:
    """The facts command's output as real hosts give it: this machine's own, with a login
    script's noise before it, without an os-release, with quoting and without a version."""
    import subprocess

    here = subprocess.run(["sh", "-c", FACTS_COMMAND], capture_output=True, text=True, check=True)
    facts = HostFacts.parse("Welcome!\nocptask-facts.os-release=not this\n" + here.stdout)
    expected = this_machine()
    assert facts.architecture == expected["architecture"]
    assert facts.operating_system == expected["operatingSystem"]
    assert facts.operating_system_release == expected["operatingSystemRelease"]

    mark = "ocptask-facts"
    bare = HostFacts.parse(f"{mark}.arch=aarch64\n{mark}.kernel=\n")
    assert bare == HostFacts(architecture="aarch64")
    quoted = f'{mark}.os-release\nNAME=\'Cent OS\'\nID="centos"\nVERSION_ID="7.9"\nBAD="x\n'
    assert HostFacts.parse(quoted).operating_system_release == "centos7"
    assert HostFacts.parse(f"{mark}.os-release\nID=arch\n").operating_system_release == "arch"
    assert HostFacts.parse("") == HostFacts()


def test_a_database_without_the_new_columns_opens(tmp_path: Path) -> None:
    """A host table as the previous commit made it (no alias, kind or facts columns) gets them
    added, nullable, and its hosts read as OCP shows a host it knows nothing more of."""
    db = tmp_path / "old.db"
    with Engine(str(db)) as engine:
        host = engine.hosts.add(
            {"name": "old", "innerIpAddress": "192.0.2.7", "username": "admin", "password": "pw"}
        )
        engine.hosts.set_status(host.id, HostStatus.AVAILABLE)
    new_columns = [
        "alias",
        "description",
        "serial_number",
        "kind",
        "publish_ports",
        "architecture",
        "operating_system",
        "operating_system_release",
    ]
    with sqlite3.connect(db) as conn:
        for column in new_columns:
            conn.execute(f"ALTER TABLE host DROP COLUMN {column}")
    with Engine(str(db)) as engine:
        record = engine.hosts.get(host.id).to_ocp()
        assert record["status"] == "AVAILABLE" and record["kind"] == "DEDICATED_PHYSICAL_MACHINE"
        assert record["architecture"] is None and record["alias"] is None
        engine.hosts.reached(host.id, HostFacts("x86_64", "6.1.0", "debian12"))
        assert engine.hosts.get(host.id).operating_system_release == "debian12"
        with pytest.raises(ValueError, match="ONLINE"):
            engine.hosts.set_status(host.id, HostStatus.ONLINE)
    with sqlite3.connect(db) as conn:
        have = {row[1] for row in conn.execute("PRAGMA table_info(host)")}
    assert set(new_columns) <= have
