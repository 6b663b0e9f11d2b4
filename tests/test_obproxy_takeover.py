"""OCP's takeOver on real sandbox hosts over HTTP: an obproxy (the stand-in package) unpacked and
started by hand, outside ocptask, is taken over into a cluster, then restarted and deleted
through ocptask like one it installed; a take-over where nothing listens fails naming the host
and port; the refusals name their field and never echo a password."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from fixtures import PACKAGE, install_request, register_ob_cluster
from tasks.obproxy.records import ObproxyServerRecord
from tests.api_helpers import data_of, error_of, run_cli, wait_task
from tests.conftest import ApiEnv
from tests.ocp_docs import compare, send_sample
from tests.test_cli_remote import ocptask, one_line

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
NEW = "obproxy-4.3.3.0-1.el7.x86_64.rpm"
CLUSTERS = "/api/v2/obproxy/clusters"
SQL_PORT, EXPORTER_PORT = 2890, 2891
pytestmark = pytest.mark.timeout(300)
NODES = [
    ("Prepare obproxy install", 300, "obproxy.PrepareObproxyInstallTask"),
    ("Prepare create obproxy", 1800, "obproxy.PrepareCreateObproxyTask"),
    ("Check if process not exist", 300, "host.CheckProcessNotExistTask"),
    ("Check if command exists", 300, "host.CheckCommandTask"),
    ("Install rpm by package and version", 3600, "host.InstallRpmByPackageAndVersionTask"),
    ("Start obproxy process", 600, "obproxy.StartObproxyTask"),
    ("Sync obproxy parameter", 30, "obproxy.SyncObproxyParameterTask"),
    ("Set obproxy user and password for connect", 30, "obproxy.SetObproxyUserPasswordForObTask"),
    ("Refresh ocp agent config", 3600, "host.RefreshAgentConfigTask"),
    ("Register obproxy exporter", 30, "obproxy.RegisterObproxyExporterTask"),
    ("Update obproxy status", 300, "obproxy.UpdateObproxyStatusTask"),
    ("Finish node", 0, "obproxy.FinishTask"),
]


class Host:
    """A sandbox host reached with the plain ssh client, as its user would: what the tests do
    there by hand is nothing of ocptask's."""

    def __init__(self, entry: dict[str, Any], folder: Path) -> None:
        self.entry = entry
        self.known = folder / f"known_hosts_{entry['name']}"
        self.known.write_text(entry["hostKey"] + "\n")
        self.home = ""
        self.home = self.run('printf %s "$HOME"')

    def run(self, command: str, stdin: Path | None = None) -> str:
        entry = self.entry
        args = ["ssh", "-i", entry["privateKeyPath"], "-p", str(entry["sshPort"])]
        args += ["-o", f"UserKnownHostsFile={self.known}", "-o", "BatchMode=yes"]
        args += [f"{entry['username']}@{entry['innerIpAddress']}", command]
        with (stdin or Path("/dev/null")).open("rb") as given:
            done = subprocess.run(args, stdin=given, capture_output=True, timeout=60)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done.stdout.decode()


