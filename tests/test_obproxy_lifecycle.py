"""An OBProxy cluster's life after its create, for real on sandbox hosts: add a host, restart,
rolling upgrade (and its rollback), stop/start, delete OBProxies and the cluster."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from engine import Engine, RequestInvalid, ResourceBusy, SubtaskStatus, Task, TaskStatus
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy import (
    add_obproxies,
    create_cluster,
    delete_cluster,
    delete_obproxies,
    restart_obproxies,
    start_obproxies,
    stop_obproxies,
    upgrade_obproxies,
)
from tasks.obproxy.clusters import get_cluster, list_clusters

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
OLD, NEW = "obproxy-4.3.2.0-1.el7.x86_64.rpm", "obproxy-4.3.3.0-1.el7.x86_64.rpm"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def env(sandbox: dict, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    ids = [engine.hosts.add(h).id for h in sandbox["inventory"]]
    register_ob_cluster(engine, "proxyro-Secret-4711")
    hosts = sandbox_hosts.load(sandbox["state"])
    homes = {h.address: sorted(p.name for p in Path(h.home).iterdir()) for h in hosts}
    yield {"host_ids": ids, "hosts": hosts, "homes_before": homes, **sandbox}
    sandbox_hosts.reset(sandbox["state"])


def succeeded(engine: Engine, task: Task) -> Task:
    final = engine.run(task.id, timeout=200)
    failed = [
        (s.name, s.parallel_idx, engine.log(task.id, s.id)[-1500:])
        for s in final.subtasks
        if s.status is not SubtaskStatus.SUCCESSFUL
    ]
    assert final.status is TaskStatus.SUCCESSFUL, failed
    return final


def at(task: Task, name: str, idx: int) -> Any:
    return next(s for s in task.subtasks if s.name == name and s.parallel_idx == idx)


def sql(address: str, query: str, timeout: float = 5) -> Any:
    conn = pymysql.connect(
        host=address, port=2883, user="root@proxysys", password="", connect_timeout=timeout
    )
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()
    finally:
        conn.close()


def proxyconfig(address: str, name: str) -> str:
    return sql(address, f"SHOW PROXYCONFIG LIKE '{name}'")[0][1]


def running_version(address: str) -> str:
    return sql(address, "SHOW PROXYINFO BINARY")[0][1].split()[0].removeprefix("ObProxy-")


def pid(host: sandbox_hosts.SandboxHost, version: str = "4.3.2.0") -> int:
    return int((Path(host.home) / f"obproxy-{version}" / "run" / "obproxy.pid").read_text())


def obproxy_processes(host: sandbox_hosts.SandboxHost) -> list[str]:
    """Command lines of the host user's obproxy processes, read from /proc."""
    import pwd

    uid = pwd.getpwnam(host.username).pw_uid
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and proc.stat().st_uid == uid:
                line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if "bin/obproxy" in line:
                    found.append(line)
        except OSError:
            continue
    return found


def cluster(engine: Engine) -> dict[str, Any]:
    rows, _ = list_clusters(engine, 0, 10)
    assert len(rows) == 1
    return rows[0]


def server_of(engine: Engine, host: sandbox_hosts.SandboxHost) -> dict[str, Any]:
    return next(p for p in cluster(engine)["obproxies"] if p["ip"] == host.address)


