"""A password among a create's parameters, on real sandbox hosts through the HTTP API: obproxy
gets it (by SQL, after the start) and logs in with it, ocptask's own later logins use it, and it
shows nowhere: not in the database file, an answer, a subtask log, the CLI or the server's log.
The same create shows how each parameter went: one that needs a restart at start, others live."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pymysql
import pytest

from engine import Engine, SubtaskStatus, TaskStatus
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import create_cluster
from tests.api_helpers import data_of, run_cli, wait_task
from tests.conftest import ApiEnv

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
CLUSTERS = "/api/v2/obproxy/clusters"
SECRET = "S3cret-xyz"
SYNC = "Sync obproxy parameter"
pytestmark = pytest.mark.timeout(300)


def login(address: str, password: str) -> Any:
    return pymysql.connect(
        host=address, port=2883, user="root@proxysys", password=password, connect_timeout=5
    )


def proxyconfig(address: str, name: str) -> str:
    conn = login(address, SECRET)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW PROXYCONFIG LIKE %s", (name,))
            return cur.fetchall()[0][1]
    finally:
        conn.close()


def succeeded(task: dict[str, Any]) -> dict[str, Any]:
    assert task["status"] == "SUCCESSFUL", [
        (s["name"], s["status"]) for s in task["subtasks"] if s["status"] != "SUCCESSFUL"
    ]
    return task


def test_password_parameter_is_applied_sealed_and_masked(
    api_hosts: tuple[ApiEnv, list[int], dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))  # for the CLI's processes
    env, hosts, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    request = install_request(
        hosts[:1],
        parameters=[
            {"name": "slow_query_time_threshold", "value": "2s"},  # live
            {"name": "obproxy_sys_password", "value": SECRET},  # a secret: live, by SQL
            {"name": "net_accept_threads", "value": "4"},  # needs a restart: at start
        ],
    )
    answers: list[str] = []
    with env.client() as client:
        created = client.post(CLUSTERS, json=request)
        task = data_of(created)
        final = succeeded(wait_task(client, task["id"], timeout=200))
        cid = data_of(client.get(CLUSTERS))["contents"][0]["id"]
        url = f"{CLUSTERS}/{cid}"
        parameters = client.get(f"{url}/parameters")
        answers += [created.text, client.get(f"/api/v2/tasks/instances/{task['id']}").text]
        answers += [client.get(url).text, client.get(CLUSTERS).text, parameters.text]
        logs = {
            s["id"]: client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{s['id']}/log")
            for s in final["subtasks"]
        }
        answers += [r.text for r in logs.values()]
        # A restart logs in with the password (its Sync and its check): the same OBProxy again.
        server = data_of(client.get(url))["obproxies"][0]["id"]
        restart = data_of(client.post(f"{url}/obproxies/{server}/restart"))
        restarted = succeeded(wait_task(client, restart["id"], timeout=200))
        answers.append(json.dumps(restarted))
        answers += [
            client.get(f"/api/v2/tasks/instances/{restart['id']}/subtasks/{s['id']}/log").text
            for s in restarted["subtasks"]
        ]

    # The OBProxy has it, as obproxy keeps a password: its SHA1 shown, root@proxysys logs in
    # with the password itself and no longer without one.
    address = sandbox["inventory"][0]["innerIpAddress"]
    assert proxyconfig(address, "obproxy_sys_password") == hashlib.sha1(SECRET.encode()).hexdigest()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        login(address, "")
    assert refused.value.args[0] == 1045
    assert proxyconfig(address, "net_accept_threads") == "4"
    assert proxyconfig(address, "slow_query_time_threshold") == "2s"

    # The parameters list was read with the password (no other login gets in) and masks it.
    listed = {p["name"]: p for p in data_of(parameters)["contents"]}
    assert listed["obproxy_sys_password"]["values"] == [{"value": "******", "obproxies": [address]}]
    assert listed["obproxy_sys_password"]["valueString"] == "******"
    assert listed["slow_query_time_threshold"]["valueString"] == "2s"

    # Each parameter went its way: the one needing a restart on obproxy's command line and never
    # altered; the live ones altered; the password on no command line.
    sync = next(s for s in final["subtasks"] if s["name"] == SYNC)
    sync_log = data_of(logs[sync["id"]])["log"]
    assert "net_accept_threads = '4': at start (-o), obproxy needs a restart for it" in sync_log
    assert "proxy_mem_limited = '600M': at start (-o), a startup parameter" in sync_log
    assert "slow_query_time_threshold = '2s': live (ALTER PROXYCONFIG SET)" in sync_log
    assert "obproxy_sys_password = '******': live (ALTER PROXYCONFIG SET), a secret" in sync_log
    install = (Path(sandbox["state"]) / "home1" / "obproxy-4.3.2.0").resolve()
    cmdlines = [
        (proc / "cmdline").read_bytes().split(b"\0")
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and _cwd(proc) == install
    ]
    assert cmdlines, f"no process runs from {install}"
    for cmdline in cmdlines:
        options = cmdline[cmdline.index(b"-o") + 1].decode()
        assert options == "proxy_mem_limited=600M,net_accept_threads=4", options
        assert b"password" not in b" ".join(cmdline)
    altered = (install / "log" / "obproxy.log").read_text()
    assert "alter proxyconfig set slow_query_time_threshold" in altered
    assert "alter proxyconfig set obproxy_sys_password" in altered
    assert "alter proxyconfig set net_accept_threads" not in altered

    # Nowhere in the clear: answers, subtask logs, the CLI, the server's log, the database.
    shown = run_cli(env.db, "task", "show", str(task["id"]), "--json")
    cli_log = run_cli(env.db, "task", "log", str(task["id"]), str(sync["id"]))
    assert shown.returncode == 0 and cli_log.returncode == 0, shown.stderr + cli_log.stderr
    assert "obproxy_sys_password = '******'" in cli_log.stdout
    outputs = [shown.stdout, shown.stderr, cli_log.stdout, cli_log.stderr, env.server.log()]
    for text in answers + outputs:
        assert SECRET not in text
    db = Path(env.db)
    for path in db.parent.glob(db.name + "*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_rollback_takes_the_password_back(
    sandbox: dict, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create failing after its Sync rolls back through OBProxies that have the password:
    ocptask logs in with it, and the Sync's rollback takes it back (it was unset before)."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    host = engine.hosts.add(sandbox["inventory"][0]).id
    register_ob_cluster(engine, "proxyro-Secret-4711")
    secret = [{"name": "obproxy_sys_password", "value": SECRET}]
    task = create_cluster(engine, install_request([host], parameters=secret))
    ObClusters(engine).remove(1)  # the step after the Sync finds no proxyro password: it fails
    try:
        failed = engine.run(task.id, timeout=150)
        assert failed.status is TaskStatus.FAILED
        address = sandbox["inventory"][0]["innerIpAddress"]
        login(address, SECRET).close()  # the Sync gave it the password
        final = engine.run(engine.rollback(failed.id).id, timeout=150)
        assert final.status is TaskStatus.SUCCESSFUL, [
            (s.name, s.status) for s in final.subtasks if s.status is not SubtaskStatus.PENDING
        ]
        sync = engine.log(task.id, final.subtask(SYNC).id)
        assert "restored obproxy_sys_password = ''" in sync, sync
        logs = "".join(engine.log(task.id, s.id) for s in final.subtasks)
        assert SECRET not in logs
    finally:
        sandbox_hosts.reset(sandbox["state"])


def _cwd(proc: Path) -> Path | None:
    try:
        return (proc / "cwd").resolve(strict=True)
    except OSError:  # gone meanwhile, or not ours to look at
        return None