def argv_of(pid: int) -> list[str]:
    """A process's command line, read here: the sandbox hosts share this machine's /proc."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


OPTIONS = "client_max_connections=4096,enable_cluster_checkout=false"


@pytest.fixture
def by_hand(
    api_hosts: tuple[ApiEnv, list[int], dict], tmp_path: Path
) -> Iterator[tuple[ApiEnv, list[int], Host, str, list[int]]]:
    """An obproxy unpacked from the stand-in package into ~/handmade/obproxy-4.3.2.0 of the
    first host, to start there by hand (``start_by_hand``): (env, host ids, that host, the
    install, the pids started by hand or since). Every pid listed is stopped after the test."""
    env, ids, sandbox = api_hosts
    host = Host(sandbox["inventory"][0], tmp_path)
    install = f"{host.home}/handmade/obproxy-4.3.2.0"
    host.run(f"cat > {host.home}/by-hand.rpm", stdin=PACKAGES / PACKAGE)
    host.run(
        "set -e; mkdir -p ~/handmade; tmp=$(mktemp -d); cd $tmp; "
        "rpm2cpio ~/by-hand.rpm | cpio -idm --quiet; "
        f"mv home/admin/obproxy-4.3.2.0 {install}; rm -rf $tmp ~/by-hand.rpm"
    )
    pids: list[int] = []
    try:
        yield env, ids, host, install, pids
    finally:
        for pid in pids:
            if alive(pid):
                host.run(f"kill {pid}")


def start_by_hand(host: Host, install: str, pids: list[int], options: str = OPTIONS) -> list[str]:
    """Start the obproxy of ``install`` as its user would (its pid joins ``pids``); its command
    line."""
    host.run(
        f"cd {install} && LD_LIBRARY_PATH={install}/lib ./bin/obproxy --listen_port {SQL_PORT} "
        f"--prometheus_listen_port {EXPORTER_PORT} -n handmade -r 127.0.0.1:2881 -c obcluster "
        f"-o {options}"
    )
    pids.append(int(host.run(f"cat {install}/run/obproxy.pid")))
    return argv_of(pids[-1])


def _cluster(env: ApiEnv, client: httpx.Client, name: str) -> int:
    """A cluster without OBProxies (the install request's links and parameters)."""
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    made = data_of(client.post(CLUSTERS, json=install_request([], name=name)))
    assert wait_task(client, made["id"])["status"] == "SUCCESSFUL"
    return next(c["id"] for c in data_of(client.get(CLUSTERS))["contents"] if c["name"] == name)


def _server_row(env: ApiEnv, server_id: int) -> ObproxyServerRecord:
    with env.engine.store.read() as session:
        row = session.exec(
            select(ObproxyServerRecord).where(ObproxyServerRecord.id == server_id)
        ).first()
    assert row is not None
    return row


def test_take_over_then_restart_and_delete_it(by_hand: Any) -> None:
    env, ids, host, install, pids = by_hand
    # Started with its own value of the cluster's startup parameter (proxy_mem_limited=600M).
    first_argv = start_by_hand(host, install, pids, f"{OPTIONS},proxy_mem_limited=1G")
    with env.client() as client:
        cid = _cluster(env, client, "adopting")
        url = f"{CLUSTERS}/{cid}"

        def ours(body: dict[str, Any]) -> dict[str, Any]:
            return {"hosts": [{"hostId": ids[0], "sqlPort": SQL_PORT}]}

        sent = send_sample(client, "obproxy-management/obproxy-4", body=ours, id=cid)
        assert compare(sent, "obproxy-management/obproxy-4") == (set(), set())
        (task,) = sent.json()["data"]["contents"]
        assert task["name"] == "Install obproxy" and task["hostId"] == ids[0]
        assert [(s["name"], s["timeout"]) for s in task["subtasks"]] == [
            (n, t) for n, t, _ in NODES
        ]
        assert [s["className"] for s in task["subtasks"]] == [
            f"com.alipay.ocp.service.task.business.{c}" for _, _, c in NODES
        ]
        assert {s["parallelIdx"] for s in task["subtasks"]} == {-1}
        strings = task["context"]["stringMap"]
        assert strings["host_id"] == str(ids[0]) and strings["service_name"] == "adopting"
        assert strings["obproxy_cluster_id"] == str(cid) and strings["package_name"] == "obproxy"
        assert strings["obproxy_need_delete_cluster"] == "false"
        server_id = int(strings["obproxy_server_id"])
        lists = task["context"]["listMap"]
        assert lists["process_keywords"] == ["obproxy", "obproxyd.sh"]
        assert lists["commands_to_check"] == ["awk", "base64", "readlink", "grep"]

        done = wait_task(client, task["id"])
        assert done["status"] == "SUCCESSFUL", [(s["name"], s["status"]) for s in done["subtasks"]]
        (server,) = data_of(client.get(url))["obproxies"]
        assert server["id"] == server_id and server["hostId"] == ids[0]
        assert (server["status"], server["version"]) == ("RUNNING", "4.3.2.0")
        assert (server["sqlPort"], server["exporterPort"]) == (SQL_PORT, EXPORTER_PORT)
        assert server["parameterVersion"] == 0  # the cluster's parameters are not set on it yet
        live = {
            p["name"]: p["values"] for p in data_of(client.get(f"{url}/parameters"))["contents"]
        }
        assert live["client_max_connections"] == [{"value": "4096", "obproxies": [server["ip"]]}]
        row = _server_row(env, server_id)
        assert row.install_dir == install and row.exporter_url
        assert row.startup_options == first_argv[first_argv.index("./bin/obproxy") + 1 :]
        logs = {
            s["name"]: client.get(
                f"/api/v2/tasks/instances/{task['id']}/subtasks/{s['id']}/log"
            ).json()["data"]["log"]
            for s in done["subtasks"]
        }
        assert f"listens on port {SQL_PORT}" in logs["Prepare create obproxy"]
        assert "nothing installed" in logs["Install rpm by package and version"]
        assert f"already runs as pid {pids[0]}: not started" in logs["Start obproxy process"]
        synced = logs["Sync obproxy parameter"]
        assert "client_max_connections='4096'" in synced
        assert "enable_cluster_checkout='false'" in synced
        assert "proxy_mem_limited is '1G' here, '600M' in the cluster" in synced
        assert "applies the cluster's, at start (-o)" in synced
        assert "no OCP agent" in logs["Refresh ocp agent config"]

        # A host already ours is refused, naming the field.
        again = {"hosts": [{"hostId": ids[0], "sqlPort": SQL_PORT}]}
        err = error_of(client.post(f"{url}/takeOver", json=again), 400, 10001)
        assert err["target"] == "hosts[0].hostId" and f"OBProxy {server_id}" in err["message"]

        # Restarted through ocptask: a new pid, from the same directory, with the same options
        # but the cluster's value of its startup parameter, as its Sync's log says.
        restart = data_of(client.post(f"{url}/obproxies/{server_id}/restart"))
        restarted = wait_task(client, restart["id"])
        assert restarted["status"] == "SUCCESSFUL"
        assert not alive(pids[0])
        pids.append(int(host.run(f"cat {install}/run/obproxy.pid")))
        assert pids[1] != pids[0] and alive(pids[1])
        assert argv_of(pids[1])[1:] == [
            a.replace("proxy_mem_limited=1G", "proxy_mem_limited=600M") for a in first_argv[1:]
        ]
        (sync,) = [s for s in restarted["subtasks"] if s["name"] == "Sync obproxy parameter"]
        path = f"/api/v2/tasks/instances/{restart['id']}/subtasks/{sync['id']}/log"
        assert "proxy_mem_limited = '600M': at start (-o)" in data_of(client.get(path))["log"]
        assert Path(f"/proc/{pids[1]}/cwd").resolve() == Path(install)
        (server,) = data_of(client.get(url))["obproxies"]
        assert (server["status"], server["parameterVersion"]) == ("RUNNING", 1)  # synced now

        deleted = data_of(client.delete(f"{url}/obproxies/{server_id}"))
        assert wait_task(client, deleted["id"])["status"] == "SUCCESSFUL"
        assert not alive(pids[1])
        assert host.run(f"[ -e {install} ] && echo there || echo gone").strip() == "gone"
        assert data_of(client.get(url))["obproxies"] == []


def test_take_over_where_nothing_listens_fails_naming_host_and_port(
    by_hand: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts in one call, through the CLI: the one started by hand is taken over, the one
    where nothing listens fails; the two tasks hold the cluster together until the failed one
    is rolled back, which forgets its record only."""
    env, ids, host, install, pids = by_hand
    start_by_hand(host, install, pids)
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    with env.client() as client:
        cid = _cluster(env, client, "nothing-there")
    # On the same database: a task per host, their final records as a JSON array.
    hosts = ("--host", f"{ids[0]}:{SQL_PORT}", "--host", f"{ids[1]}:2899")
    result = run_cli(env.db, "obproxy", "take-over", str(cid), *hosts)
    assert result.returncode == 1, result.stdout + result.stderr
    taken, task = json.loads(result.stdout)
    assert (taken["status"], task["status"]) == ("SUCCESSFUL", "FAILED")
    assert task["name"] == "Install obproxy"
    assert task["context"]["stringMap"]["host_id"] == str(ids[1])
    failed = [s for s in task["subtasks"] if s["status"] == "FAILED"]
    assert [s["name"] for s in failed] == ["Prepare create obproxy"]
    with env.client() as client:
        log = client.get(
            f"/api/v2/tasks/instances/{task['id']}/subtasks/{failed[0]['id']}/log"
        ).json()["data"]["log"]
        assert f"host {ids[1]}: nothing listens on port 2899" in log
        shown = {s["hostId"]: s for s in data_of(client.get(f"{CLUSTERS}/{cid}"))["obproxies"]}
        assert shown[ids[0]]["status"] == "RUNNING" and shown[ids[1]]["status"] == "UNAVAILABLE"
        assert {s["operateStatus"] for s in shown.values()} == {"OPERATING"}
        # Held by the batch while one of its tasks has not ended well.
        other = {"hosts": [{"hostId": ids[2], "sqlPort": 2899}]}
        err = error_of(client.post(f"{CLUSTERS}/{cid}/takeOver", json=other), 409, 10005)
        assert f"held by task {task['id']} (Install obproxy)" in err["message"]
        rolled = client.post(f"/api/v2/tasks/instances/{task['id']}/rollback")
        assert rolled.status_code == 200, rolled.text
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        (kept,) = data_of(client.get(f"{CLUSTERS}/{cid}"))["obproxies"]
        assert kept["hostId"] == ids[0]
        assert (kept["status"], kept["operateStatus"]) == ("RUNNING", "NORMAL")
        assert all(alive(pid) for pid in pids)  # nothing stopped


def test_refusals_name_the_field_and_never_echo_a_password(by_hand: Any) -> None:
    env, ids, _, _, _ = by_hand
    with env.client() as client:
        cid = _cluster(env, client, "refusing")
        url = f"{CLUSTERS}/{cid}/takeOver"
        body = {
            "hosts": [
                {"hostId": ids[0], "sqlPort": SQL_PORT},
                {"hostId": 424242, "sqlPort": SQL_PORT},
                {"hostId": ids[0], "sqlPort": 2883},
                {"hostId": ids[1], "sqlPort": 70000},
                {"hostId": ids[2], "sqlPort": 2883, "proxysysPasswd": "bad\u0007Secret-77"},
            ]
        }
        err = error_of(client.post(url, json=body), 400, 10001)
        fields = {e["field"]: e for e in err["subErrors"]}
        assert set(fields) == {"hosts[3].sqlPort", "hosts[4].proxysysPasswd"}, fields
        assert fields["hosts[4].proxysysPasswd"]["rejectedValue"] == "******"
        assert "Secret-77" not in json.dumps(err)
        del body["hosts"][3:]
        err = error_of(client.post(url, json=body), 400, 10001)
        assert {e["field"] for e in err["subErrors"]} == {"hosts[1].hostId", "hosts[2].hostId"}
        error_of(
            client.post(f"{CLUSTERS}/424242/takeOver", json=body | {"hosts": body["hosts"][:1]}),
            404,
            10002,
        )
        assert data_of(client.get(f"{CLUSTERS}/{cid}"))["obproxies"] == []
    # The CLI through the server: the password read from stdin, the refusal one line.
    remote = ("--server", env.url, "--user", env.user, "--proxysys-password-stdin")
    refused = ocptask(
        "obproxy", "take-over", str(cid), "--host", "424242:2890", *remote,
        stdin="Cli-Secret-5\n", OCPTASK_PASSWORD=env.password,
    )  # fmt: skip
    line = one_line(refused, 2)
    assert "hosts[0].hostId" in line and "host 424242 does not exist" in line
    assert "Cli-Secret-5" not in refused.stdout + refused.stderr


def test_one_with_a_password_is_taken_over_stopped_started_and_upgraded(by_hand: Any) -> None:
    """root@proxysys has a password: refused without it, taken over with it (OCP 4.3's
    proxysysPasswd), which no log, record or answer shows; its command line is recorded without
    it (obproxy keeps it in its saved config). Then stop, start, upgrade and delete."""
    env, ids, host, install, pids = by_hand
    secret = "Hand-Secret-9z"
    # As obd starts obproxy: -o carries the password's SHA1, which obproxy keeps as it is.
    hashed = f"obproxy_sys_password={hashlib.sha1(secret.encode()).hexdigest()}"
    argv = start_by_hand(host, install, pids, f"{OPTIONS},{hashed}")
    kept = [a.replace(f",{hashed}", "") for a in argv]
    # Its restarts add the cluster's startup parameter to its own -o items.
    restarted = [a.replace(OPTIONS, f"{OPTIONS},proxy_mem_limited=600M") for a in kept]
    with env.client() as client:
        cid = _cluster(env, client, "guarded")
        url = f"{CLUSTERS}/{cid}"
        one = {"hostId": ids[0], "sqlPort": SQL_PORT}
        (task,) = data_of(client.post(f"{url}/takeOver", json={"hosts": [one]}))["contents"]
        failed = wait_task(client, task["id"])
        assert failed["status"] == "FAILED"
        (sub,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        log = client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{sub['id']}/log")
        assert "refuses root@proxysys with no password" in log.json()["data"]["log"]
        assert data_of(client.post(f"/api/v2/tasks/instances/{task['id']}/rollback"))
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"

        given = {"hosts": [one | {"proxysysPasswd": secret}]}
        (task,) = data_of(client.post(f"{url}/takeOver", json=given))["contents"]
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        server_id = int(task["context"]["stringMap"]["obproxy_server_id"])
        row = _server_row(env, server_id)
        assert row.startup_options == kept[kept.index("./bin/obproxy") + 1 :]
        assert (row.proxysys_password or "").startswith("fernet:")
        read = data_of(client.get(f"{url}/parameters"))["contents"]  # logs in with it
        assert "client_max_connections" in {p["name"] for p in read}

        ids_body = {"obproxyServerIds": [server_id]}
        stop = data_of(client.post(f"{url}/servers/stop", json=ids_body))
        assert wait_task(client, stop["id"])["status"] == "SUCCESSFUL"
        assert not alive(pids[-1])
        start = data_of(client.post(f"{url}/servers/start", json=ids_body))
        assert wait_task(client, start["id"])["status"] == "SUCCESSFUL"  # it checks by SQL
        pids.append(int(host.run(f"cat {install}/run/obproxy.pid")))
        assert argv_of(pids[-1]) == restarted

        upgrade = data_of(
            client.post(f"{url}/obproxies/{server_id}/upgrade", json={"version": NEW})
        )
        assert wait_task(client, upgrade["id"])["status"] == "SUCCESSFUL"
        assert not alive(pids[-1])
        upgraded = f"{host.home}/obproxy-4.3.3.0"
        pids.append(int(host.run(f"cat {upgraded}/run/obproxy.pid")))
        assert argv_of(pids[-1]) == restarted
        assert Path(f"/proc/{pids[-1]}/cwd").resolve() == Path(upgraded)
        (server,) = data_of(client.get(url))["obproxies"]
        assert (server["status"], server["version"]) == ("RUNNING", "4.3.3.0-1")
        assert _server_row(env, server_id).install_dir is None  # ocptask's install of 4.3.3.0

        deleted = data_of(client.delete(f"{url}/obproxies/{server_id}"))
        assert wait_task(client, deleted["id"])["status"] == "SUCCESSFUL"
        assert not alive(pids[-1])
        there = f"[ -e {upgraded} ] && echo there; [ -e {install} ] && echo there; true"
        assert host.run(there).split() == ["there"]  # the one taken over, no longer its own

        every = data_of(client.get("/api/v2/tasks/instances", params={"size": 100}))["contents"]
        texts = [json.dumps(every)]
        for listed in every:
            detail = data_of(client.get(f"/api/v2/tasks/instances/{listed['id']}"))
            texts.append(json.dumps(detail))
            for sub in detail["subtasks"]:
                path = f"/api/v2/tasks/instances/{listed['id']}/subtasks/{sub['id']}/log"
                texts.append(client.get(path).json()["data"]["log"] or "")
    assert not [t for t in texts if secret in t]
    stored = b"".join(Path(f).read_bytes() for f in Path(env.db).parent.glob("api.db*"))
    assert secret.encode() not in stored
    assert secret not in env.server.log()


def test_an_obproxy_run_from_the_home_is_never_taken_over_nor_removed(by_hand: Any) -> None:
    """An obproxy run as ~/bin/obproxy has the login's home as its directory, which a delete
    would remove: the take-over refuses it, naming host and directory; a record naming the home
    (made before that check) never has it removed by a delete, whose log says why."""
    env, ids, host, install, pids = by_hand
    home = host.home
    host.run(f"cp -a {install}/. {home}/")
    start_by_hand(host, home, pids)
    with env.client() as client:
        cid = _cluster(env, client, "homely")
        url = f"{CLUSTERS}/{cid}"
        one = {"hosts": [{"hostId": ids[0], "sqlPort": SQL_PORT}]}
        (task,) = data_of(client.post(f"{url}/takeOver", json=one))["contents"]
        failed = wait_task(client, task["id"])
        assert failed["status"] == "FAILED"
        (sub,) = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        assert sub["name"] == "Prepare create obproxy"
        log = client.get(f"/api/v2/tasks/instances/{task['id']}/subtasks/{sub['id']}/log")
        said = f"host {ids[0]}: obproxy pid {pids[0]} runs from {home}: it is the login's home"
        assert said in log.json()["data"]["log"]
        assert data_of(client.post(f"/api/v2/tasks/instances/{task['id']}/rollback"))
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        host.run(f"kill {pids[0]}; rm -rf {home}/bin")  # no bin/obproxy left there

        # A record naming the home (as one made before the check would): the delete stops what
        # runs from there, if anything, and never removes it.
        start_by_hand(host, install, pids)
        (task,) = data_of(client.post(f"{url}/takeOver", json=one))["contents"]
        assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        server_id = int(task["context"]["stringMap"]["obproxy_server_id"])
        with env.engine.store.write() as session:
            row = session.get(ObproxyServerRecord, server_id)
            assert row is not None
            row.install_dir = home
            session.add(row)
        deleted = data_of(client.delete(f"{url}/obproxies/{server_id}"))
        done = wait_task(client, deleted["id"])
        assert done["status"] == "SUCCESSFUL"
        (sub,) = [s for s in done["subtasks"] if s["name"] == "Stop and uninstall obproxy"]
        log = client.get(f"/api/v2/tasks/instances/{deleted['id']}/subtasks/{sub['id']}/log")
        assert f"{home} not removed: it is the login's home" in log.json()["data"]["log"]
    assert host.run(f"[ -d {home}/handmade ] && echo there").strip() == "there"