class Probe(threading.Thread):
    """Asks every host ``SELECT 1`` every 100 ms; keeps the fewest that answered at once."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(daemon=True)
        self.addresses = addresses
        self.fewest = len(addresses)
        self.rounds = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            up = 0
            for address in self.addresses:
                try:
                    sql(address, "SELECT 1", timeout=1)
                    up += 1
                except pymysql.err.MySQLError:
                    pass
            self.fewest = min(self.fewest, up)
            self.rounds += 1
            self.done.wait(0.1)


def test_add_restart_upgrade_delete(env: dict, engine: Engine) -> None:
    h1, h2, h3 = env["hosts"]
    succeeded(engine, create_cluster(engine, install_request(env["host_ids"][:2])))
    cid = cluster(engine)["id"]

    # A host that runs an OBProxy already is refused (one per host).
    taken = {"hostIds": [env["host_ids"][0]], "sqlPort": 2883, "exporterPort": 2884, "version": OLD}
    with pytest.raises(RequestInvalid, match=r"hostIds\[0\].*already runs OBProxy"):
        add_obproxies(engine, cid, taken)
    # Add host 3: the create's chain with the cluster's own parameters.
    body = {"hostIds": [env["host_ids"][2]], "sqlPort": 2883, "exporterPort": 2884, "version": OLD}
    (one_task,) = add_obproxies(engine, cid, body)  # a task per host, as OCP's batchAdd
    added = succeeded(engine, one_task)
    host = str(env["host_ids"][2])
    assert added.name == "Install obproxy" and added.context.string_map["host_id"] == host
    assert [p["status"] for p in cluster(engine)["obproxies"]] == ["RUNNING"] * 3
    assert proxyconfig(h3.address, "proxy_mem_limited") == "600M"  # startup parameter
    assert proxyconfig(h3.address, "slow_query_time_threshold") == "2s"  # parameter

    # Restart host 2: a new pid, the same parameters.
    before = pid(h2)
    restarted = succeeded(engine, restart_obproxies(engine, cid, str(server_of(engine, h2)["id"])))
    assert restarted.name == "Restart obproxy"
    assert pid(h2) != before
    assert proxyconfig(h2.address, "slow_query_time_threshold") == "2s"
    assert proxyconfig(h2.address, "proxy_mem_limited") == "600M"

    # Stop and start host 1; each refuses a server already as asked.
    one = [server_of(engine, h1)["id"]]
    with pytest.raises(RequestInvalid, match=rf"OBProxy {one[0]} on host \d+ is RUNNING"):
        start_obproxies(engine, cid, {"obproxyServerIds": one})
    succeeded(engine, stop_obproxies(engine, cid, {"obproxyServerIds": one}))
    assert server_of(engine, h1)["status"] == "UNAVAILABLE" and not obproxy_processes(h1)
    with pytest.raises(RequestInvalid, match=r"is UNAVAILABLE \(stopped\)"):
        stop_obproxies(engine, cid, {"obproxyServerIds": one})
    # A stale pid file naming another live process of the user: the start leaves it alone.
    stray = subprocess.Popen(["runuser", "-u", h1.username, "--", "sleep", "300"], cwd="/")
    try:
        time.sleep(0.3)
        forked = subprocess.run(["pgrep", "-P", str(stray.pid)], capture_output=True, text=True)
        child = int(forked.stdout.split()[0]) if forked.stdout.split() else stray.pid
        stale = Path(h1.home) / "obproxy-4.3.2.0" / "run" / "obproxy.pid"
        stale.write_text(f"{child}\n")
        shutil.chown(stale, h1.username)  # as obproxy itself would have left it
        succeeded(engine, start_obproxies(engine, cid, {"obproxyServerIds": one}))
        assert Path(f"/proc/{child}").exists() and pid(h1) != child
    finally:
        stray.kill()
        stray.wait()
    assert server_of(engine, h1)["status"] == "RUNNING"
    assert sql(h1.address, "SELECT 1") == (("1",),)

    # Rolling upgrade of all three, watched: never more than one down at a time.
    ids = ",".join(str(p["id"]) for p in cluster(engine)["obproxies"])
    probe = Probe([h.address for h in env["hosts"]])
    probe.start()
    try:
        upgraded = succeeded(engine, upgrade_obproxies(engine, cid, ids, {"version": NEW}))
    finally:
        probe.done.set()
        probe.join()
    assert upgraded.name == "Upgrade obproxy"
    assert probe.rounds > 5 and probe.fewest >= 2, (probe.rounds, probe.fewest)
    for host in env["hosts"]:
        assert running_version(host.address) == "4.3.3.0"
        assert proxyconfig(host.address, "slow_query_time_threshold") == "2s"
    assert cluster(engine)["versions"] == [{"version": "4.3.3.0-1", "count": 3}]

    # Delete the OBProxy on host 1: process, installs (both versions), package and row gone;
    # an install ocptask made for another server (another database's) stays.
    foreign = Path(h1.home) / "obproxy-4.3.1.0"
    foreign.mkdir()
    (foreign / ".ocptask-installed").write_text("7\n")
    (foreign / ".ocptask-server").write_text("99/99\n")
    gone = succeeded(engine, delete_obproxies(engine, cid, [server_of(engine, h1)["id"]]))
    assert gone.name == "Offline obproxy"
    assert not obproxy_processes(h1)
    assert foreign.is_dir()
    shutil.rmtree(foreign)
    assert sorted(p.name for p in Path(h1.home).iterdir()) == env["homes_before"][h1.address]
    assert [p["ip"] for p in cluster(engine)["obproxies"]] == [h2.address, h3.address]

    # Delete the cluster: nothing of it on any host or in the database.
    succeeded(engine, delete_cluster(engine, cid))
    for host in env["hosts"]:
        assert not obproxy_processes(host), host.name
        assert (
            sorted(p.name for p in Path(host.home).iterdir()) == env["homes_before"][host.address]
        )
    assert list_clusters(engine, 0, 10) == ([], 0)
    with engine.store.read() as session:
        from sqlmodel import text

        for table in ("obproxy_cluster", "obproxy_server", "task_hold"):
            assert session.exec(text(f"SELECT count(*) FROM {table}")).one()[0] == 0, table


def test_failed_upgrade_stops_at_its_host_and_rolls_back(env: dict, engine: Engine) -> None:
    h1, h2, h3 = env["hosts"]
    succeeded(engine, create_cluster(engine, install_request(env["host_ids"])))
    cid = cluster(engine)["id"]
    refuse = Path(h3.home) / ".obproxy-standin-refuse"
    refuse.write_text("4.3.3.0\n")  # host 3's new version will not start
    ids = [p["id"] for p in cluster(engine)["obproxies"]]
    failed = engine.run(upgrade_obproxies(engine, cid, ids, {"version": NEW}).id, timeout=200)
    assert failed.status is TaskStatus.FAILED
    broken = [(s.name, s.parallel_idx) for s in failed.subtasks if s.status.value == "FAILED"]
    assert broken == [("Start obproxy process", 2)]
    assert "4.3.3.0 refuses to start" in engine.log(
        failed.id, at(failed, "Start obproxy process", 2).id
    )
    assert [running_version(h.address) for h in (h1, h2)] == ["4.3.3.0", "4.3.3.0"]
    # The failed task holds the cluster: nothing else may change it meanwhile, and its records
    # say so (OPERATING); no host shows UPGRADING once nothing runs.
    with pytest.raises(ResourceBusy, match=rf"held by task {failed.id} \(Upgrade obproxy\)"):
        restart_obproxies(engine, cid, ids)
    held = get_cluster(engine, cid)["obproxies"]
    assert [(p["version"], p["status"]) for p in held] == [
        ("4.3.3.0-1", "RUNNING"),
        ("4.3.3.0-1", "RUNNING"),
        ("4.3.2.0-1", "UNAVAILABLE"),
    ]
    assert {p["operateStatus"] for p in held} == {"OPERATING"}

    final = engine.run(engine.rollback(failed.id).id, timeout=200)
    assert final.status is TaskStatus.SUCCESSFUL  # rolled back
    for host in env["hosts"]:
        assert running_version(host.address) == "4.3.2.0", host.name
        assert proxyconfig(host.address, "slow_query_time_threshold") == "2s"
        assert proxyconfig(host.address, "proxy_mem_limited") == "600M"
        assert not (Path(host.home) / "obproxy-4.3.3.0").exists()
    view = get_cluster(engine, cid)
    assert [(p["version"], p["status"]) for p in view["obproxies"]] == [
        ("4.3.2.0-1", "RUNNING")
    ] * 3
    assert {p["operateStatus"] for p in view["obproxies"]} == {"NORMAL"}  # rolled back: released
    refuse.unlink()
    restart_obproxies(engine, cid, ids)  # the rollback released the hold


def test_unreachable_host_fails_its_delete_and_a_skip_keeps_its_row(
    env: dict, engine: Engine
) -> None:
    h1, h2, _ = env["hosts"]
    with Engine(engine.store.url) as creator:  # its SSH connections close with it
        succeeded(creator, create_cluster(creator, install_request(env["host_ids"][:2])))
    cid = cluster(engine)["id"]
    sandbox_hosts.stop_host(2, env["state"])
    try:
        failed = engine.run(delete_cluster(engine, cid).id, timeout=200)
    finally:
        sandbox_hosts.start_host(2, env["state"])
    assert failed.status is TaskStatus.FAILED
    step = at(failed, "Stop and uninstall obproxy", 1)
    assert step.status is SubtaskStatus.FAILED
    assert "sandbox-2 (127.0.0.112:2222): cannot connect" in engine.log(failed.id, step.id)
    assert not obproxy_processes(h1)  # host 1's branch went all the way
    engine.skip_subtask(failed.id, step.id)
    skipped = engine.run(failed.id, timeout=200)
    # The cluster cannot go while host 2 keeps an OBProxy: its row stays, marked.
    assert [(p["ip"], p["status"]) for p in cluster(engine)["obproxies"]] == [
        (h2.address, "DELETING")
    ]
    assert skipped.status is TaskStatus.FAILED
    finish = skipped.subtask("Finish node")
    assert "still has OBProxies" in engine.log(skipped.id, finish.id)
    assert obproxy_processes(h2)  # nothing was done on host 2
    # The operator gives up on this task (skips its end), then deletes again once host 2 answers.
    engine.skip_subtask(skipped.id, finish.id)
    assert engine.run(skipped.id, timeout=200).status is TaskStatus.SUCCESSFUL
    succeeded(engine, delete_cluster(engine, cid))
    assert not obproxy_processes(h2)
    assert list_clusters(engine, 0, 10) == ([], 0)
